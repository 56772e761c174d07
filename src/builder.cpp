#include "mqttx/builder.hpp"

#include <utility>

namespace mqttx {

SessionBuilder::SessionBuilder(std::string name) {
    options_.name = std::move(name);
}

SessionBuilder& SessionBuilder::broker(std::string uri) {
    options_.brokers.push_back(std::move(uri));
    return *this;
}

SessionBuilder& SessionBuilder::brokers(std::vector<std::string> uris) {
    options_.brokers = std::move(uris);
    return *this;
}

SessionBuilder& SessionBuilder::client_id(std::string id) {
    options_.client_id = std::move(id);
    return *this;
}

SessionBuilder& SessionBuilder::auth(std::string username, std::string password) {
    options_.credentials = Credentials{std::move(username), std::move(password)};
    return *this;
}

SessionBuilder& SessionBuilder::protocol(Protocol protocol) {
    options_.protocol = protocol;
    return *this;
}

SessionBuilder& SessionBuilder::keep_alive(std::chrono::seconds interval) {
    options_.keep_alive = interval;
    return *this;
}

SessionBuilder& SessionBuilder::clean_session(bool clean) {
    options_.clean_session = clean;
    return *this;
}

SessionBuilder& SessionBuilder::auto_reconnect(ReconnectPolicy policy) {
    options_.reconnect = policy;
    return *this;
}

SessionBuilder& SessionBuilder::no_reconnect() {
    options_.reconnect.enabled = false;
    return *this;
}

SessionBuilder& SessionBuilder::tls(std::string ca_file, std::string cert_file,
                                    std::string key_file, bool skip_verify) {
    TlsConfig config;
    config.ca_file = std::move(ca_file);
    config.cert_file = std::move(cert_file);
    config.key_file = std::move(key_file);
    config.skip_verify = skip_verify;
    options_.tls = std::move(config);
    return *this;
}

SessionBuilder& SessionBuilder::tls(TlsConfig config) {
    options_.tls = std::move(config);
    return *this;
}

SessionBuilder& SessionBuilder::performance(std::size_t buffer_kb, int max_pending) {
    options_.performance.buffer_kb = buffer_kb;
    options_.performance.max_pending = max_pending;
    return *this;
}

SessionBuilder& SessionBuilder::performance(PerformanceOptions options) {
    options_.performance = options;
    return *this;
}

SessionBuilder& SessionBuilder::message_channel_size(std::size_t size) {
    options_.message_channel_size = size;
    return *this;
}

SessionBuilder& SessionBuilder::timeouts(std::chrono::milliseconds connect,
                                         std::chrono::milliseconds write) {
    options_.connect_timeout = connect;
    options_.write_timeout = write;
    return *this;
}

SessionBuilder& SessionBuilder::persistent() {
    options_.persistent = true;
    options_.clean_session = false;
    return *this;
}

StorageOptions& SessionBuilder::storage() {
    if (!options_.storage) options_.storage.emplace();
    return *options_.storage;
}

SessionBuilder& SessionBuilder::memory_storage() {
    storage().type = StorageType::memory;
    return *this;
}

SessionBuilder& SessionBuilder::file_storage(std::string directory, bool sync) {
    storage().type = StorageType::file;
    storage().directory = std::move(directory);
    storage().file_sync = sync;
    return *this;
}

SessionBuilder& SessionBuilder::redis_storage(std::string address) {
    storage().type = StorageType::redis;
    storage().redis_address = std::move(address);
    return *this;
}

SessionBuilder& SessionBuilder::redis_auth(std::string username, std::string password, int db) {
    storage().redis_user = std::move(username);
    storage().redis_password = std::move(password);
    storage().redis_db = db;
    return *this;
}

SessionBuilder& SessionBuilder::restore_subscriptions(MessageHandler handler) {
    options_.restored_handler = std::move(handler);
    return *this;
}

SessionBuilder& SessionBuilder::will(std::string topic, std::string payload, int qos,
                                     bool retained) {
    options_.will = Will{std::move(topic), std::move(payload), qos, retained};
    return *this;
}

SessionBuilder& SessionBuilder::will(Will will) {
    options_.will = std::move(will);
    return *this;
}

SessionBuilder& SessionBuilder::session_expiry(std::chrono::seconds interval) {
    if (!options_.connect_properties) options_.connect_properties.emplace();
    options_.connect_properties->session_expiry = interval;
    return *this;
}

SessionBuilder& SessionBuilder::connect_properties(ConnectProperties properties) {
    options_.connect_properties = std::move(properties);
    return *this;
}

SessionBuilder& SessionBuilder::subscribe(std::string filter, int qos, MessageHandler handler,
                                          SubscribeOptions options) {
    options_.subscriptions.push_back(
        {std::move(filter), qos, std::move(handler), std::move(options)});
    return *this;
}

SessionBuilder& SessionBuilder::logger(std::shared_ptr<spdlog::logger> logger) {
    options_.logger = std::move(logger);
    return *this;
}

Options SessionBuilder::build() const {
    validate(options_);
    return options_;
}

SessionBuilder quick_connect(std::string name, std::string broker) {
    SessionBuilder builder(std::move(name));
    builder.broker(std::move(broker));
    return builder;
}

SessionBuilder secure_connect(std::string name, std::string broker, std::string ca_file) {
    SessionBuilder builder(std::move(name));
    builder.broker(std::move(broker)).tls(std::move(ca_file));
    return builder;
}

}  // namespace mqttx
