#include "session/paho_persistence.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <stdexcept>
#include <string_view>

namespace mqttx::detail {

PahoPersistence::PahoPersistence(std::shared_ptr<Storage> storage,
                                 std::shared_ptr<spdlog::logger> log, std::string session,
                                 WrittenHandler on_publish_written)
    : storage_(std::move(storage)),
      log_(std::move(log)),
      session_(std::move(session)),
      on_publish_written_(std::move(on_publish_written)) {}

template <class F>
auto PahoPersistence::logged(const char* operation, const std::string& key, F&& f) const {
    try {
        return f();
    } catch (const std::exception& e) {
        // Paho turns the exception into a bare error code: say what happened here.
        log_->error("session '{}': storage {} of '{}' for Paho failed: {}", session_, operation,
                    key, e.what());
        throw;
    }
}

void PahoPersistence::open(const mqtt::string& client_id, const mqtt::string&) {
    // The session opened the storage already (it reads its own keys first); Paho's
    // client id is the same one.
    logged("open", client_id, [&] {
        if (storage_->client_id() != client_id) storage_->open(client_id);
    });
}

void PahoPersistence::close() {
    // The session closes the storage after the client is gone.
}

void PahoPersistence::clear() {
    logged("clear", "", [&] {
        for (const auto& key : storage_->keys()) {
            if (!key.starts_with(own_key_prefix)) storage_->remove(key);
        }
    });
}

bool PahoPersistence::contains_key(const mqtt::string& key) {
    return logged("contains", key, [&] { return storage_->contains(key); });
}

mqtt::string_collection PahoPersistence::keys() const {
    return logged("keys", "", [&] {
        mqtt::string_collection keys;
        for (const auto& key : storage_->keys()) {
            if (!key.starts_with(own_key_prefix)) keys.push_back(key);
        }
        return keys;
    });
}

void PahoPersistence::put(const mqtt::string& key, const std::vector<mqtt::string_view>& buffers) {
    logged("put", key, [&] {
        std::string value;
        for (const auto& buffer : buffers) value.append(buffer.data(), buffer.size());
        storage_->put(key, value);
    });
    // "s-<id>" (MQTT 5: "s5-<id>"): a publish Paho is sending; it now keeps it itself.
    for (std::string_view prefix : {"s-", "s5-"}) {
        if (!key.starts_with(prefix) || !on_publish_written_) continue;
        int id = 0;
        const auto digits = std::string_view(key).substr(prefix.size());
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
        if (ec == std::errc() && end == digits.data() + digits.size()) on_publish_written_(id);
    }
}

mqtt::string PahoPersistence::get(const mqtt::string& key) const {
    return logged("get", key, [&] {
        auto value = storage_->get(key);
        // Paho asks only for keys it listed: a missing or corrupt one is an error to it.
        if (!value) throw std::runtime_error("no readable record");
        return *value;
    });
}

void PahoPersistence::remove(const mqtt::string& key) {
    logged("remove", key, [&] { storage_->remove(key); });
}

}  // namespace mqttx::detail
