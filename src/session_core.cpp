#include "session_core.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <random>
#include <set>

#include "broker_uri.hpp"
#include "deadline.hpp"
#include "delivery.hpp"
#include "mqttx/topic.hpp"
#include "paho_error.hpp"

#include "outbox_record.hpp"
#include "paho_persistence.hpp"
#include "paho_properties.hpp"
#include "problems.hpp"
#include "runtime.hpp"
#include "stored_state.hpp"
#include "tls.hpp"
#include "wire_checks.hpp"

namespace mqttx::detail {

namespace {

// Random bits for client id suffixes and jitter seeds, different for every call. One
// std::random_device per process: making one costs cpuid instructions, which trap in a
// virtual machine (8 % of the time spent adding 1,000 sessions, two per session). After
// it, SplitMix64 over a counter: a bijection, so no two calls of a process collide.
std::uint64_t random_bits() noexcept {
    static const std::uint64_t seed = [] {
        std::random_device device;
        return (static_cast<std::uint64_t>(device()) << 32) | device();
    }();
    static std::atomic<std::uint64_t> calls{0};
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (calls.fetch_add(1) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

std::string make_client_id(const Options& options) {
    if (!options.client_id.empty()) return options.client_id;
    // Unique per run, so two programs using the same session name do not evict each other.
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016" PRIx64, random_bits());
    // The name may hold anything; brokers refuse control characters in a client id, and
    // the id also names the waker's topic. Kept: letters, digits, '-', '_' and '.'.
    std::string id;
    for (char c : options.name.substr(0, 40)) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        id += keep ? c : '_';
    }
    return id + "-" + suffix;
}

mqtt::create_options make_create_options(const Options& options) {
    mqtt::create_options create(
        options.protocol == Protocol::v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1,
        options.performance.max_inflight);
    // Accept publishes while offline (also before the first connect): they wait in
    // Paho's buffer and go out once connected.
    create.set_send_while_disconnected(true, true);
    // Paho holds only what the outbox handed it (at most the in-flight window); the
    // overflow policy applies to the outbox.
    create.set_max_buffered_messages(options.performance.max_inflight);
    return create;
}

std::vector<BrokerUri> parse_brokers(const Options& options) {
    std::vector<BrokerUri> brokers;
    for (const auto& text : options.brokers) {
        BrokerUri uri;
        std::string problem;
        parse_broker_uri(text, options.tls.has_value(), uri, problem);  // validated before
        brokers.push_back(std::move(uri));
    }
    return brokers;
}

std::unique_ptr<mqtt::async_client> make_client(const Options& options,
                                                const std::string& client_id,
                                                mqtt::iclient_persistence* persistence) {
    const auto first = parse_brokers(options).front();
    try {
        return std::make_unique<mqtt::async_client>(first.paho_uri(), client_id,
                                                    make_create_options(options), persistence);
    } catch (const mqtt::exception& e) {  // validate() should have caught it; never raw
        throw from_paho(e, ErrorKind::configuration, "Paho refused to create the client")
            .with_session(options.name);
    }
}

// A persistent session's storage, opened (so a backend that is down fails add_session).
// Paho's queued, never-sent publish commands of a previous run are dropped before Paho
// would restore them: the session's own outbox records hold every one of them until
// the broker confirms it, and sending both would duplicate.
std::shared_ptr<Storage> open_storage(const Options& options, const std::string& client_id) {
    if (!options.persistent) return nullptr;
    auto storage =
        std::shared_ptr<Storage>(make_storage(options.storage.value_or(StorageOptions{})));
    storage->open(client_id);
    for (const auto& key : storage->keys()) {
        if (key.starts_with("c-") || key.starts_with("c5-")) storage->remove(key);
    }
    return storage;
}

mqtt::subscribe_options to_paho(const SubscribeOptions& options) {
    return mqtt::subscribe_options(
        options.no_local, options.retain_as_published,
        static_cast<mqtt::subscribe_options::RetainHandling>(options.retain_handling));
}

// restore_subscriptions() sends one SUBSCRIBE per filter, its generation as the context.
std::uint64_t generation_of(const mqtt::token& token) {
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(token.get_user_context()));
}

std::string filter_of(const mqtt::token& token) {
    const auto topics = token.get_topics();
    return topics && topics->size() == 1 ? (*topics)[0] : std::string();
}

// Set while a handler runs inline on Paho's receive thread.
thread_local bool inline_delivery_thread = false;

}  // namespace

bool on_inline_handler_thread() noexcept {
    return inline_delivery_thread;
}

SessionCore::SessionCore(Options options, std::shared_ptr<Runtime> runtime, std::size_t worker)
    : options_(std::move(options)),
      client_id_(make_client_id(options_)),
      shared_name_(std::make_shared<const std::string>(options_.name)),
      runtime_(std::move(runtime)),
      worker_(worker),
      log_(options_.logger ? options_.logger : runtime_->log),
      stats_(std::make_shared<SessionStats>()),
      router_(std::make_shared<Router>(stats_, log_)),
      wake_topic_(PahoWaker::wake_topic(client_id_)),
      brokers_(parse_brokers(options_)),
      random_(static_cast<std::minstd_rand::result_type>(random_bits())),
      backoff_(options_.reconnect,
               [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }),
      window_(static_cast<std::size_t>(options_.performance.max_inflight)),
      ca_bundle_(options_.tls && !options_.tls->ca_path.empty()
                     ? std::make_unique<CaBundle>(options_.tls->ca_path)
                     : nullptr),
      storage_(open_storage(options_, client_id_)),
      saved_(storage_ ? std::make_unique<SavedState>() : nullptr),
      persistence_(
          storage_ ? std::make_unique<PahoPersistence>(storage_, log_, options_.name,
                                                       [this](int id) { on_publish_written(id); })
                   : nullptr),
      client_(make_client(options_, client_id_, persistence_.get())) {
    restore_outbox();
    load_state();
    if (options_.tls && options_.tls->skip_verify) {
        log_->warn(
            "session '{}': TLS without verifying the broker's certificate and host name "
            "(skip_verify): anyone on the path can pose as the broker",
            options_.name);
    }
    client_->set_message_callback(
        [this](mqtt::const_message_ptr message) { on_message(std::move(message)); });
    client_->set_connection_lost_handler(
        [this](const std::string& cause) { on_connection_lost(cause); });
    client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode reason) {
        try {
            on_connection_lost("broker sent DISCONNECT, reason code " +
                               std::to_string(static_cast<int>(reason)));
        } catch (...) {
            // Nothing may unwind into Paho's C code.
        }
    });
}

SessionCore::~SessionCore() {
    close();
    // Destroying the client waits for Paho's callbacks to finish: none runs after this.
    client_.reset();
}

void SessionCore::install_initial_subscriptions() {
    for (const auto& spec : options_.subscriptions) {
        permanent_routes_.push_back(subscribe(spec.filter, spec.qos, spec.handler, spec.options));
    }
    if (!saved_ || !saved_->loaded) return;
    std::size_t restored = 0;
    std::vector<StoredSubscription> carried;
    for (const auto& stored : saved_->loaded->subscriptions) {
        const bool configured = std::any_of(
            options_.subscriptions.begin(), options_.subscriptions.end(), [&](const auto& spec) {
                return spec.filter == stored.filter &&
                       spec.options.share_group == stored.options.share_group;
            });
        if (configured) continue;
        if (options_.restored_handler) {
            try {
                permanent_routes_.push_back(subscribe(stored.filter, stored.qos,
                                                      options_.restored_handler, stored.options));
                ++restored;
                continue;
            } catch (const Error& e) {
                log_->error("session '{}': cannot restore subscription '{}': {}", options_.name,
                            stored.filter, e.what());
            }
        }
        carried.push_back(stored);
    }
    {
        std::lock_guard lock(mutex_);
        carried_ = std::move(carried);
    }
    if (restored > 0) {
        log_->info("session '{}': {} subscription(s) of the last run restored", options_.name,
                   restored);
    }
}

std::string SessionCore::broker_filter(const StoredSubscription& subscription) {
    const auto& group = subscription.options.share_group;
    return group.empty() ? subscription.filter : "$share/" + group + "/" + subscription.filter;
}

