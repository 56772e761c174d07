// SessionManager: owns many sessions and the threads they share. Thread-safe; no
// method blocks while a session connects, and no lock is held while user code runs.
// The destructor closes everything within the sessions' disconnect timeouts.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqttx/delivery_token.hpp"
#include "mqttx/events.hpp"
#include "mqttx/forwarder.hpp"
#include "mqttx/message_channel.hpp"
#include "mqttx/options.hpp"
#include "mqttx/route.hpp"
#include "mqttx/session.hpp"
#include "mqttx/session_state.hpp"
#include "mqttx/subscribe_options.hpp"

namespace mqttx {

namespace detail {
class Runtime;
class ChannelQueue;
class GlobalRoute;
class GlobalRoutes;
}  // namespace detail

// What listen() returns: `auto [channel, route] = manager.listen("a/#");`
struct Listener {
    MessageChannel channel;
    Route route;
};

struct ManagerOptions {
    std::size_t dispatcher_threads = 2;       // threads running message and event handlers
    std::size_t dispatch_queue_size = 65536;  // per thread: a bound, grown to on demand
    // How long Paho's receive thread may wait for room in a full dispatch queue
    // before the message is dropped and counted (it blocks every session meanwhile).
    std::chrono::milliseconds dispatch_block_timeout{1000};
    std::shared_ptr<spdlog::logger> logger{};  // empty: the library's "mqttx" logger
    // Works around Paho C 1.3.12 delaying every connect by about a second (2 s while
    // other sessions idle, 1 s after a broker restart), with a loopback connection that
    // wakes Paho's receive thread while a session connects (see src/paho_waker.hpp).
    // Costs one Paho client and two sockets per manager.
    bool wake_paho_on_connect = true;
    // Run every message handler on Paho's receive thread: lowest latency, but a slow
    // handler stalls every session of the process, and a handler may not subscribe.
    // SubscribeOptions::handler_thread does this for one route.
    bool inline_handlers = false;
};

class SessionManager {
  public:
    explicit SessionManager(ManagerOptions options = {});
    ~SessionManager();
    SessionManager(const SessionManager&) = delete;
    SessionManager& operator=(const SessionManager&) = delete;

    // Validates `options` and registers a session; does not connect. Throws Error:
    // configuration, duplicate_session, session_closed (manager closed).
    std::shared_ptr<Session> add_session(Options options);
    // Closes the session (bounded by its disconnect timeout) and forgets it. Throws
    // session_not_found.
    void remove_session(std::string_view name);
    // Throws session_not_found.
    std::shared_ptr<Session> get_session(std::string_view name) const;
    std::vector<std::string> list_sessions() const;
    std::map<std::string, SessionState> get_all_sessions_status() const;

    // Start connecting and return at once; progress shows in events and states.
    void connect(std::string_view name);
    void connect_all();
    // Waits until the session is connected with its subscriptions in place. Throws
    // Error (kind timeout) naming the session, or session_not_found / session_closed.
    void wait_for_session(std::string_view name, std::chrono::milliseconds timeout);
    // Throws Error (kind timeout) naming every session not ready.
    void wait_for_all_sessions(std::chrono::milliseconds timeout);

    // Session::publish() on the named session; throws what it throws, and
    // session_not_found.
    DeliveryToken publish_to(std::string_view session, std::string_view topic,
                             std::string_view payload, int qos = 0, bool retained = false,
                             const PublishProperties& properties = {});
    // Publishes on every session; returns one token per session, in name order. Non-empty
    // properties need every session to be MQTT 5; checked on each before any publishes.
    std::vector<DeliveryToken> publish_to_all(std::string_view topic, std::string_view payload,
                                              int qos = 0, bool retained = false,
                                              const PublishProperties& properties = {});
    // Session::subscribe() on the named session.
    Route subscribe_to(std::string_view session, std::string_view filter, int qos,
                       MessageHandler handler, const SubscribeOptions& options = {});

    // Routes matching messages of every session, present and future, to `handler`.
    // Throws what Session::subscribe throws; on failure nothing stays registered.
    Route handle(std::string_view filter, MessageHandler handler, int qos = 0,
                 const SubscribeOptions& options = {});
    // The same for one session.
    Route handle_to(std::string_view session, std::string_view filter, MessageHandler handler,
                    int qos = 0, const SubscribeOptions& options = {});
    // Like handle(), into a bounded channel (ChannelOptions{}: capacity 1000).
    Listener listen(std::string_view filter, int qos = 0, ChannelOptions channel = {},
                    const SubscribeOptions& options = {});
    // Like handle_to(); the channel's capacity defaults to the session's
    // Options::message_channel_size.
    Listener listen_to(std::string_view session, std::string_view filter, int qos = 0,
                       std::optional<ChannelOptions> channel = std::nullopt,
                       const SubscribeOptions& options = {});

    // Disconnects every session; they stay registered and can connect again.
    void disconnect_all();

    EventSubscription on_event(EventType type, EventHandler handler);
    EventSubscription on_any_event(EventHandler handler);

    // Totals over the sessions and how many are in which state.
    ManagerMetrics metrics() const;
    // The manager, every session, route and forwarder in Prometheus text format 0.0.4.
    std::string prometheus_text() const;
    // Counters of every session and forwarder back to zero (see Session::reset_metrics).
    void reset_metrics();

    // The forwarders between this manager's sessions.
    ForwarderManager& forwarders() noexcept { return *forwarders_; }
    const ForwarderManager& forwarders() const noexcept { return *forwarders_; }

    // Closes every session and every listen() channel (a consumer iterating one sees
    // its end) and stops the threads. Idempotent. Must not be called from a message or
    // event handler.
    void close();

  private:
    friend class ForwarderManager;  // reaches runtime_ for its events
    std::shared_ptr<Session> find(std::string_view name) const;
    std::vector<std::shared_ptr<Session>> all_sessions() const;
    void add_removed(ManagerMetrics& totals) const;  // what removed sessions counted
    std::shared_ptr<detail::GlobalRoute> add_global_route(std::string_view filter,
                                                          MessageHandler handler, int qos,
                                                          const SubscribeOptions& options);
    // listen() channels end with the manager, listen_to() ones also with their session.
    void keep_channel(std::string session, const std::shared_ptr<detail::ChannelQueue>& queue);
    void close_channels(std::string_view session);  // empty: every channel

    std::shared_ptr<detail::Runtime> runtime_;
    std::shared_ptr<detail::GlobalRoutes> global_routes_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Session>, std::less<>> sessions_;
    std::size_t next_worker_ = 0;
    SessionMetrics removed_totals_;  // counters of removed sessions (manager totals)
    bool closed_ = false;
    // (session name, or empty for listen(); the channel), for close_channels().
    std::vector<std::pair<std::string, std::weak_ptr<detail::ChannelQueue>>> channels_;
    std::unique_ptr<ForwarderManager> forwarders_;  // stopped before the sessions close
};

}  // namespace mqttx
