// SessionCore: one Paho async_client and the session around it. It coordinates the
// session's units: the connection state machine (connection.cpp, with Backoff), the
// outbox and publish window (Outbox; publish.cpp), broker subscriptions and routes
// (SubscriptionTable, Router; subscriptions.cpp), persistence (SessionStorage,
// PahoPersistence; persistence.cpp) and the receive path (receive.cpp). Paho's
// callbacks (on its single receive thread) only record, enqueue and return.
// docs/architecture.md draws the whole.
#pragma once

#include <mqtt/async_client.h>
#include <spdlog/common.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker_uri.hpp"
#include "delivery.hpp"
#include "mqttx/delivery_token.hpp"
#include "mqttx/events.hpp"
#include "mqttx/options.hpp"
#include "mqttx/route.hpp"
#include "mqttx/session_state.hpp"
#include "mqttx/storage.hpp"
#include "mqttx/subscribe_options.hpp"
#include "router.hpp"
#include "session/backoff.hpp"
#include "session/outbox.hpp"
#include "session/paho_persistence.hpp"
#include "session/session_storage.hpp"
#include "session/subscription_table.hpp"
#include "session/topic_aliases.hpp"
#include "session_stats.hpp"
#include "tls.hpp"

namespace mqttx::detail {

class OrderedEvents;
class Runtime;

// Set while a message handler runs inline on Paho's receive thread, where waiting for
// the broker (subscribe, remove, close) would wait forever.
inline thread_local bool inline_delivery_thread = false;
inline bool on_inline_handler_thread() noexcept {
    return inline_delivery_thread;
}

class SessionCore final : public RouteOwner, public std::enable_shared_from_this<SessionCore> {
  public:
    // A connection that lasted this long resets the reconnect backoff when it drops.
    static constexpr std::chrono::seconds stable_connection{10};

    // `options` must have passed validate().
    SessionCore(Options options, std::shared_ptr<Runtime> runtime, std::size_t worker);
    ~SessionCore() override;

    const std::string& name() const noexcept { return options_.name; }
    const std::string& client_id() const noexcept { return client_id_; }
    const Options& options() const noexcept { return options_; }
    std::size_t worker() const noexcept { return worker_; }
    SessionState state() const noexcept { return state_.load(std::memory_order_acquire); }
    // Connected and every subscription acknowledged.
    bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }
    // Why the last connect failed; empty after a successful one (or before any).
    std::string last_connect_error() const;
    std::string current_broker() const;
    SessionMetrics metrics() const noexcept;
    // On the scheduler, about once a second: samples the message rates and reports a
    // stalled publish window (PerformanceOptions::in_flight_stall_after).
    void every_second();
    // Runs `task` on the manager's scheduler thread after `delay` (what is built on a
    // session, such as Requester's timeouts, needs no thread of its own). False once the
    // manager has stopped.
    bool post_after(std::chrono::milliseconds delay, std::function<void()> task);
    std::map<std::string, RouteStats> route_stats() const;
    void reset_metrics() noexcept;
    std::weak_ptr<SessionStats> stats() const noexcept { return stats_; }
    std::optional<StorageMetrics> storage_metrics() const;
    // What the last run of a persistent session saved (see StoredSessionState).
    const std::optional<StoredSessionState>& stored_state() const noexcept;
    // What the broker said at the last connect (null before the first).
    std::shared_ptr<const ConnectInfo> connect_info() const;

    // Makes the routes of Options::subscriptions (they live as long as the session).
    void install_initial_subscriptions();
    void start();
    void disconnect() noexcept;
    // `how`: the MQTT 5 DISCONNECT's reason code and properties (validated); null: plain.
    void close(const DisconnectOptions* how = nullptr) noexcept;
    // close() in two steps, so a manager can close many sessions in parallel: refuse
    // further calls and send DISCONNECT, then wait (until `deadline`) and release routes.
    std::shared_ptr<mqtt::token> begin_close(SessionState& old_state,
                                             const DisconnectOptions* how = nullptr) noexcept;
    void finish_close(SessionState old_state, const std::shared_ptr<mqtt::token>& token,
                      std::chrono::steady_clock::time_point deadline) noexcept;
    std::chrono::steady_clock::time_point disconnect_deadline() const noexcept;

