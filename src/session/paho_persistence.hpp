// PahoPersistence: Paho's iclient_persistence on top of a Storage, so that Paho's
// in-flight QoS 1/2 messages and PUBRELs go to the session's backend. Paho calls it from
// its own threads (Storage locks) and swallows its exceptions, so every failure is
// logged here before it is rethrown. Keys of the library's own ("mqttx-...") are not
// Paho's: keys() and clear() leave them alone. Must outlive the client.
//
// One write per message: Paho's queued commands and its copies of QoS 1 publishes stay
// in memory, since the session's outbox record holds each such message until the
// broker confirms it. QoS 2 publishes are written (a restarted Paho must finish their
// exchange under the same packet id, or the broker delivers them twice), and their
// outbox record goes then.
#pragma once

#include <mqtt/iclient_persistence.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mqttx/storage.hpp"

namespace spdlog {
class logger;
}

namespace mqttx::detail {

// Keys the library keeps in a session's storage start with this.
inline constexpr std::string_view own_key_prefix = "mqttx-";

class PahoPersistence final : public mqtt::iclient_persistence {
  public:
    // What Paho does with the publishes it keeps, as the session needs to know. Called
    // inside Paho with its locks held: none may call Paho.
    struct Observer {
        std::function<void(int message_id)> written;          // a QoS 2 publish it sends now
        std::function<void(int message_id)> forgotten;        // a publish's record removed
        std::function<void(std::size_t count)> resends_done;  // of the last run's, let go
        std::function<void()> cleared;                        // every record removed
    };

    PahoPersistence(std::shared_ptr<Storage> storage, std::shared_ptr<spdlog::logger> log,
                    std::string session, Observer observer);

    // The keys of the publishes Paho restored from the last run and resends: their
    // removal is reported to resends_done, and their rewrites are not `written`.
    void track_resends(std::vector<std::string> keys);

    void open(const mqtt::string& client_id, const mqtt::string& server_uri) override;
    void close() override;
    void clear() override;
    bool contains_key(const mqtt::string& key) override;
    mqtt::string_collection keys() const override;
    void put(const mqtt::string& key, const std::vector<mqtt::string_view>& buffers) override;
    mqtt::string get(const mqtt::string& key) const override;
    void remove(const mqtt::string& key) override;

  private:
    template <class F>
    auto logged(const char* operation, const std::string& key, F&& f) const;

    const std::shared_ptr<Storage> storage_;
    const std::shared_ptr<spdlog::logger> log_;
    const std::string session_;
    const Observer observer_;
    // Records Paho needs while it runs but a restart does not: its queued commands and
    // its QoS 1 publishes.
    mutable std::mutex memory_mutex_;
    std::unordered_map<std::string, std::string> memory_only_;
    std::unordered_set<std::string> resends_;  // under memory_mutex_
};

}  // namespace mqttx::detail
