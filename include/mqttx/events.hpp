// Session lifecycle events. Handlers run on the library's dispatcher threads, in
// order per session, never under a lock of the library: they may call back into
// the manager.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>

#include "mqttx/error.hpp"
#include "mqttx/session_state.hpp"

namespace mqttx {

enum class EventType {
    session_connecting,
    session_connected,
    session_ready,  // connected and every subscription in place
    session_disconnected,
    session_reconnecting,
    session_added,
    session_removed,
    session_state_changed,
    forwarder_stopped,  // a session it used was removed
    error,
};

const char* to_string(EventType type) noexcept;

struct StateChange {
    SessionState old_state;
    SessionState new_state;
};
struct ConnectInfo {
    std::string broker;
    bool session_present = false;
};
struct DisconnectInfo {
    std::string reason;
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

using EventData = std::variant<std::monostate, StateChange, ConnectInfo, DisconnectInfo,
                               ReconnectInfo, ErrorInfo, ForwarderStopped>;

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