void SessionCore::forget_carried(std::string_view filter) {
    std::erase_if(carried_, [&](const auto& s) { return broker_filter(s) == filter; });
}

std::string SessionCore::current_broker() const {
    std::lock_guard lock(mutex_);
    return state_.load() == SessionState::connected ? brokers_[connected_index_].paho_uri()
                                                    : std::string();
}

SessionMetrics SessionCore::metrics() const noexcept {
    auto metrics = stats_->snapshot();
    metrics.state = state();
    metrics.connected = metrics.state == SessionState::connected;
    {
        std::lock_guard lock(mutex_);
        metrics.active_subscriptions = filters_.size();
    }
    std::lock_guard outbox(deliveries_mutex_);
    metrics.outbox_waiting = waiting_count();
    metrics.in_flight = in_flight_count();
    return metrics;
}

std::map<std::string, RouteStats> SessionCore::route_stats() const {
    return router_->stats_by_filter();
}

std::optional<StorageMetrics> SessionCore::storage_metrics() const {
    if (!storage_) return std::nullopt;
    return storage_->metrics();
}

void SessionCore::reset_metrics() noexcept {
    stats_->reset();
}

SessionState SessionCore::set_state(SessionState next) {
    return state_.exchange(next, std::memory_order_acq_rel);
}

void SessionCore::announce_state(SessionState old_state, SessionState new_state) {
    if (old_state != new_state) {
        emit(EventType::session_state_changed, StateChange{old_state, new_state});
    }
    runtime_->notify_state_change();
}

void SessionCore::emit(EventType type, EventData data) {
    if (!runtime_->events->wanted(type)) return;
    runtime_->emit(worker_,
                   Event{type, options_.name, std::move(data), std::chrono::system_clock::now()});
}

void SessionCore::report(const Error& error) {
    stats_->count_error();
    log_->warn("{}", error.what());
    emit(EventType::error, ErrorInfo{error.kind(), error.what()});
}

void SessionCore::check_open() const {
    if (state() == SessionState::closed) throw Error::session_closed(options_.name);
}

// ---- connection state machine -------------------------------------------------------

void SessionCore::start() {
    SessionState old_state;
    std::uint64_t epoch;
    {
        std::lock_guard lock(mutex_);
        check_open();
        if (want_connected_) return;
        want_connected_ = true;
        epoch = ++epoch_;
        backoff_.reset();
        broker_index_ = 0;
        tried_in_round_ = 0;
        old_state = set_state(SessionState::connecting);
    }
    announce_state(old_state, SessionState::connecting);
    attempt_connect(epoch);
}

void SessionCore::attempt_connect(std::uint64_t epoch) {
    BrokerUri broker;
    {
        std::lock_guard lock(mutex_);
        // A timer from before the last start()/disconnect() is stale; and a connect on a
        // connected client is dropped by Paho without any callback.
        if (epoch != epoch_ || !want_connected_ || connect_in_flight_ ||
            state() == SessionState::connected) {
            return;
        }
        connect_in_flight_ = true;
        attempt_index_ = broker_index_;
        broker = brokers_[attempt_index_];
    }
    try {
        emit(EventType::session_connecting);
        // Before connect(): its completion (which ends the waking) may come at once.
        runtime_->waker.connect_started(this);
        client_->connect(make_connect_options(broker), nullptr, connect_listener_);
    } catch (const mqtt::exception& e) {
        connection_failed(from_paho(e, ErrorKind::connection, "connect failed"));
    } catch (const std::exception& e) {
        connection_failed(Error(ErrorKind::internal, std::string("connect failed: ") + e.what()));
    }
}

// One broker per attempt (not Paho's server list): Paho reports the first URI of its
// list as the one connected to even after it failed over, and we fail over ourselves.
mqtt::connect_options SessionCore::make_connect_options(const BrokerUri& broker) const {
    mqtt::connect_options opts;
    const bool clean = options_.clean_session || drop_paho_session_.load(std::memory_order_acquire);
    if (options_.protocol == Protocol::v5) {
        opts.set_mqtt_version(MQTTVERSION_5);
        opts.set_clean_start(clean);
        if (!options_.clean_session) {
            // MQTT 5 ends a session at disconnect unless told otherwise.
            opts.set_properties(
                {{mqtt::property::SESSION_EXPIRY_INTERVAL, static_cast<int32_t>(0x7FFFFFFF)}});
        }
    } else {
        opts.set_mqtt_version(MQTTVERSION_3_1_1);
        opts.set_clean_session(clean);
    }
    // Paho declares a connection dead only a full interval after an unanswered PINGREQ,
    // which itself waits an interval: up to 3x keep-alive of silence. Half the interval
    // keeps detection near 1.5x keep_alive (the broker is told the shorter interval).
    const auto keep_alive = options_.keep_alive.count();
    opts.set_keep_alive_interval(static_cast<int>(keep_alive == 0 ? 0 : (keep_alive + 1) / 2));
    const auto connect_seconds =
        std::chrono::ceil<std::chrono::seconds>(options_.connect_timeout).count();
    opts.set_connect_timeout(static_cast<int>(std::max<long long>(1, connect_seconds)));
    opts.set_automatic_reconnect(false);  // ours re-subscribes and backs off properly
    // One above the outbox's window: Paho calls on_publish_success (where the outbox
    // frees a place and a waiting publisher resumes) before it drops the message from its
    // own count. At the same limit, the next publish waited in Paho's queue for its send
    // thread's next round: QoS 1 with a window of 10 ran at 0.75x raw Paho. The broker
    // still never has more than the window unacknowledged.
    opts.set_max_inflight(options_.performance.max_inflight + 1);

    // The client was made with the first broker's URI; a server list (about 250 bytes
    // that Paho keeps per client) is needed only to fail over to another.
    if (broker.paho_uri() != client_->get_server_uri()) {
        opts.set_servers(
            std::make_shared<mqtt::string_collection>(std::vector<std::string>{broker.paho_uri()}));
    }

    if (options_.credentials) {
        opts.set_user_name(options_.credentials->username);
        if (!options_.credentials->password.empty()) {
            opts.set_password(options_.credentials->password);
        }
    }
    if (options_.will) {
        const auto& will = *options_.will;
        opts.set_will(mqtt::will_options(will.topic, will.payload, will.qos, will.retained));
    }
    if (broker.secure()) {
        const TlsConfig tls = options_.tls.value_or(TlsConfig{});
        mqtt::ssl_options ssl;
        if (!tls.ca_file.empty()) ssl.set_trust_store(tls.ca_file);
        if (ca_bundle_) ssl.set_trust_store(ca_bundle_->path());
        if (!tls.cert_file.empty()) ssl.set_key_store(tls.cert_file);
        if (!tls.key_file.empty()) ssl.set_private_key(tls.key_file);
        if (!tls.key_password.empty()) ssl.set_private_key_password(tls.key_password);
        if (!tls.ciphers.empty()) ssl.set_enabled_cipher_suites(tls.ciphers);
        if (!tls.alpn.empty()) ssl.set_alpn_protos(tls.alpn);
        ssl.set_ssl_version(MQTT_SSL_VERSION_TLS_1_2);
        // Paho checks the host name only with verify on: secure by default.
        ssl.set_enable_server_cert_auth(!tls.skip_verify);
        ssl.set_verify(!tls.skip_verify);
        // No set_error_handler(): Paho C++ 1.2.0 hands Paho C a pointer to this
        // ssl_options object, which the copies below outlive (a crash under ASan). A
        // failed connect is diagnosed with a handshake of our own instead.
        opts.set_ssl(std::move(ssl));
    }
    return opts;
}

