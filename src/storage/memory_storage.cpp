// Memory storage: survives reconnects, not the program.
#include <map>

#include "mqttx/storage.hpp"

namespace mqttx {

namespace {

class MemoryStorage final : public Storage {
  public:
    MemoryStorage() : Storage("memory") {}

  protected:
    void do_open(const std::string& client_id) override { records_ = &clients_[client_id]; }
    void do_close() noexcept override { records_ = nullptr; }
    void do_put(const std::string& key, std::string_view value) override {
        (*records_)[key] = std::string(value);
    }
    std::optional<std::string> do_get(const std::string& key) override {
        auto it = records_->find(key);
        if (it == records_->end()) return std::nullopt;
        return it->second;
    }
    void do_remove(const std::string& key) override { records_->erase(key); }
    std::vector<std::string> do_keys() override {
        std::vector<std::string> keys;
        for (const auto& [key, value] : *records_) keys.push_back(key);
        return keys;
    }
    void do_clear() override { records_->clear(); }

  private:
    std::map<std::string, std::map<std::string, std::string>> clients_;
    std::map<std::string, std::string>* records_ = nullptr;  // the open client's
};

}  // namespace

std::unique_ptr<Storage> make_memory_storage() {
    return std::make_unique<MemoryStorage>();
}

}  // namespace mqttx