    DeliveryToken publish(std::string_view topic, std::string_view payload, int qos, bool retained,
                          const PublishProperties* properties);
    // The same with the topic and payload already shared (the forwarder passes on the
    // received payload without copying it); `observer` hears the outcome with `tag`.
    DeliveryToken publish_shared(mqtt::string_ref topic, mqtt::binary_ref payload, int qos,
                                 bool retained, const PublishProperties* properties,
                                 std::weak_ptr<DeliveryObserver> observer = {},
                                 std::int64_t tag = 0);
    std::shared_ptr<RouteEntry> subscribe(std::string_view filter, int qos, MessageHandler handler,
                                          const SubscribeOptions& options = {});
    // The UNSUBACK's reason code; -1 when not connected (owed to the broker at the next
    // connect of a persistent session).
    int unsubscribe(std::string_view filter, const UserProperties& user_properties = {});
    void remove_route(RouteEntry& entry) noexcept override;
    int granted_qos(const RouteEntry& entry) const noexcept override;

  private:
    // Forwards Paho's action callbacks to member functions; nothing unwinds into Paho.
    class ActionForwarder final : public mqtt::iaction_listener {
      public:
        using Callback = void (SessionCore::*)(const mqtt::token&);
        ActionForwarder(SessionCore& core, Callback success, Callback failure)
            : core_(core), success_(success), failure_(failure) {}
        void on_success(const mqtt::token& token) override { call(success_, token); }
        void on_failure(const mqtt::token& token) override { call(failure_, token); }

      private:
        void call(Callback callback, const mqtt::token& token) noexcept {
            try {
                (core_.*callback)(token);
            } catch (...) {
                core_.stats_->count_error();
            }
        }

        SessionCore& core_;
        Callback success_;
        Callback failure_;
    };

    // Paho's threads.
    void on_message(mqtt::const_message_ptr message) noexcept;
    mqtt::const_message_ptr resolve_topic_alias(mqtt::const_message_ptr message);
    void on_connect_success(const mqtt::token& token);
    void on_connect_failure(const mqtt::token& token);
    // `info` says why as far as it is known; the broker, duration and text are added here.
    void on_connection_lost(DisconnectInfo info) noexcept;
    static DisconnectInfo broker_disconnect(const mqtt::properties& properties, int reason_code);
    static std::string describe_loss(const DisconnectInfo& info);
    void on_resubscribe_success(const mqtt::token& token);
    void on_resubscribe_failure(const mqtt::token& token);
    // Counts one answer to restore_subscriptions(); the last one marks the session ready.
    // `granted`: the QoS the SUBACK granted, granted_unknown, or not_granted.
    static constexpr int granted_unknown = -1;
    static constexpr int not_granted = -2;
    void resubscribe_answered(std::uint64_t generation, const std::string& filter, int granted);
    // With mutex_ held: "" when the broker connected to (its CONNACK) supports what a
    // subscription to `filter` with `options` needs, else why not.
    std::string unsupported_by_broker(std::string_view filter,
                                      const SubscribeOptions& options) const;
    // Logs and reports (error event) a SUBACK that granted less than was asked.
    void report_downgrade(const std::string& filter, int asked, int granted);
    // Waits (Options::write_timeout) for the UNSUBACK; its reason code, or throws Error.
    int await_unsuback(const mqtt::token_ptr& token, std::string_view filter);
    void on_publish_success(const mqtt::token& token);
    void on_publish_failure(const mqtt::token& token);
    bool outbox_waiting() const;  // messages wait and the session is ready
    void post_pump();
    void pump() noexcept;
    void unspill(std::uint64_t sequence) noexcept;
    // Calls Paho's publish; false when Paho is disconnected (the message is back first in
    // the outbox). Other failures fail the delivery.
    bool hand_to_paho(const std::shared_ptr<Delivery>& delivery) noexcept;
    void fail_undelivered() noexcept;
    // "" when the message's PUBLISH fits MQTT's limit and the broker's, else why not.
    std::string packet_size_problem(const Delivery& delivery) const;
    // The poison guard (see PerformanceOptions::max_publish_attempts), when the
    // connection of generation `lost` dropped.
    void give_up_poison(std::uint64_t lost) noexcept;
    void resume_if_link_up(std::uint32_t sent_in) noexcept;
    // Storage: the outbox's messages are kept until Paho has them, and read back when a
    // session with the same client id and storage starts again.
    void store(Delivery& delivery);
    void unstore(Delivery& delivery) noexcept;
    void on_publish_written(int message_id) noexcept;
    void on_paho_resends_done(std::size_t count) noexcept;
    void restore_outbox();
    // The session state: read at start; saved (on the scheduler, coalesced) when it
    // changes; written one last time by close, after which nothing overwrites it.
    void load_state();
    void save_state() noexcept;
    void write_state(bool final) noexcept;

