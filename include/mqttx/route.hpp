// Route: the registration of one message handler (or channel) on one filter.
// Move-only RAII: stop() or destruction removes this route only. The broker
// subscription is shared by every route on the same (session, filter) and is
// removed when the last of them stops.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace mqttx {

struct RouteStats {
    std::uint64_t received = 0;  // messages handed to the handler
    std::uint64_t dropped = 0;   // messages not delivered (queue overflow)
    std::uint64_t bytes = 0;     // payload bytes handed to the handler
    std::uint64_t errors = 0;    // handler exceptions
    std::chrono::system_clock::time_point last_message{};
};

namespace detail {
// Implemented by whatever owns a route (a session, the manager).
class RouteHandle {
  public:
    virtual ~RouteHandle() = default;
    virtual void stop() noexcept = 0;
    virtual bool active() const noexcept = 0;
    virtual RouteStats stats() const noexcept = 0;
    virtual const std::string& filter() const noexcept = 0;
    virtual int granted_qos() const noexcept { return -1; }
};
}  // namespace detail

class Route {
  public:
    Route() = default;
    explicit Route(std::shared_ptr<detail::RouteHandle> handle) noexcept
        : handle_(std::move(handle)) {}
    Route(Route&&) noexcept = default;
    Route& operator=(Route&& other) noexcept {
        if (this != &other) {
            stop();
            handle_ = std::move(other.handle_);
        }
        return *this;
    }
    Route(const Route&) = delete;
    Route& operator=(const Route&) = delete;
    ~Route() { stop(); }

    // Removes the route. When it returns the handler is not running and never runs
    // again, so what the handler uses may be destroyed. Called from inside a message
    // handler it does not wait (that could deadlock): the route gets no new message, and
    // a call already running elsewhere finishes. Later calls do nothing; stats() stay
    // readable. Never throws: a failed unsubscribe at the broker is logged and counted.
    void stop() noexcept {
        if (handle_) handle_->stop();
    }
    bool active() const noexcept { return handle_ && handle_->active(); }
    RouteStats stats() const noexcept { return handle_ ? handle_->stats() : RouteStats{}; }
    std::string filter() const { return handle_ ? handle_->filter() : std::string(); }
    // The QoS the broker granted this route's subscription (its SUBACK), which may be
    // below the QoS asked for: a downgrade is also logged and reported as an error event.
    // -1 while the broker has not answered (not connected), after stop(), and for a
    // route over several sessions (SessionManager::handle()).
    int granted_qos() const noexcept { return handle_ ? handle_->granted_qos() : -1; }

  private:
    std::shared_ptr<detail::RouteHandle> handle_;
};

}  // namespace mqttx