void SessionCore::on_connect_success(const mqtt::token& token) {
    const auto& response = token.get_connect_response();
    const bool session_present = response.is_session_present();
    // MQTT 5: the broker may limit the packets it takes (0 here: no limit but MQTT's).
    std::uint32_t max_packet = 0;
    if (response.get_properties().contains(mqtt::property::MAXIMUM_PACKET_SIZE)) {
        max_packet = static_cast<std::uint32_t>(
            mqtt::get<int>(response.get_properties(), mqtt::property::MAXIMUM_PACKET_SIZE));
    }
    broker_max_packet_.store(max_packet, std::memory_order_relaxed);
    drop_paho_session_.store(false, std::memory_order_release);
    runtime_->waker.connect_finished(this);
    SessionState old_state;
    std::uint64_t generation;
    std::string broker;
    {
        std::lock_guard lock(mutex_);
        connect_in_flight_ = false;
        if (!want_connected_) {
            // disconnect() or close() came while this connect was in flight; a start()
            // may come before the task runs, so it checks again.
            runtime_->scheduler.post([weak = weak_from_this()] {
                auto self = weak.lock();
                if (!self) return;
                {
                    std::lock_guard lock(self->mutex_);
                    if (self->want_connected_) return;
                }
                self->send_disconnect();  // not waited for: the scheduler serves everyone
            });
            return;
        }
        if (connected_before_) stats_->reconnects.fetch_add(1, std::memory_order_relaxed);
        connected_before_ = true;
        connected_at_ = std::chrono::steady_clock::now();
        last_connected_ = std::chrono::system_clock::now();
        connected_index_ = attempt_index_;
        broker = brokers_[connected_index_].paho_uri();
        tried_in_round_ = 0;
        generation = ++generation_;
        link_generation_.store(static_cast<std::uint32_t>(generation), std::memory_order_relaxed);
        old_state = set_state(SessionState::connected);
        if (!session_present) {
            for (auto& [filter, state] : filters_) state.acknowledged = false;
            pending_unsubscribes_.clear();
        }
    }
    log_->info("session '{}' connected to {} (session present: {})", options_.name, broker,
               session_present);
    emit(EventType::session_connected, ConnectInfo{broker, session_present});
    announce_state(old_state, SessionState::connected);
    runtime_->scheduler.post([weak = weak_from_this(), generation] {
        if (auto self = weak.lock()) self->restore_subscriptions(generation);
    });
}

void SessionCore::on_connect_failure(const mqtt::token& token) {
    auto error = from_token(token, ErrorKind::connection, "connect failed");
    BrokerUri broker;
    {
        std::lock_guard lock(mutex_);
        broker = brokers_[attempt_index_];
    }
    if (!broker.secure()) {
        connection_failed(std::move(error));
        return;
    }
    // A broker's refusal (a CONNACK code) says why itself; Paho's generic failure (-1)
    // on a secure connection does not (see diagnose_tls_failure): a handshake of our own
    // names the reason. It blocks, so it runs on the background thread, not Paho's, and
    // the waker stops now rather than after it.
    const int return_code = token.get_return_code();
    if (return_code != MQTTASYNC_FAILURE) {
        connection_failed(std::move(error));
        return;
    }
    runtime_->waker.connect_finished(this);
    const auto tls = options_.tls.value_or(TlsConfig{});
    const auto trust_file = ca_bundle_ ? ca_bundle_->path() : tls.ca_file;
    const auto timeout =
        std::min<std::chrono::milliseconds>(options_.connect_timeout, std::chrono::seconds(3));
    auto diagnose = [weak = weak_from_this(), broker, error, return_code, tls, trust_file,
                     timeout]() mutable {
        try {
            const auto reason =
                diagnose_tls_failure(broker.host, broker.port, tls, trust_file, timeout);
            if (!reason.empty()) {
                error = Error(tls_failure_kind(reason), "TLS handshake failed: " + reason)
                            .with_codes(return_code, 0);
            }
        } catch (const std::exception&) {
            // The diagnosis is a courtesy: the connect failed either way.
        }
        if (auto self = weak.lock()) self->connection_failed(std::move(error));
    };
    if (!runtime_->background.post(std::move(diagnose))) connection_failed(std::move(error));
}

void SessionCore::connection_failed(Error error) {
    runtime_->waker.connect_finished(this);
    error.with_session(options_.name);
    SessionState old_state;
    SessionState new_state;
    std::chrono::milliseconds delay{0};
    int attempt = 0;
    std::uint64_t epoch;
    {
        std::lock_guard lock(mutex_);
        connect_in_flight_ = false;
        epoch = epoch_;
        error.with_context("broker", brokers_[attempt_index_].paho_uri());
        if (!want_connected_) return;
        broker_index_ = (broker_index_ + 1) % brokers_.size();
        if (++tried_in_round_ < brokers_.size()) {
            // Fail over to the next broker at once; back off only after a whole round.
            old_state = set_state(SessionState::reconnecting);
            new_state = SessionState::reconnecting;
        } else if (options_.reconnect.enabled) {
            tried_in_round_ = 0;
            broker_index_ = 0;  // each round starts with the preferred broker
            delay = backoff_.next();
            attempt = backoff_.attempt();
            new_state = SessionState::reconnecting;
            old_state = set_state(new_state);
        } else {
            want_connected_ = false;
            new_state = SessionState::disconnected;
            old_state = set_state(new_state);
        }
    }
    report(error);
    announce_state(old_state, new_state);
    if (new_state != SessionState::reconnecting) return;
    if (delay.count() == 0) {
        // Not from Paho's callback thread: the scheduler makes the next attempt.
        runtime_->scheduler.post([weak = weak_from_this(), epoch] {
            if (auto self = weak.lock()) self->attempt_connect(epoch);
        });
    } else {
        schedule_reconnect(attempt, delay, epoch);
    }
}

void SessionCore::on_connection_lost(const std::string& cause) noexcept {
    try {
        SessionState old_state;
        SessionState new_state;
        std::chrono::milliseconds delay{0};
        int attempt = 0;
        bool reconnect = false;
        std::uint64_t epoch;
        std::uint64_t generation;
        {
            std::lock_guard lock(mutex_);
            ready_.store(false, std::memory_order_release);
            if (!want_connected_ || state() != SessionState::connected) return;
            epoch = epoch_;
            generation = generation_;
            tried_in_round_ = 0;  // retry the broker we were on first, then the others
            // A connection that held for a while starts the backoff afresh; one that
            // drops at once keeps growing it, so a flapping broker is not hammered.
            if (std::chrono::steady_clock::now() - connected_at_ >= stable_connection) {
                backoff_.reset();
            }
            reconnect = options_.reconnect.enabled;
            if (reconnect) {
                delay = backoff_.next();
                attempt = backoff_.attempt();
            } else {
                want_connected_ = false;
            }
            new_state = reconnect ? SessionState::reconnecting : SessionState::disconnected;
            old_state = set_state(new_state);
            last_disconnected_ = std::chrono::system_clock::now();
        }
        save_state();
        give_up_poison(generation);
        log_->warn("session '{}' lost its connection: {}", options_.name, cause);
        emit(EventType::session_disconnected, DisconnectInfo{cause});
        announce_state(old_state, new_state);
        if (reconnect) schedule_reconnect(attempt, delay, epoch);
    } catch (...) {
        // Nothing may unwind into Paho's C code.
    }
}

void SessionCore::schedule_reconnect(int attempt, std::chrono::milliseconds delay,
                                     std::uint64_t epoch) {
    emit(EventType::session_reconnecting, ReconnectInfo{attempt, delay});
    runtime_->scheduler.post_after(delay, [weak = weak_from_this(), epoch] {
        if (auto self = weak.lock()) self->attempt_connect(epoch);
    });
}

void SessionCore::restore_subscriptions(std::uint64_t generation) {
    std::lock_guard ops(broker_ops_mutex_);
    struct Wanted {
        std::string filter;
        int qos;
        mqtt::subscribe_options options;
    };
    std::vector<Wanted> wanted;
    std::vector<std::string> unsubscribes;
    {
        std::lock_guard lock(mutex_);
        if (generation != generation_ || state() != SessionState::connected) return;
        for (const auto& [filter, state] : filters_) {
            if (!state.acknowledged) wanted.push_back({filter, state.qos, to_paho(state.options)});
        }
        unsubscribes.assign(pending_unsubscribes_.begin(), pending_unsubscribes_.end());
        pending_unsubscribes_.clear();
        resubscribe_generation_ = generation;
        resubscribe_pending_ = wanted.size();
        resubscribe_granted_.clear();
    }
    for (const auto& filter : unsubscribes) unsubscribe_at_broker(filter);
    if (wanted.empty()) {
        mark_ready(generation, {});
        return;
    }
    // One SUBSCRIBE per filter. Paho C++ 1.2.0's several-filter subscribe loses its
    // vector of MQTT 5 options when it copies them, and Paho C 1.3.12 then reads a null
    // pointer (SIGSEGV; eclipse/paho.mqtt.cpp #524). The single form keeps every option.
    // The generation rides in the user context, so a late answer of an earlier
    // connection is told apart.
    auto* context = reinterpret_cast<void*>(static_cast<std::uintptr_t>(generation));
    for (const auto& [filter, qos, options] : wanted) {
        try {
            client_->subscribe(filter, qos, context, resubscribe_listener_, options);
        } catch (const mqtt::exception& e) {
            // Usually the connection dropped again; the next connect retries.
            report(from_paho(e, ErrorKind::subscription, "restoring a subscription failed")
                       .with_session(options_.name)
                       .with_topic(filter));
            resubscribe_answered(generation, filter, false);
        }
    }
}