    // Scheduler thread (or the caller of start()).
    // `epoch` is the start()/disconnect() era the attempt belongs to; attempts of an
    // earlier era are dropped.
    void attempt_connect(std::uint64_t epoch);
    void restore_subscriptions(std::uint64_t generation);
    void connection_failed(Error error);
    void schedule_reconnect(std::chrono::milliseconds delay, std::uint64_t epoch);
    // `granted`: each filter the broker granted and at which QoS (-1: not known).
    void mark_ready(std::uint64_t generation,
                    const std::vector<std::pair<std::string, int>>& granted);
    // DISCONNECT, returning its token (null when not connected); waiting is separate so
    // that a manager can close many sessions in parallel.
    std::shared_ptr<mqtt::token> send_disconnect(const DisconnectOptions* how = nullptr) noexcept;
    void await_disconnect(const std::shared_ptr<mqtt::token>& token,
                          std::chrono::steady_clock::time_point deadline) noexcept;

    SessionState set_state(SessionState next);  // returns the old state
    // Lifecycle events are queued with mutex_ held, together with the state change they
    // tell of, and delivered in that order on the session's worker once flushed
    // (OrderedEvents), so handlers see one session's events in the order its state
    // changed. set_state() queues session_state_changed.
    void queue_event(EventType type, EventData data = {});
    void queue_local_disconnect(const char* what);  // with mutex_ held
    void flush_events();
    void announce_state();  // flush_events(), then wake the readiness waits
    void emit(EventType type, EventData data = {});  // posted at once (errors)
    // Counts and logs (at `level`).
    void log_error(const Error& error, spdlog::level::level_enum level);
    // Counts, logs (at `level`) and emits the error event.
    void report(const Error& error, spdlog::level::level_enum level = spdlog::level::warn);
    void check_open() const;
    // The UNSUBSCRIBE's token, null when not connected (then owed for the next connect).
    mqtt::token_ptr unsubscribe_at_broker(const std::string& filter,
                                          const UserProperties& user_properties = {}) noexcept;
    // With broker_ops_mutex_ held: removes a route, and the broker subscription with
    // the last route on its filter when `unsubscribe_if_last`.
    void drop_route(RouteEntry& entry, bool unsubscribe_if_last) noexcept;
    mqtt::connect_options make_connect_options(const BrokerUri& broker) const;
    mqtt::properties connect_properties() const;  // MQTT 5 CONNECT properties
    int paho_keep_alive() const noexcept;         // the interval Paho connects with, s
    // The broker imposed a shorter keep-alive than Paho connected with: disconnect and
    // connect again (the connect stays in flight meanwhile).
    void reconnect_for_keep_alive(std::chrono::seconds imposed, int connected_with);
    // The message Paho gets for `delivery`: the delivery's own, or (QoS 0 with topic
    // aliases on) one that carries the topic's alias. With handoff_mutex_ held.
    mqtt::const_message_ptr message_for_paho(const std::shared_ptr<Delivery>& delivery);

    const Options options_;
    const std::string client_id_;
    const std::shared_ptr<const std::string> shared_name_;  // in every Message, no copies
    const std::shared_ptr<Runtime> runtime_;
    const std::size_t worker_;
    const std::shared_ptr<spdlog::logger> log_;
    const std::shared_ptr<SessionStats> stats_;
    const std::shared_ptr<Router> router_;
    const std::vector<BrokerUri> brokers_;                   // Options::brokers, parsed
    const std::shared_ptr<OrderedEvents> lifecycle_events_;  // see queue_event()

    std::atomic<SessionState> state_{SessionState::disconnected};
    std::atomic<bool> ready_{false};

