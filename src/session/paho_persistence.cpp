#include "session/paho_persistence.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace mqttx::detail {

PahoPersistence::PahoPersistence(std::shared_ptr<Storage> storage,
                                 std::shared_ptr<spdlog::logger> log, std::string session,
                                 Observer observer)
    : storage_(std::move(storage)),
      log_(std::move(log)),
      session_(std::move(session)),
      observer_(std::move(observer)) {}

void PahoPersistence::track_resends(std::vector<std::string> keys) {
    std::lock_guard lock(memory_mutex_);
    resends_.insert(std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
}

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
    std::size_t resends_done = 0;
    {
        std::lock_guard lock(memory_mutex_);
        memory_only_.clear();
        resends_done = std::exchange(resends_, {}).size();
    }
    if (resends_done > 0) observer_.resends_done(resends_done);
    observer_.cleared();
    logged("clear", "", [&] {
        for (const auto& key : storage_->keys()) {
            if (!key.starts_with(own_key_prefix)) storage_->remove(key);
        }
    });
}

bool PahoPersistence::contains_key(const mqtt::string& key) {
    {
        std::lock_guard lock(memory_mutex_);
        if (memory_only_.contains(key)) return true;
    }
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

namespace {

// Paho's key of a publish it is sending: "s-<id>" (MQTT 5: "s5-<id>"). Its packet id.
std::optional<int> sent_publish_id(std::string_view key) {
    for (std::string_view prefix : {"s-", "s5-"}) {
        if (!key.starts_with(prefix)) continue;
        int id = 0;
        const auto digits = key.substr(prefix.size());
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
        if (ec == std::errc() && end == digits.data() + digits.size()) return id;
    }
    return std::nullopt;
}

// Paho's queued commands ("c-", "c5-"): the outbox record holds each publish until the
// broker confirms it, and SessionStorage::open drops commands of a previous run.
bool is_command(std::string_view key) {
    return key.starts_with("c-") || key.starts_with("c5-");
}

}  // namespace

void PahoPersistence::put(const mqtt::string& key, const std::vector<mqtt::string_view>& buffers) {
    std::string value;
    for (const auto& buffer : buffers) value.append(buffer.data(), buffer.size());
    const auto sent = sent_publish_id(key);
    // A sent publish starts with its fixed header, whose bits 1-2 are the QoS. A QoS 1
    // publish is kept by its outbox record until the broker's PUBACK, and sent again
    // from there after a crash: Paho's copy would be a second write of the message.
    const bool qos1 =
        sent && !value.empty() && ((static_cast<unsigned char>(value[0]) >> 1) & 3) == 1;
    bool resend = false;
    {
        std::lock_guard lock(memory_mutex_);
        if (is_command(key) || qos1) {
            memory_only_.insert_or_assign(key, std::move(value));
            return;
        }
        resend = !resends_.empty() && resends_.contains(key);
    }
    logged("put", key, [&] { storage_->put(key, value); });
    // Paho keeps a QoS 2 publish itself from now on (a resend's is no news).
    if (sent && !resend) observer_.written(*sent);
}

mqtt::string PahoPersistence::get(const mqtt::string& key) const {
    return logged("get", key, [&] {
        {
            std::lock_guard lock(memory_mutex_);
            if (auto it = memory_only_.find(key); it != memory_only_.end()) return it->second;
        }
        auto value = storage_->get(key);
        // Paho asks only for keys it listed: a missing or corrupt one is an error to it.
        if (!value) throw std::runtime_error("no readable record");
        return *value;
    });
}

void PahoPersistence::remove(const mqtt::string& key) {
    bool in_memory = false;
    bool resend_done = false;
    {
        std::lock_guard lock(memory_mutex_);
        in_memory = memory_only_.erase(key) > 0;
        // Empty but after a restart: no second lookup per confirmed message.
        resend_done = !resends_.empty() && resends_.erase(key) > 0;
    }
    // Paho is done with it even if its record stays behind.
    if (resend_done) observer_.resends_done(1);
    // (A QoS 1 resend of an earlier version's run: in memory now, in storage still.)
    if (in_memory && !resend_done) return;
    if (auto sent = sent_publish_id(key)) observer_.forgotten(*sent);
    logged("remove", key, [&] { storage_->remove(key); });
}

}  // namespace mqttx::detail