void SessionCore::on_resubscribe_success(const mqtt::token& token) {
    const auto filter = filter_of(token);
    int code = 0;
    try {
        const auto codes = token.get_subscribe_response().get_reason_codes();
        if (!codes.empty()) code = static_cast<int>(codes.front());
    } catch (const mqtt::exception&) {
        // No SUBACK details (MQTT 3.1.1): Paho reported success.
    }
    if (code >= 0x80) {
        report(Error(ErrorKind::subscription, "broker refused the subscription")
                   .with_session(options_.name)
                   .with_topic(filter)
                   .with_codes(0, code));
    }
    resubscribe_answered(generation_of(token), filter, code < 0x80);
}

void SessionCore::on_resubscribe_failure(const mqtt::token& token) {
    // Paho reports a refused SUBACK here too: the error says so, and the session is as
    // ready as it can be once every filter has its answer.
    const auto filter = filter_of(token);
    report(from_token(token, ErrorKind::subscription, "restoring a subscription failed")
               .with_session(options_.name)
               .with_topic(filter));
    resubscribe_answered(generation_of(token), filter, false);
}

void SessionCore::resubscribe_answered(std::uint64_t generation, const std::string& filter,
                                       bool granted) {
    std::vector<std::string> all_granted;
    {
        std::lock_guard lock(mutex_);
        if (generation != resubscribe_generation_ || resubscribe_pending_ == 0) return;
        if (granted) resubscribe_granted_.push_back(filter);
        if (--resubscribe_pending_ > 0) return;
        all_granted = std::move(resubscribe_granted_);
        resubscribe_granted_.clear();
    }
    mark_ready(generation, all_granted);
}

void SessionCore::mark_ready(std::uint64_t generation, const std::vector<std::string>& granted) {
    {
        std::lock_guard lock(mutex_);
        if (generation != generation_ || state() != SessionState::connected) return;
        for (const auto& filter : granted) {
            if (auto it = filters_.find(filter); it != filters_.end())
                it->second.acknowledged = true;
        }
        ready_.store(true, std::memory_order_release);
    }
    if (outbox_waiting()) post_pump();
    save_state();
    emit(EventType::session_ready);
    runtime_->notify_state_change();
}

std::shared_ptr<mqtt::token> SessionCore::send_disconnect() noexcept {
    try {
        if (client_->is_connected()) {
            return client_->disconnect(static_cast<int>(options_.disconnect_timeout.count()));
        }
    } catch (const std::exception& e) {
        log_->debug("session '{}': disconnect: {}", options_.name, e.what());
    }
    return nullptr;
}

void SessionCore::await_disconnect(const std::shared_ptr<mqtt::token>& token,
                                   std::chrono::steady_clock::time_point deadline) noexcept {
    // Never on Paho's own thread (an inline handler): it delivers the acknowledgement.
    if (!token || inline_delivery_thread) return;
    try {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left > left.zero()) {
            token->wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(left));
        }
    } catch (const std::exception& e) {
        log_->debug("session '{}': disconnect: {}", options_.name, e.what());
    }
}

std::chrono::steady_clock::time_point SessionCore::disconnect_deadline() const noexcept {
    return deadline_after(options_.disconnect_timeout + std::chrono::seconds(1));
}

void SessionCore::disconnect() noexcept {
    SessionState old_state;
    {
        std::lock_guard lock(mutex_);
        if (state() == SessionState::closed) return;
        want_connected_ = false;
        ++epoch_;  // pending reconnect timers are void now
        ready_.store(false, std::memory_order_release);
        old_state = set_state(SessionState::disconnected);
    }
    await_disconnect(send_disconnect(), disconnect_deadline());
    if (old_state == SessionState::connected) {
        emit(EventType::session_disconnected, DisconnectInfo{"disconnected by the application"});
    }
    announce_state(old_state, SessionState::disconnected);
}

std::shared_ptr<mqtt::token> SessionCore::begin_close(SessionState& old_state) noexcept {
    {
        std::lock_guard lock(mutex_);
        old_state = state();
        if (old_state == SessionState::closed) return nullptr;
        want_connected_ = false;
        ++epoch_;
        ready_.store(false, std::memory_order_release);
        set_state(SessionState::closed);
    }
    return send_disconnect();
}

void SessionCore::finish_close(SessionState old_state, const std::shared_ptr<mqtt::token>& token,
                               std::chrono::steady_clock::time_point deadline) noexcept {
    if (old_state == SessionState::closed) return;
    await_disconnect(token, deadline);
    {
        std::lock_guard lock(mutex_);
        if (old_state == SessionState::connected)
            last_disconnected_ = std::chrono::system_clock::now();
    }
    write_state(true);  // before the subscriptions are forgotten: the broker keeps them
    {
        std::lock_guard ops(broker_ops_mutex_);
        std::lock_guard lock(mutex_);
        filters_.clear();
        pending_unsubscribes_.clear();
    }
    for (auto& entry : router_->take_all()) entry->deactivate();
    permanent_routes_.clear();
    fail_undelivered();  // what the broker did not confirm by now never will be
    if (old_state == SessionState::connected) {
        emit(EventType::session_disconnected, DisconnectInfo{"session closed"});
    }
    announce_state(old_state, SessionState::closed);
}

void SessionCore::close() noexcept {
    SessionState old_state;
    auto token = begin_close(old_state);
    finish_close(old_state, token, disconnect_deadline());
}

// ---- publish ----------------------------------------------------------------------
//
// Accepted messages wait in the session's outbox (Outbox::waiting, bounded by max_pending: the
// offline buffer) and go to Paho while the session is ready, at most max_inflight at a
// time. Two facts about Paho make the session do this itself: past a full in-flight
// window Paho's send thread sleeps up to a second before it looks again (2,000 QoS 2
// messages with a window of 20 took 75 s), and over MQTT 3.1.1 a broker acknowledges
// but drops what comes past its own in-flight limit (mosquitto: 20), so a large window
// silently loses QoS 2 bursts. Paho also drops the oldest of its own buffer without a
// word; here the overflow policy applies to the outbox, where it can be counted.

DeliveryToken SessionCore::publish(std::string_view topic, std::string_view payload, int qos,
                                   bool retained, const PublishProperties* properties) {
    return publish_shared(mqtt::string_ref(std::string(topic)),
                          mqtt::binary_ref(payload.data(), payload.size()), qos, retained,
                          properties);
}