    // Held while broker subscriptions change and their SUBSCRIBE/UNSUBSCRIBE is queued,
    // so those reach the broker in the order of the bookkeeping. Taken before mutex_;
    // never by Paho's callbacks, never while waiting for a broker or a handler.
    std::mutex broker_ops_mutex_;
    mutable std::mutex mutex_;  // guards everything below
    bool want_connected_ = false;
    bool connected_before_ = false;
    bool connect_in_flight_ = false;
    std::uint64_t epoch_ = 0;  // bumped by start(), disconnect() and close()
    std::chrono::steady_clock::time_point connected_at_{};
    std::uint64_t generation_ = 0;  // bumped by each successful connect
    // Indices into brokers_ (not copies: 10,000 sessions each hold them).
    std::size_t connected_index_ = 0;  // connected to
    std::size_t attempt_index_ = 0;    // the current or last connect attempt's
    std::size_t broker_index_ = 0;     // the next attempt's
    std::size_t tried_in_round_ = 0;   // brokers failed since the last success or backoff
    // Failed connects since the last success, and a hash of the last one's text (not the
    // text: 10,000 sessions each hold it): a failure like the one before is logged at
    // debug, so a broker that is down for an hour does not fill the log with one warning
    // per backoff step.
    int failed_connects_ = 0;
    std::size_t last_connect_failure_ = 0;
    // The last failed connect's message, for a wait_for_*() timeout to name; kept only
    // while failing (emptied at the next connect).
    std::string last_connect_error_;
    SubscriptionTable subscriptions_;
    // The SUBSCRIBEs restore_subscriptions() sent after a connect: the generation they
    // belong to, how many still wait for their answer, and the filters granted so far.
    std::uint64_t resubscribe_generation_ = 0;
    std::size_t resubscribe_pending_ = 0;
    std::vector<std::pair<std::string, int>> resubscribe_granted_;
    std::vector<std::shared_ptr<RouteEntry>> permanent_routes_;  // Options::subscriptions
    std::chrono::system_clock::time_point last_connected_{};
    std::shared_ptr<const ConnectInfo> connect_info_;  // the last connect's; null before
    std::chrono::system_clock::time_point last_disconnected_{};
    bool state_final_ = false;  // close() wrote the state for the last time
    // Reconnect jitter only: a small engine (std::mt19937_64 is 2.5 KB per session),
    // seeded per session so that sessions do not reconnect in step.
    std::minstd_rand random_;
    Backoff backoff_;

    // Hand-offs to Paho in publish order: held across Paho's publish call, so Paho's
    // threads never wait for it.
    std::mutex handoff_mutex_;
    Outbox outbox_;
    std::atomic<std::uint64_t> next_sequence_{0};
    std::atomic<bool> pump_posted_{false};
    // The current connection's generation_ (low bits), for Delivery::sent_in; and the
    // broker's Maximum Packet Size (MQTT 5 CONNACK), 0 when it set none.
    std::atomic<std::uint32_t> link_generation_{0};
    // Set when a poison message was given up that a persistent session's Paho still
    // holds: the next connect starts clean once, so that Paho stops resending it.
    std::atomic<bool> drop_paho_session_{false};
    std::atomic<std::uint32_t> broker_max_packet_{0};
    std::atomic<int> broker_max_qos_{2};  // MQTT 5: the CONNACK's Maximum QoS
    std::atomic<bool> broker_retain_available_{true};
    // The broker's Server Keep Alive, asked for at every later connect; -1 until one sets it.
    std::atomic<long long> server_keep_alive_{-1};
    TopicAliases aliases_;  // guarded by handoff_mutex_
    // The connection (link_generation_) whose outgoing aliases may be used, 0 while none
    // may: set at connect, cleared when the connection or a hand-off fails, so that no
    // message carries an alias alone into a connection that does not know it. Paho keeps
    // what it was handed across a reconnect.
    std::atomic<std::uint32_t> alias_link_{0};
    std::atomic<std::uint32_t> alias_limit_{0};  // the current connection's alias count
    // Topic aliases the broker may use towards us (resolve_topic_alias); Paho's receive
    // thread only. Set up for the connection of generation incoming_aliases_link_.
    const bool accepts_topic_aliases_ =
        options_.connect_properties && options_.connect_properties->topic_alias_maximum > 0;
    std::unordered_map<int, std::string> incoming_aliases_;
    std::uint32_t incoming_aliases_link_ = 0;

    ActionForwarder connect_listener_{*this, &SessionCore::on_connect_success,
                                      &SessionCore::on_connect_failure};
    ActionForwarder resubscribe_listener_{*this, &SessionCore::on_resubscribe_success,
                                          &SessionCore::on_resubscribe_failure};
    ActionForwarder publish_listener_{*this, &SessionCore::on_publish_success,
                                      &SessionCore::on_publish_failure};
    // TlsConfig::ca_path as one file (see CaBundle); null without a CA directory.
    const std::unique_ptr<CaBundle> ca_bundle_;
    // A persistent session's storage (else null) and Paho's view of it; both outlive
    // the client.
    const std::unique_ptr<SessionStorage> storage_;
    const std::unique_ptr<PahoPersistence> persistence_;
    std::unique_ptr<mqtt::async_client> client_;  // last: destroyed first
};

}  // namespace mqttx::detail
