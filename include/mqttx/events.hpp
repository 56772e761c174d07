// Session lifecycle events. Handlers run on the library's dispatcher threads, in
// order per session, never under a lock of the library: they may call back into
// the manager.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mqttx/error.hpp"
#include "mqttx/properties.hpp"
#include "mqttx/session_state.hpp"

namespace mqttx {

// Each type names the Event::data alternative it carries (std::get<...>(event.data)).
enum class EventType {
    session_connecting,     // std::monostate
    session_connected,      // ConnectInfo
    session_ready,          // std::monostate: connected and every subscription in place
    session_disconnected,   // DisconnectInfo
    session_reconnecting,   // ReconnectInfo
    session_added,          // std::monostate
    session_removed,        // std::monostate
    session_state_changed,  // StateChange
    forwarder_stopped,      // ForwarderStopped: a session it used was removed
    error,                  // ErrorInfo
    // WindowStalled: the oldest in-flight message has waited
    // PerformanceOptions::in_flight_stall_after for the broker's acknowledgement while
    // connected (once per stall).
    window_stalled,
};

const char* to_string(EventType type) noexcept;

struct StateChange {
    SessionState old_state;
    SessionState new_state;
};
// A connect's outcome. The MQTT 5 fields hold what the broker's CONNACK said, or MQTT's
// default for a property it left out (and for every MQTT 3.1.1 connect).
struct ConnectInfo {
    std::string broker;
    bool session_present = false;
    int reason_code = 0;  // 0 success (MQTT 5 CONNACK Reason Code)
    std::string reason_string{};
    // The client id the broker assigned; empty when it kept ours.
    std::string assigned_client_id{};
    // The keep-alive the broker imposed (Server Keep Alive) on this connection or an
    // earlier one of the session. Paho cannot change the keep-alive of a connection, so
    // a session that connected with a longer one connects again at once with this one.
    std::optional<std::chrono::seconds> server_keep_alive{};
    // The broker's own Session Expiry Interval, when it overrides ours.
    std::optional<std::chrono::seconds> session_expiry{};
    int maximum_qos = 2;           // publishes above it are refused (kind invalid_qos)
    bool retain_available = true;  // false: retained publishes are refused (kind publish)
    bool wildcard_subscription_available = true;
    bool subscription_identifiers_available = true;
    bool shared_subscription_available = true;
    // QoS 1/2 messages the broker takes unacknowledged: the publish window keeps to it.
    std::uint32_t receive_maximum = 65535;
    // The largest packet the broker takes (0: MQTT's limit); larger publishes are refused.
    std::uint32_t maximum_packet_size = 0;
    std::uint32_t topic_alias_maximum = 0;  // aliases the broker accepts from us
    std::string response_information{};     // asked for with request_response_information
    std::string server_reference{};         // another broker to use
    UserProperties user_properties{};
};
// Why a connection ended, as far as a client can tell. Paho C 1.3.12 reports a dropped
// connection without its cause: a socket error, the broker closing the connection and
// a keep-alive timeout look alike to the library, so they are one cause.
enum class DisconnectCause {
    application,        // disconnect() or close()
    broker_disconnect,  // MQTT 5: the broker sent DISCONNECT with a reason code
    connection_lost,    // the broker closed it, the network failed or the keep-alive expired
};
const char* to_string(DisconnectCause cause) noexcept;

struct DisconnectInfo {
    std::string reason;  // one line for a person, naming the broker
    DisconnectCause cause = DisconnectCause::connection_lost;
    std::string broker{};                        // the broker it was connected to
    std::chrono::milliseconds connected_for{0};  // how long the connection held
    // From the broker's DISCONNECT (MQTT 5) only:
    int reason_code = 0;             // e.g. 0x8B server shutting down, 0x8E session taken over
    std::string reason_string{};     // the broker's own words, if it sent any
    std::string server_reference{};  // another broker to use, if it named one
};
struct ReconnectInfo {
    int attempt = 0;
    std::chrono::milliseconds delay{0};
};
struct ErrorInfo {
    ErrorKind kind = ErrorKind::internal;
    std::string message;
};

struct ForwarderStopped {
    std::string forwarder;
    std::string reason;
};

struct WindowStalled {
    std::string broker;
    std::chrono::milliseconds waited{0};  // by the oldest message
    struct InFlight {
        int qos = 0;
        int packet_id = 0;  // 0 while Paho has not given it one
    };
    std::vector<InFlight> messages;  // in flight past the limit, oldest first
};

using EventData = std::variant<std::monostate, StateChange, ConnectInfo, DisconnectInfo,
                               ReconnectInfo, ErrorInfo, ForwarderStopped, WindowStalled>;

struct Event {
    EventType type;
    std::string session;
    EventData data;
    std::chrono::system_clock::time_point timestamp;
};

using EventHandler = std::function<void(const Event&)>;

namespace detail {
class EventBus;
}

// RAII registration of an event handler: destruction or unsubscribe() removes it. As with
// Route::stop(), once that returns the handler is not running and never runs again
// (called inside an event handler it does not wait, which could deadlock).
class EventSubscription {
  public:
    EventSubscription() = default;
    EventSubscription(std::weak_ptr<detail::EventBus> bus, std::uint64_t id) noexcept
        : bus_(std::move(bus)), id_(id) {}
    EventSubscription(EventSubscription&& other) noexcept
        : bus_(std::move(other.bus_)), id_(std::exchange(other.id_, 0)) {}
    EventSubscription& operator=(EventSubscription&& other) noexcept {
        if (this != &other) {
            unsubscribe();
            bus_ = std::move(other.bus_);
            id_ = std::exchange(other.id_, 0);
        }
        return *this;
    }
    EventSubscription(const EventSubscription&) = delete;
    EventSubscription& operator=(const EventSubscription&) = delete;
    ~EventSubscription() { unsubscribe(); }

    void unsubscribe() noexcept;

  private:
    std::weak_ptr<detail::EventBus> bus_;
    std::uint64_t id_ = 0;
};

}  // namespace mqttx