DeliveryToken SessionCore::publish_shared(mqtt::string_ref topic_ref, mqtt::binary_ref payload_ref,
                                          int qos, bool retained,
                                          const PublishProperties* properties,
                                          std::weak_ptr<DeliveryObserver> observer,
                                          std::int64_t tag) {
    const std::string_view topic = topic_ref ? std::string_view(topic_ref.str()) : "";
    const std::string_view payload = payload_ref ? std::string_view(payload_ref.str()) : "";
    check_open();
    if (auto problem = topic::check_topic_name(topic); !problem.empty()) {
        throw Error::invalid_topic("invalid topic name: " + std::string(problem),
                                   std::string(topic))
            .with_session(options_.name);
    }
    if (qos < 0 || qos > 2) {
        throw Error::invalid_qos(qos).with_session(options_.name).with_topic(std::string(topic));
    }
    if (payload.size() > options_.performance.buffer_kb * 1024) {
        throw Error(ErrorKind::payload_too_large, "payload larger than performance.buffer_kb")
            .with_session(options_.name)
            .with_topic(std::string(topic))
            .with_context("bytes", payload.size())
            .with_context("limit", options_.performance.buffer_kb * 1024);
    }
    const bool has_properties = properties != nullptr && !properties->empty();
    if (has_properties && options_.protocol != Protocol::v5) {
        throw Error(ErrorKind::configuration, "publish properties need an MQTT 5 session")
            .with_session(options_.name)
            .with_topic(std::string(topic));
    }
    if (has_properties) {
        Problems problems;
        check_publish_properties(*properties, problems, "properties");
        if (!problems.empty()) {
            problems.raise("invalid publish properties on '" + std::string(topic) + "'",
                           options_.name);
        }
    }
    auto delivery = std::make_shared<Delivery>(
        std::move(topic_ref), std::move(payload_ref), qos, retained,
        has_properties ? to_paho(*properties) : mqtt::properties(),
        next_sequence_.fetch_add(1, std::memory_order_relaxed), std::move(observer), tag);
    if (auto problem = packet_size_problem(*delivery); !problem.empty()) {
        throw Error(ErrorKind::payload_too_large, std::move(problem))
            .with_session(options_.name)
            .with_topic(std::string(topic))
            .with_context("bytes", payload.size());
    }
    DeliveryToken result(delivery);

    // A persistent session keeps the message in its storage until Paho has it (Paho
    // then keeps it itself): accepted means stored.
    if (storage_ && qos > 0) store(*delivery);

    // On Paho's own thread (an inline handler, a forwarder) never wait for the hand-off
    // lock: its holder may be inside Paho waiting for this very thread.
    std::unique_lock handoff(handoff_mutex_, std::defer_lock);
    if (inline_delivery_thread) {
        (void)handoff.try_lock();
    } else {
        handoff.lock();
    }
    std::shared_ptr<Delivery> dropped;
    {
        std::lock_guard lock(deliveries_mutex_);
        auto& box = outbox();
        const bool direct =
            handoff.owns_lock() && box.waiting.empty() && ready() && box.in_flight.size() < window_;
        if (direct) {
            box.in_flight.emplace(delivery.get(), delivery);  // before Paho may report on it
            delivery->sent_in = link_generation_.load(std::memory_order_relaxed);
        } else {
            if (box.waiting.size() >= static_cast<std::size_t>(options_.performance.max_pending)) {
                if (options_.performance.overflow == BufferOverflow::reject) {
                    stats_->count_error();
                    unstore(*delivery);
                    throw Error(ErrorKind::buffer_full, "publish buffer full")
                        .with_session(options_.name)
                        .with_topic(std::string(topic))
                        .with_context("max_pending", options_.performance.max_pending);
                }
                dropped = std::move(box.waiting.front());
                box.waiting.pop_front();
            }
            box.waiting.push_back(delivery);
            delivery = nullptr;
        }
    }
    if (dropped) {
        unstore(*dropped);
        stats_->offline_dropped.fetch_add(1, std::memory_order_relaxed);
        dropped->fail(Error(ErrorKind::buffer_full,
                            "dropped from the publish buffer to make room (overflow drop_oldest)")
                          .with_session(options_.name)
                          .with_topic(dropped->message().get_topic())
                          .with_context("max_pending", options_.performance.max_pending));
    }
    stats_->messages_sent.fetch_add(1, std::memory_order_relaxed);
    stats_->bytes_sent.fetch_add(payload.size(), std::memory_order_relaxed);
    stats_->last_sent_ns.store(now_ns(), std::memory_order_relaxed);
    if (!delivery) {
        if (!handoff.owns_lock()) post_pump();
        return result;
    }
    if (!hand_to_paho(delivery)) {
        handoff.unlock();
        post_pump();
    }
    return result;
}

bool SessionCore::hand_to_paho(const std::shared_ptr<Delivery>& delivery) noexcept {
    // Accepted while offline, it may be larger than the broker connected to since allows.
    if (broker_max_packet_.load(std::memory_order_relaxed) != 0) {
        if (auto problem = packet_size_problem(*delivery); !problem.empty()) {
            {
                std::lock_guard lock(deliveries_mutex_);
                outbox().in_flight.erase(delivery.get());
            }
            stats_->count_error();
            unstore(*delivery);
            delivery->fail(Error(ErrorKind::payload_too_large, std::move(problem))
                               .with_session(options_.name)
                               .with_topic(delivery->message().get_topic()));
            return true;
        }
    }
    try {
        auto token =
            client_->publish(Delivery::paho_message(delivery), delivery.get(), publish_listener_);
        delivery->message_id.store(token->get_message_id(), std::memory_order_relaxed);
        return true;
    } catch (const mqtt::exception& e) {
        {
            std::lock_guard lock(deliveries_mutex_);
            outbox().in_flight.erase(delivery.get());
            // Disconnected between the check and the call: it waits for the next connect.
            const int rc = e.get_return_code();
            if ((rc == MQTTASYNC_DISCONNECTED || rc == MQTTASYNC_MAX_BUFFERED_MESSAGES) &&
                state() != SessionState::closed) {
                outbox().waiting.push_front(delivery);
                return false;
            }
        }
        stats_->count_error();
        delivery->fail(from_paho(e, ErrorKind::publish, "publish failed")
                           .with_session(options_.name)
                           .with_topic(delivery->message().get_topic()));
        return true;
    } catch (...) {
        {
            std::lock_guard lock(deliveries_mutex_);
            outbox().in_flight.erase(delivery.get());
        }
        stats_->count_error();
        delivery->fail(Error(ErrorKind::publish, "publish failed").with_session(options_.name));
        return true;
    }
}

void SessionCore::post_pump() {
    if (pump_posted_.exchange(true, std::memory_order_acq_rel)) return;
    runtime_->scheduler.post([weak = weak_from_this()] {
        auto self = weak.lock();
        if (!self) return;
        self->pump_posted_.store(false, std::memory_order_release);
        self->pump();
    });
}

// Scheduler thread (or a publisher): hands waiting messages to Paho, in order, while the
// session is ready and the window has room.
void SessionCore::pump() noexcept {
    std::lock_guard handoff(handoff_mutex_);
    for (;;) {
        std::shared_ptr<Delivery> next;
        {
            std::lock_guard lock(deliveries_mutex_);
            if (!outbox_ || outbox_->waiting.empty() || !ready() ||
                outbox_->in_flight.size() >= window_) {
                return;
            }
            next = std::move(outbox_->waiting.front());
            outbox_->waiting.pop_front();
            outbox_->in_flight.emplace(next.get(), next);
            next->sent_in = link_generation_.load(std::memory_order_relaxed);
        }
        if (!hand_to_paho(next)) return;
    }
}

std::shared_ptr<Delivery> SessionCore::take_delivery(const mqtt::token& token) {
    std::lock_guard lock(deliveries_mutex_);
    if (!outbox_) return nullptr;
    auto& in_flight = outbox_->in_flight;
    auto it = in_flight.find(static_cast<const Delivery*>(token.get_user_context()));
    if (it == in_flight.end()) return nullptr;
    auto delivery = std::move(it->second);
    in_flight.erase(it);
    return delivery;
}

std::string SessionCore::packet_size_problem(const Delivery& delivery) const {
    const auto& message = delivery.message();
    // Paho keeps the encoded length of the properties as it adds them.
    const auto property_length =
        static_cast<std::size_t>(message.get_properties().c_struct().length);
    const std::size_t property_bytes =
        options_.protocol == Protocol::v5
            ? variable_byte_integer_size(property_length) + property_length
            : 0;
    const auto remaining = publish_remaining_length(message.get_topic_ref().length(),
                                                    message.get_payload_ref().length(),
                                                    message.get_qos(), property_bytes);
    if (remaining > max_remaining_length) {
        return "the PUBLISH packet would have " + std::to_string(remaining) +
               " bytes after its fixed header, more than MQTT's 268435455";
    }
    const auto size = packet_size(remaining);
    const auto broker_limit = broker_max_packet_.load(std::memory_order_relaxed);
    if (broker_limit != 0 && size > broker_limit) {
        return "the PUBLISH packet would be " + std::to_string(size) +
               " bytes, more than the broker's Maximum Packet Size of " +
               std::to_string(broker_limit);
    }
    return {};
}

