// SessionBuilder: a fluent way to fill in Options. Setters only record; build()
// validates everything at once and reports every problem in one Error.
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>
#include <vector>

#include "mqttx/options.hpp"

namespace mqttx {

class SessionBuilder {
  public:
    explicit SessionBuilder(std::string name);

    SessionBuilder& broker(std::string uri);
    SessionBuilder& brokers(std::vector<std::string> uris);
    SessionBuilder& client_id(std::string id);
    SessionBuilder& auth(std::string username, std::string password);
    SessionBuilder& protocol(Protocol protocol);
    SessionBuilder& keep_alive(std::chrono::seconds interval);
    SessionBuilder& clean_session(bool clean);
    SessionBuilder& auto_reconnect(ReconnectPolicy policy = {});
    SessionBuilder& no_reconnect();
    SessionBuilder& tls(std::string ca_file, std::string cert_file = {}, std::string key_file = {},
                        bool skip_verify = false);
    SessionBuilder& tls(TlsConfig config);
    SessionBuilder& performance(std::size_t buffer_kb, int max_pending);
    SessionBuilder& performance(PerformanceOptions options);
    SessionBuilder& message_channel_size(std::size_t size);
    SessionBuilder& timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds write);
    // A persistent session: the broker keeps it (clean session off) and so do we.
    SessionBuilder& persistent();
    SessionBuilder& memory_storage();
    // `sync`: StorageOptions::file_sync.
    SessionBuilder& file_storage(std::string directory, bool sync = true);
    SessionBuilder& redis_storage(std::string address);
    SessionBuilder& redis_auth(std::string username, std::string password, int db = 0);
    // Makes the subscriptions the last run saved again, routed to `handler`
    // (Options::restored_handler). Needs persistent().
    SessionBuilder& restore_subscriptions(MessageHandler handler);
    SessionBuilder& will(std::string topic, std::string payload, int qos = 0,
                         bool retained = false);
    // A will with MQTT 5 properties and delay.
    SessionBuilder& will(Will will);
    // MQTT 5: how long the broker keeps the session after the connection ends
    // (ConnectProperties::session_expiry); needs protocol(Protocol::v5).
    SessionBuilder& session_expiry(std::chrono::seconds interval);
    // MQTT 5 CONNECT properties; replaces any set before, session_expiry() included.
    SessionBuilder& connect_properties(ConnectProperties properties);
    SessionBuilder& subscribe(std::string filter, int qos, MessageHandler handler,
                              SubscribeOptions options = {});
    SessionBuilder& logger(std::shared_ptr<spdlog::logger> logger);

    // Throws Error (kind configuration) naming every problem.
    Options build() const;
    const Options& options() const noexcept { return options_; }

  private:
    StorageOptions& storage();

    Options options_;
};

// A plaintext session to one broker with the defaults.
SessionBuilder quick_connect(std::string name, std::string broker);
// A TLS session verifying the broker against `ca_file` (a bare host:port means ssl://).
SessionBuilder secure_connect(std::string name, std::string broker, std::string ca_file);

}  // namespace mqttx
