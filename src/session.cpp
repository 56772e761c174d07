#include "mqttx/session.hpp"

#include "mqttx/prometheus.hpp"
#include "prometheus_text.hpp"
#include "session/session_core.hpp"

namespace mqttx {

const char* to_string(SessionState state) noexcept {
    switch (state) {
        case SessionState::disconnected:
            return "disconnected";
        case SessionState::connecting:
            return "connecting";
        case SessionState::connected:
            return "connected";
        case SessionState::reconnecting:
            return "reconnecting";
        case SessionState::closed:
            return "closed";
    }
    return "unknown";
}

Session::Session(std::shared_ptr<detail::SessionCore> core) noexcept : core_(std::move(core)) {}

Session::~Session() {
    core_->close();
}

const std::string& Session::name() const noexcept {
    return core_->name();
}
const std::string& Session::client_id() const noexcept {
    return core_->client_id();
}
const Options& Session::options() const noexcept {
    return core_->options();
}
SessionState Session::state() const noexcept {
    return core_->state();
}
bool Session::is_connected() const noexcept {
    return core_->state() == SessionState::connected;
}
std::string Session::current_broker() const {
    return core_->current_broker();
}
SessionMetrics Session::metrics() const noexcept {
    return core_->metrics();
}

std::map<std::string, RouteStats> Session::route_metrics() const {
    return core_->route_stats();
}

std::optional<StorageMetrics> Session::storage_metrics() const {
    return core_->storage_metrics();
}

std::string Session::prometheus_metrics() const {
    PrometheusExporter exporter;
    detail::declare_session_families(exporter);
    detail::add_session(exporter, {name(), metrics(), route_metrics(), storage_metrics()});
    return exporter.text();
}

void Session::reset_metrics() noexcept {
    core_->reset_metrics();
}

std::optional<ConnectInfo> Session::connect_info() const {
    if (auto info = core_->connect_info()) return *info;
    return std::nullopt;
}

const std::optional<StoredSessionState>& Session::stored_state() const noexcept {
    return core_->stored_state();
}
void Session::close(const DisconnectOptions& disconnect) {
    validate(disconnect, core_->options());
    core_->close(&disconnect);
}

void Session::close() noexcept {
    core_->close();
}

DeliveryToken Session::publish(std::string_view topic, std::string_view payload, int qos,
                               bool retained) {
    return core_->publish(topic, payload, qos, retained, nullptr);
}

DeliveryToken Session::publish(std::string_view topic, std::string_view payload, int qos,
                               bool retained, const PublishProperties& properties) {
    return core_->publish(topic, payload, qos, retained, &properties);
}

Route Session::subscribe(std::string_view filter, int qos, MessageHandler handler,
                         const SubscribeOptions& options) {
    return Route(core_->subscribe(filter, qos, std::move(handler), options));
}

int Session::unsubscribe(std::string_view filter, const UserProperties& user_properties) {
    return core_->unsubscribe(filter, user_properties);
}

}  // namespace mqttx