// Paho's receive thread, when a connection of generation `lost` dropped. The oldest
// unconfirmed message that was in flight then is the suspect: a broker handles a
// connection's packets in order, so a message it closes the connection on is the
// oldest it has not acknowledged. Suspect at max_publish_attempts drops in a row, it
// is given up. (A persistent session's Paho resends what it holds at every connect:
// there the next connect starts clean once; see drop_paho_session_.)
void SessionCore::give_up_poison(std::uint64_t lost) noexcept {
    std::shared_ptr<Delivery> poison;
    bool clean_start = false;
    {
        std::lock_guard lock(deliveries_mutex_);
        if (!outbox_) return;
        auto& box = *outbox_;
        const Delivery* oldest = nullptr;
        for (const auto& [key, delivery] : box.in_flight) {
            if (!oldest || delivery->sequence() < oldest->sequence()) oldest = delivery.get();
        }
        // Back in the outbox already if Paho failed it before this callback.
        for (const auto& delivery : box.waiting) {
            if (oldest && delivery->sequence() > oldest->sequence()) break;
            if (delivery->sent_in == static_cast<std::uint32_t>(lost)) {
                oldest = delivery.get();
                break;
            }
        }
        if (!oldest) {
            suspect_drops_ = 0;
            return;
        }
        if (oldest->sequence() == suspect_sequence_) {
            ++suspect_drops_;
        } else {
            suspect_sequence_ = oldest->sequence();
            suspect_drops_ = 1;
        }
        if (suspect_drops_ < options_.performance.max_publish_attempts) return;
        suspect_drops_ = 0;
        if (auto it = box.in_flight.find(oldest); it != box.in_flight.end()) {
            poison = std::move(it->second);
            box.in_flight.erase(it);
            // Paho still holds it, and a persistent session's Paho sends it again at
            // every connect: only a clean start makes Paho (and the broker) forget it.
            if (!options_.clean_session) {
                drop_paho_session_.store(true, std::memory_order_release);
                clean_start = true;
            }
        } else {
            auto at = std::find_if(box.waiting.begin(), box.waiting.end(),
                                   [&](const auto& d) { return d.get() == oldest; });
            poison = std::move(*at);
            box.waiting.erase(at);
        }
    }
    stats_->poison_publishes.fetch_add(1, std::memory_order_relaxed);
    stats_->count_error();
    unstore(*poison);
    const auto topic = poison->message().get_topic();
    log_->error(
        "session '{}': gave up a QoS {} message to '{}': the broker closed the connection each "
        "of the {} times in a row it was in flight",
        options_.name, poison->message().get_qos(), topic,
        options_.performance.max_publish_attempts);
    if (clean_start) {
        log_->error(
            "session '{}': the next connect starts a clean session to drop it: messages the "
            "broker queued for this session are lost, its subscriptions are made again",
            options_.name);
    }
    poison->fail(Error(ErrorKind::publish,
                       "given up: the broker closed the connection each time the message was "
                       "sent (a message it refuses to take)")
                     .with_session(options_.name)
                     .with_topic(topic)
                     .with_context("attempts", options_.performance.max_publish_attempts));
}

// Scheduler thread: a failure stopped the hand-off for the connection of generation
// `sent_in`; if that connection is in fact still up (a failure that was not its loss),
// the hand-off resumes. Otherwise on_connection_lost follows and the next connect's
// mark_ready resumes it.
void SessionCore::resume_if_link_up(std::uint32_t sent_in) noexcept {
    try {
        if (!client_->is_connected()) return;
        {
            std::lock_guard lock(mutex_);
            if (sent_in != static_cast<std::uint32_t>(generation_) ||
                state() != SessionState::connected) {
                return;
            }
            ready_.store(true, std::memory_order_release);
        }
        if (outbox_waiting()) post_pump();
    } catch (...) {
    }
}

SessionCore::Outbox& SessionCore::outbox() {
    if (!outbox_) outbox_ = std::make_unique<Outbox>();
    return *outbox_;
}

bool SessionCore::outbox_waiting() {
    std::lock_guard lock(deliveries_mutex_);
    return waiting_count() > 0 && ready();
}

void SessionCore::on_publish_success(const mqtt::token& token) {
    if (auto delivery = take_delivery(token)) {
        if (delivery->message().get_qos() > 0) {
            stats_->publish_latency.record(std::chrono::steady_clock::now() -
                                           delivery->accepted_at());
        }
        // Kept until now rather than until Paho took it: Paho may lose a message it has
        // queued but not yet written when the program dies. A crash after this write
        // and before the removal sends the message again: a duplicate, never a loss.
        unstore(*delivery);
        delivery->complete();
    }
    if (outbox_waiting()) post_pump();
}

void SessionCore::on_publish_failure(const mqtt::token& token) {
    auto delivery = take_delivery(token);
    if (!delivery) return;
    const auto& message = delivery->message();
    // A QoS 1/2 message lost with its connection (Paho discards what is in flight when a
    // clean session reconnects, or fails what it was writing) goes back into the outbox in
    // its place and out again once the new connection is ready; its token completes then.
    // A broker's refusal (a reason code of 0x80 or more; Paho fills in 255 when there was
    // none) is final.
    const int reason = static_cast<int>(token.get_reason_code());
    const bool refused = reason >= 0x80 && reason < 255;
    if (message.get_qos() > 0 && !refused && state() != SessionState::closed) {
        // Paho fails what was in flight before it reports the lost connection. Until
        // on_connection_lost, nothing more may go to Paho: it would buffer it for the next
        // connection under this one's stamp, and the poison guard would blame the wrong
        // message.
        const auto sent_in = delivery->sent_in;
        bool link_lost = false;
        {
            std::lock_guard lock(mutex_);
            if (sent_in == static_cast<std::uint32_t>(generation_)) {
                link_lost = ready_.exchange(false, std::memory_order_acq_rel);
            }
        }
        {
            std::lock_guard lock(deliveries_mutex_);
            auto later = std::upper_bound(
                outbox().waiting.begin(), outbox().waiting.end(), delivery->sequence(),
                [](std::uint64_t sequence, const auto& d) { return sequence < d->sequence(); });
            outbox().waiting.insert(later, std::move(delivery));
        }
        if (link_lost) {
            // Checked off Paho's thread: calling into Paho from its callback could block.
            runtime_->scheduler.post([weak = weak_from_this(), sent_in] {
                if (auto self = weak.lock()) self->resume_if_link_up(sent_in);
            });
        } else if (outbox_waiting()) {
            post_pump();
        }
        return;
    }
    stats_->count_error();
    if (state() == SessionState::closed) {
        // Stays stored: a session with this client id sends it on its next start.
        delivery->fail(Error::session_closed(options_.name).with_topic(message.get_topic()));
        return;
    }
    unstore(*delivery);  // refused by the broker: final
    delivery->fail(from_token(token, ErrorKind::publish, "delivery failed")
                       .with_session(options_.name)
                       .with_topic(message.get_topic()));
}

void SessionCore::store(Delivery& delivery) {
    const auto& message = delivery.message();
    OutboxRecord record;
    record.qos = message.get_qos();
    record.retained = message.is_retained();
    record.topic = message.get_topic();
    record.payload = message.get_payload_str();
    for (const auto& property : from_paho(message.get_properties()).user_properties) {
        record.user_properties.push_back(property);
    }
    try {
        storage_->put(outbox_key(delivery.sequence()), encode(record));
        delivery.stored = true;
    } catch (const Error& e) {
        report(Error(e).with_session(options_.name).with_topic(record.topic));
        throw Error(e).with_session(options_.name).with_topic(record.topic);
    }
}

// Paho's send thread: Paho has stored the publish with this packet identifier, so the
// outbox's copy can go. (Removed any later, a crash after Paho's PUBCOMP could send
// the message again as a new publish.)
void SessionCore::on_publish_written(int message_id) noexcept {
    std::shared_ptr<Delivery> written;
    {
        std::lock_guard lock(deliveries_mutex_);
        for (const auto& [key, delivery] : outbox().in_flight) {
            if (delivery->stored && delivery->message_id.load() == message_id) {
                written = delivery;
                break;
            }
        }
    }
    // Not found: its identifier was not recorded yet; its copy goes on confirmation.
    if (written) unstore(*written);
}

