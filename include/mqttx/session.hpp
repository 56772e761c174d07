// Session: one MQTT connection (one Paho async_client) owned by a SessionManager.
// Every method is thread-safe. After close() or remove_session() every call
// fails with an Error of kind session_closed; a shared_ptr kept past that stays safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mqttx/delivery_token.hpp"
#include "mqttx/events.hpp"
#include "mqttx/message.hpp"
#include "mqttx/metrics.hpp"
#include "mqttx/options.hpp"
#include "mqttx/properties.hpp"
#include "mqttx/route.hpp"
#include "mqttx/session_state.hpp"
#include "mqttx/storage.hpp"
#include "mqttx/subscribe_options.hpp"

namespace mqttx {

namespace detail {
class SessionCore;
}

class Session {
  public:
    explicit Session(std::shared_ptr<detail::SessionCore> core) noexcept;
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    const std::string& name() const noexcept;
    const std::string& client_id() const noexcept;
    const Options& options() const noexcept;
    SessionState state() const noexcept;
    bool is_connected() const noexcept;
    // URI of the broker the session is connected to ("" when not connected).
    std::string current_broker() const;

    // Publishes `payload` (bytes) to `topic`. Returns at once; the token tells when
    // the broker has it. While disconnected the message goes to the offline buffer
    // (PerformanceOptions::max_pending). Throws Error: invalid_topic, invalid_qos,
    // payload_too_large, configuration (properties on a v3.1.1 session),
    // buffer_full, session_closed.
    DeliveryToken publish(std::string_view topic, std::string_view payload, int qos = 0,
                          bool retained = false);
    DeliveryToken publish(std::string_view topic, std::string_view payload, int qos, bool retained,
                          const PublishProperties& properties);

    // Routes messages matching `filter` to `handler` and subscribes at the broker
    // (once per filter, at the highest QoS asked). When connected, waits for the
    // broker's acknowledgement (Options::write_timeout) and throws Error (kind
    // subscription) if it refuses; when not connected, the subscription is made on
    // connect. Do not call it from a handler running inline on Paho's thread.
    Route subscribe(std::string_view filter, int qos, MessageHandler handler,
                    const SubscribeOptions& options = {});
    // Stops every route of this session on exactly `filter` and unsubscribes: when
    // connected, waits for the broker's UNSUBACK (Options::write_timeout) and returns its
    // reason code (0 success; MQTT 5: 0x11 "no subscription existed"), throwing Error
    // (kind subscription, or timeout) on a refusal; the routes are gone either way. -1
    // when not connected (a persistent session unsubscribes at the next connect) or
    // called from a handler on Paho's receive thread (not waited for there); 0 when routes
    // added meanwhile keep the subscription. `user_properties`: MQTT 5 only.
    int unsubscribe(std::string_view filter, const UserProperties& user_properties = {});

    SessionMetrics metrics() const noexcept;
    // The counters of this session's routes, summed per filter.
    std::map<std::string, RouteStats> route_metrics() const;
    // Persistent sessions with file or Redis storage: its counters; empty otherwise.
    std::optional<StorageMetrics> storage_metrics() const;
    // This session, its routes and its storage in Prometheus text format 0.0.4 (the
    // families of SessionManager::prometheus_text()).
    std::string prometheus_metrics() const;
    // Counters, rates and the latency histogram back to zero; gauges stay.
    void reset_metrics() noexcept;

    // Persistent sessions: what the last run saved (subscriptions, times), read when this
    // session was added; empty for a first run, a clean session or an unusable record.
    const std::optional<StoredSessionState>& stored_state() const noexcept;

    // What the broker said at the last connect (MQTT 5 CONNACK: limits, assigned client
    // id, server keep-alive...); empty before the first connect.
    std::optional<ConnectInfo> connect_info() const;

    // Disconnects (bounded by Options::disconnect_timeout) and refuses further calls.
    void close() noexcept;
    // The same with an MQTT 5 DISCONNECT that carries a reason code and properties
    // (0x04 makes the broker publish the will). Throws Error (configuration) for options
    // the session cannot send, and then does not close.
    void close(const DisconnectOptions& disconnect);

    detail::SessionCore& core() noexcept { return *core_; }

  private:
    std::shared_ptr<detail::SessionCore> core_;
};

}  // namespace mqttx