void SessionCore::unstore(Delivery& delivery) noexcept {
    if (!delivery.stored.exchange(false)) return;
    try {
        storage_->remove(outbox_key(delivery.sequence()));
    } catch (const Error& e) {
        // Kept: the next start sends it again, a duplicate rather than a loss.
        log_->warn("session '{}': {}", options_.name, e.what());
    }
}

// Constructor: what a previous run with this client id and storage accepted and had
// not handed to Paho goes out first, in its order.
void SessionCore::restore_outbox() {
    if (!storage_) return;
    std::vector<std::pair<std::uint64_t, std::string>> found;
    for (const auto& key : storage_->keys()) {
        if (auto sequence = outbox_sequence(key)) found.emplace_back(*sequence, key);
    }
    std::sort(found.begin(), found.end());
    // What Paho itself resends (it had written them, unconfirmed): the same message
    // from the outbox too would be a second publish, and for QoS 2 a duplicate.
    std::multiset<std::pair<std::string, std::string>> resent_by_paho;
    for (const auto& key : storage_->keys()) {
        const bool v5 = key.starts_with("s5-");
        if (!v5 && !key.starts_with("s-")) continue;
        if (auto packet = storage_->get(key)) {
            if (auto sent = decode_publish_packet(*packet, v5)) resent_by_paho.insert(*sent);
        }
    }
    std::uint64_t next = 0;
    std::size_t left_to_paho = 0;
    for (const auto& [sequence, key] : found) {
        next = std::max(next, sequence + 1);
        const auto bytes = storage_->get(key);
        auto record = bytes ? decode_outbox_record(*bytes) : std::nullopt;
        if (!record) {
            log_->error("session '{}': storage record '{}' is unreadable; left in place",
                        options_.name, key);
            continue;
        }
        if (auto it = resent_by_paho.find({record->topic, record->payload});
            it != resent_by_paho.end()) {
            resent_by_paho.erase(it);
            storage_->remove(key);
            ++left_to_paho;
            continue;
        }
        PublishProperties properties;
        if (options_.protocol == Protocol::v5) {
            properties.user_properties = std::move(record->user_properties);
        }
        auto delivery = std::make_shared<Delivery>(
            mqtt::string_ref(record->topic), mqtt::binary_ref(std::move(record->payload)),
            record->qos, record->retained,
            properties.empty() ? mqtt::properties() : to_paho(properties), sequence);
        delivery->stored = true;
        outbox().waiting.push_back(std::move(delivery));
    }
    next_sequence_.store(next, std::memory_order_relaxed);
    if (!found.empty()) {
        log_->info(
            "session '{}': from the last run, {} message(s) wait in the outbox and "
            "Paho resends {}",
            options_.name, waiting_count(), left_to_paho);
    }
}

const std::optional<StoredSessionState>& SessionCore::stored_state() const noexcept {
    static const std::optional<StoredSessionState> none;
    return saved_ ? saved_->loaded : none;
}

void SessionCore::load_state() {
    if (!storage_) return;
    const auto text = storage_->get(session_state_key);
    if (!text) return;
    try {
        saved_->loaded = decode_stored_state(*text);
    } catch (const std::exception& e) {
        // Not fatal: the broker still has the session; only our copy of its shape is lost.
        log_->error(
            "session '{}': its saved state in {} storage is unusable ({}); starting "
            "without it",
            options_.name, storage_->backend(), e.what());
        return;
    }
    std::lock_guard lock(mutex_);
    last_connected_ = saved_->loaded->last_connected;
    last_disconnected_ = saved_->loaded->last_disconnected;
}

void SessionCore::save_state() noexcept {
    if (!storage_ || saved_->save_posted.exchange(true)) return;
    // Storage may be a network away (Redis): not on the scheduler, which runs every
    // session's timers.
    bool posted = false;
    try {
        posted = runtime_->background.post([weak = weak_from_this()] {
            auto self = weak.lock();
            if (!self) return;
            self->saved_->save_posted.store(false);
            self->write_state(false);
        });
    } catch (...) {
    }
    if (!posted) saved_->save_posted.store(false);
}

void SessionCore::write_state(bool final) noexcept {
    if (!storage_) return;
    try {
        std::lock_guard writing(saved_->write_mutex);
        StoredSessionState state;
        state.client_id = client_id_;
        state.session = options_.name;
        {
            std::lock_guard lock(mutex_);
            if (state_final_) return;
            state_final_ = final;
            for (const auto& [filter, entry] : filters_) {
                // The key of a shared subscription is "$share/<group>/<filter>".
                const auto& group = entry.options.share_group;
                state.subscriptions.push_back(
                    {group.empty() ? filter : filter.substr(group.size() + 8), entry.qos,
                     entry.options});
            }
            // Saved ones nobody routed: the broker keeps them until unsubscribed.
            for (const auto& subscription : carried_) {
                if (!filters_.contains(broker_filter(subscription))) {
                    state.subscriptions.push_back(subscription);
                }
            }
            state.last_connected = last_connected_;
            state.last_disconnected = last_disconnected_;
        }
        storage_->put(session_state_key, encode(state));
    } catch (const std::exception& e) {
        log_->warn("session '{}': cannot save its state: {}", options_.name, e.what());
    }
}

void SessionCore::fail_undelivered() noexcept {
    std::vector<std::shared_ptr<Delivery>> pending;
    {
        std::lock_guard lock(deliveries_mutex_);
        if (outbox_) {
            for (auto& [key, delivery] : outbox_->in_flight) pending.push_back(std::move(delivery));
            outbox_->in_flight.clear();
            for (auto& delivery : outbox_->waiting) pending.push_back(std::move(delivery));
            outbox_->waiting.clear();
        }
    }
    for (const auto& delivery : pending) {
        delivery->fail(Error::session_closed(options_.name)
                           .with_topic(delivery->message().get_topic())
                           .with_context("detail", "closed before the broker confirmed it"));
    }
}

// ---- routes and broker subscriptions -------------------------------------------------

std::shared_ptr<RouteEntry> SessionCore::subscribe(std::string_view filter_text, int qos,
                                                   MessageHandler handler,
                                                   const SubscribeOptions& options) {
    check_open();
    if (inline_delivery_thread) {
        // Waiting for the SUBACK on Paho's own thread would wait forever.
        throw Error(ErrorKind::configuration, "subscribe from an inline handler would deadlock")
            .with_session(options_.name)
            .with_topic(std::string(filter_text));
    }
    const std::string filter = options.share_group.empty() ? std::string(filter_text)
                                                           : "$share/" + options.share_group + "/" +
                                                                 std::string(filter_text);
    auto problem = options.share_group.empty() ? std::string_view()
                                               : topic::check_share_group(options.share_group);
    if (problem.empty()) problem = topic::check_topic_filter(filter);
    if (!problem.empty()) {
        throw Error::invalid_topic("invalid topic filter: " + std::string(problem), filter)
            .with_session(options_.name);
    }
    if (qos < 0 || qos > 2) {
        throw Error::invalid_qos(qos).with_session(options_.name).with_topic(filter);
    }
    if (!handler) {
        throw Error(ErrorKind::configuration, "subscribe needs a handler")
            .with_session(options_.name)
            .with_topic(filter);
    }
    if (auto problem = check_subscribe_options(options); !problem.empty()) {
        throw Error(ErrorKind::configuration, std::string(problem))
            .with_session(options_.name)
            .with_topic(filter);
    }
    const bool v5_options = options.no_local || options.retain_as_published ||
                            options.retain_handling != RetainHandling::send_on_subscribe;
    if (v5_options && options_.protocol != Protocol::v5) {
        throw Error(ErrorKind::configuration,
                    "no_local, retain_as_published and retain_handling need an MQTT 5 session")
            .with_session(options_.name)
            .with_topic(filter);
    }
    auto entry =
        std::make_shared<RouteEntry>(filter, qos, std::move(handler), weak_from_this(),
                                     options.handler_thread == HandlerThread::receive_thread);
    mqtt::subscribe_options paho_options;
    bool send = false;
    int broker_qos = qos;
    mqtt::token_ptr token;
    std::optional<Error> failure;
    {
        // The bookkeeping and the SUBSCRIBE go out together, so a concurrent last-route
        // UNSUBSCRIBE on the same filter cannot overtake it at the broker.
        std::lock_guard ops(broker_ops_mutex_);
        {
            std::lock_guard lock(mutex_);
            auto& state = filters_[entry->filter()];
            ++state.routes;
            if (state.routes == 1) state.options = options;
            paho_options = to_paho(state.options);
            if (state.routes == 1 || qos > state.qos) {
                state.qos = std::max(state.qos, qos);
                state.acknowledged = false;
                send = state_.load() == SessionState::connected;
            }
            broker_qos = state.qos;
            pending_unsubscribes_.erase(entry->filter());
        }
        router_->insert(entry);
        if (!send) return entry;  // made on connect, by restore_subscriptions()
        try {
            token = options_.protocol == Protocol::v5
                        ? client_->subscribe(entry->filter(), broker_qos, paho_options)
                        : client_->subscribe(entry->filter(), broker_qos);
        } catch (const mqtt::exception& e) {
            drop_route(*entry, false);
            failure = from_paho(e, ErrorKind::subscription, "subscribe failed")
                          .with_session(options_.name)
                          .with_topic(entry->filter());
        }
    }
    if (failure) {
        entry->deactivate();  // outside the lock: a running handler may subscribe
        throw *failure;
    }
    // The broker's answer is awaited without the lock.
    auto undo = [&](bool unsubscribe_if_last) {
        entry->deactivate();
        std::lock_guard ops(broker_ops_mutex_);
        drop_route(*entry, unsubscribe_if_last);
    };
    try {
        // A write_timeout too long for the clock waits without limit.
        const auto deadline = deadline_after(options_.write_timeout);
        const bool answered = deadline == std::chrono::steady_clock::time_point::max()
                                  ? (token->wait(), true)
                                  : token->wait_until(deadline);
        if (!answered) {
            undo(true);  // it may still be granted later: take it back
            throw Error::timeout("no subscribe acknowledgement in time")
                .with_session(options_.name)
                .with_topic(entry->filter())
                .with_context("timeout_ms", options_.write_timeout.count());
        }
        std::vector<mqtt::ReasonCode> codes;
        try {
            codes = token->get_subscribe_response().get_reason_codes();
        } catch (const mqtt::missing_response&) {
            // No SUBACK details: Paho reported success.
        }
        if (!codes.empty() && static_cast<int>(codes.front()) >= 0x80) {
            undo(false);
            throw Error(ErrorKind::subscription, "broker refused the subscription")
                .with_session(options_.name)
                .with_topic(entry->filter())
                .with_codes(0, static_cast<int>(codes.front()));
        }
    } catch (const mqtt::exception& e) {
        undo(false);
        throw from_paho(e, ErrorKind::subscription, "subscribe failed")
            .with_session(options_.name)
            .with_topic(entry->filter());
    }
    {
        std::lock_guard lock(mutex_);
        if (auto it = filters_.find(entry->filter()); it != filters_.end()) {
            it->second.acknowledged = true;
        }
    }
    save_state();
    return entry;
}

void SessionCore::drop_route(RouteEntry& entry, bool unsubscribe_if_last) noexcept {
    if (!router_->erase(entry)) return;
    bool last = false;
    {
        std::lock_guard lock(mutex_);
        if (auto it = filters_.find(entry.filter());
            it != filters_.end() && --it->second.routes == 0) {
            filters_.erase(it);
            last = true;
            if (unsubscribe_if_last) forget_carried(entry.filter());
        }
    }
    if (last && unsubscribe_if_last) {
        unsubscribe_at_broker(entry.filter());
        save_state();
    }
}

void SessionCore::remove_route(RouteEntry& entry) noexcept {
    std::lock_guard ops(broker_ops_mutex_);
    drop_route(entry, true);
}

void SessionCore::unsubscribe(std::string_view filter) {
    check_open();
    if (auto problem = topic::check_topic_filter(filter); !problem.empty()) {
        throw Error::invalid_topic("invalid topic filter: " + std::string(problem),
                                   std::string(filter))
            .with_session(options_.name);
    }
    // Stopped outside broker_ops_mutex_: a handler being waited for may subscribe.
    auto taken = router_->take_filter(filter);
    for (auto& entry : taken) entry->deactivate();
    std::lock_guard ops(broker_ops_mutex_);
    bool last = true;
    {
        std::lock_guard lock(mutex_);
        if (auto it = filters_.find(filter); it != filters_.end()) {
            // Only the routes taken here: one added meanwhile keeps the subscription.
            it->second.routes -= static_cast<int>(taken.size());
            last = it->second.routes <= 0;
            if (last) filters_.erase(it);
        }
        if (last) forget_carried(filter);
    }
    if (last) {
        unsubscribe_at_broker(std::string(filter));
        save_state();
    }
}

void SessionCore::unsubscribe_at_broker(const std::string& filter) noexcept {
    try {
        if (state() == SessionState::connected) {
            client_->unsubscribe(filter);
            return;
        }
    } catch (const std::exception& e) {
        stats_->count_error();
        log_->warn("session '{}': unsubscribe from '{}' failed: {}", options_.name, filter,
                   e.what());
    }
    if (!options_.clean_session) {
        // The broker keeps our session: tell it once we are back.
        std::lock_guard lock(mutex_);
        pending_unsubscribes_.insert(filter);
    }
}

void SessionCore::poke_broker() noexcept {
    try {
        client_->unsubscribe(wake_topic_);
    } catch (const mqtt::exception&) {
        // Not connected any more: PahoWaker picks another session next time.
    }
}

// ---- incoming messages (Paho's receive thread) ---------------------------------------

void SessionCore::on_message(mqtt::const_message_ptr message) noexcept {
    try {
        // A broken or hostile server may send what no publisher could: a topic with
        // wildcards, a NUL or ill-formed UTF-8. Never routed, never forwarded.
        if (auto problem = topic::check_topic_name(message->get_topic()); !problem.empty()) {
            const auto count = stats_->invalid_received.fetch_add(1, std::memory_order_relaxed);
            if (count == 0) {
                log_->warn(
                    "session '{}': dropped a message from the broker with an invalid "
                    "topic {}: {} (logged once, counted in invalid_received)",
                    options_.name, quoted(message->get_topic()), problem);
            }
            return;
        }
        const auto bytes = message->get_payload_ref().size();
        stats_->messages_received.fetch_add(1, std::memory_order_relaxed);
        stats_->bytes_received.fetch_add(bytes, std::memory_order_relaxed);
        const auto now = Message::Clock::now();  // one clock read for both
        stats_->last_message_ns.store(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
            std::memory_order_relaxed);
        Message wrapped(std::move(message), shared_name_, now);
        if (runtime_->options.inline_handlers) {
            inline_delivery_thread = true;
            router_->deliver(wrapped, Router::Pass::all);
            inline_delivery_thread = false;
            return;
        }
        if (router_->has_receive_thread_routes()) {
            // Before this returns and Paho acknowledges the message to the broker.
            inline_delivery_thread = true;
            const bool rest = router_->deliver(wrapped, Router::Pass::receive_thread);
            inline_delivery_thread = false;
            if (!rest) return;  // no dispatcher route wants it: no hop, no wake-up
        }
        if (!runtime_->dispatcher.post(worker_, router_, std::move(wrapped),
                                       runtime_->options.dispatch_block_timeout)) {
            // Counted always, logged sparingly: this is Paho's receive thread.
            const auto dropped = stats_->dropped.fetch_add(1, std::memory_order_relaxed) + 1;
            if (dropped == 1 || dropped % 1000 == 0) {
                log_->warn("session '{}': dispatch queue full, {} message(s) dropped so far",
                           options_.name, dropped);
            }
        }
    } catch (...) {
        // Nothing may unwind into Paho's C code.
        stats_->count_error();
    }
}

}  // namespace mqttx::detail
