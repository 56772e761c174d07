// The connection state machine: start, connect attempts across the brokers with their
// backoff, the connection's loss and reconnect, readiness, disconnect and close.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string_view>
#include <utility>

#include "connect_failure.hpp"
#include "deadline.hpp"
#include "paho_error.hpp"
#include "paho_properties.hpp"
#include "problems.hpp"
#include "runtime.hpp"
#include "session/session_core.hpp"
#include "wire_checks.hpp"

// Paho C++ 1.2 hands Paho C its disconnect options as struct version 0, which has no
// reason code or properties (they came with version 1): a DISCONNECT with a reason went
// out as a plain one (seen on the wire). The options' C struct is private; this class is
// a friend of theirs (for Paho's own unit tests) and the one way to set the version.
namespace mqtt {
class disconnect_options_test {
  public:
    static void carry_reason_and_properties(disconnect_options& options) {
        options.opts_.struct_version = 1;
    }
};
}  // namespace mqtt

namespace mqttx::detail {

void SessionCore::start() {
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
        set_state(SessionState::connecting);
    }
    announce_state();
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
        queue_event(EventType::session_connecting);
    }
    flush_events();
    try {
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
        opts.set_properties(connect_properties());
    } else {
        opts.set_mqtt_version(MQTTVERSION_3_1_1);
        opts.set_clean_session(clean);
    }
    opts.set_keep_alive_interval(paho_keep_alive());
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
        mqtt::properties will_properties;
        if (options_.protocol == Protocol::v5) {
            will_properties = to_paho(will.properties);
            if (will.delay.count() > 0) {
                will_properties.add({mqtt::property::WILL_DELAY_INTERVAL,
                                     static_cast<int32_t>(will.delay.count())});
            }
        }
        opts.set_will(
            mqtt::will_options(will.topic, will.payload, will.qos, will.retained, will_properties));
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

// Paho declares a connection dead only a full interval after an unanswered PINGREQ,
// which itself waits an interval: up to 3x keep-alive of silence. Half the interval
// keeps detection near 1.5x keep_alive (the broker is told the shorter interval). A
// broker that imposed its own (MQTT 5 Server Keep Alive) gets that asked for.
int SessionCore::paho_keep_alive() const noexcept {
    const auto server_keep_alive = server_keep_alive_.load(std::memory_order_relaxed);
    const auto keep_alive =
        server_keep_alive >= 0 ? server_keep_alive : options_.keep_alive.count();
    return static_cast<int>(keep_alive == 0 ? 0 : (keep_alive + 1) / 2);
}

// Four Byte Integers go to Paho as int32_t, whose bits it puts on the wire unsigned.
mqtt::properties SessionCore::connect_properties() const {
    mqtt::properties properties;
    const auto& connect = options_.connect_properties.value_or(ConnectProperties{});
    // "Never" for a session the broker keeps: the largest Paho writes right (68 years).
    std::int64_t expiry = options_.clean_session ? 0 : max_paho_four_byte;
    if (connect.session_expiry) expiry = connect.session_expiry->count();
    if (expiry != 0) {
        properties.add({mqtt::property::SESSION_EXPIRY_INTERVAL, static_cast<int32_t>(expiry)});
    }
    if (connect.receive_maximum != 0) {
        properties.add({mqtt::property::RECEIVE_MAXIMUM, connect.receive_maximum});
    }
    if (connect.maximum_packet_size != 0) {
        properties.add({mqtt::property::MAXIMUM_PACKET_SIZE,
                        static_cast<int32_t>(connect.maximum_packet_size)});
    }
    if (connect.topic_alias_maximum != 0) {
        properties.add({mqtt::property::TOPIC_ALIAS_MAXIMUM, connect.topic_alias_maximum});
    }
    if (connect.request_response_information) {
        properties.add({mqtt::property::REQUEST_RESPONSE_INFORMATION, 1});
    }
    if (!connect.request_problem_information) {
        properties.add({mqtt::property::REQUEST_PROBLEM_INFORMATION, 0});
    }
    for (const auto& [key, value] : connect.user_properties) {
        properties.add({mqtt::property::USER_PROPERTY, key, value});
    }
    return properties;
}

void SessionCore::on_connect_success(const mqtt::token& token) {
    const auto& response = token.get_connect_response();
    ConnectInfo info;
    info.session_present = response.is_session_present();
    info.reason_code = static_cast<int>(token.get_reason_code());
    read_connack(response.get_properties(), info);
    // What the broker said binds this connection: a publish above its Maximum QoS or
    // Maximum Packet Size, or retained where it has none, is a protocol error that
    // closes the connection, so those are refused before they go out.
    broker_max_packet_.store(info.maximum_packet_size, std::memory_order_relaxed);
    broker_max_qos_.store(std::min(2, info.maximum_qos), std::memory_order_relaxed);
    broker_retain_available_.store(info.retain_available, std::memory_order_relaxed);
    const int connected_with = paho_keep_alive();
    // Kept once imposed: the broker says it only to a client that asked for more.
    if (info.server_keep_alive) {
        server_keep_alive_.store(info.server_keep_alive->count(), std::memory_order_relaxed);
    } else if (const auto imposed = server_keep_alive_.load(std::memory_order_relaxed);
               imposed >= 0) {
        info.server_keep_alive = std::chrono::seconds(imposed);
    }
    // Paho C 1.3.12 keeps the keep-alive it connected with. Past a shorter one the broker
    // imposed, it would close the connection as idle (and publish the will): connect again
    // at once, asking for the broker's.
    if (info.server_keep_alive && info.server_keep_alive->count() > 0 &&
        (connected_with == 0 || connected_with > info.server_keep_alive->count())) {
        reconnect_for_keep_alive(*info.server_keep_alive, connected_with);
        return;
    }
    outbox_.limit_window(info.receive_maximum);
    // Not handoff_mutex_ here, on Paho's thread: a hand-off holding it may wait for Paho.
    alias_limit_.store(
        std::min<std::uint32_t>(options_.performance.topic_aliases, info.topic_alias_maximum),
        std::memory_order_relaxed);
    drop_paho_session_.store(false, std::memory_order_release);
    runtime_->waker.connect_finished(this);
    std::uint64_t generation;
    std::string broker;
    int failed_before = 0;
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
        failed_before = std::exchange(failed_connects_, 0);
        last_connect_failure_ = 0;
        last_connect_error_.clear();
        generation = ++generation_;
        link_generation_.store(static_cast<std::uint32_t>(generation), std::memory_order_relaxed);
        alias_link_.store(static_cast<std::uint32_t>(generation), std::memory_order_release);
        info.broker = broker;
        connect_info_ = std::make_shared<const ConnectInfo>(info);
        queue_event(EventType::session_connected, std::move(info));
        set_state(SessionState::connected);
        if (!connect_info_->session_present) {
            subscriptions_.session_lost();
        }
    }
    if (failed_before == 0) {
        log_->info("session '{}' connected to {} (session present: {})", options_.name, broker,
                   connect_info_->session_present);
    } else {
        log_->info("session '{}' connected to {} (session present: {}) after {} failed attempt(s)",
                   options_.name, broker, connect_info_->session_present, failed_before);
    }
    announce_state();
    runtime_->scheduler.post([weak = weak_from_this(), generation] {
        if (auto self = weak.lock()) self->restore_subscriptions(generation);
    });
}

void SessionCore::reconnect_for_keep_alive(std::chrono::seconds imposed, int connected_with) {
    runtime_->waker.connect_finished(this);
    log_->info(
        "session '{}': the broker imposes a keep-alive of {} s where Paho connected with {} s; "
        "connecting again with the broker's",
        options_.name, imposed.count(), connected_with);
    // Waiting for the DISCONNECT blocks: not on Paho's thread, not on the scheduler's.
    const bool posted = runtime_->background.post([weak = weak_from_this()] {
        auto self = weak.lock();
        if (!self) return;
        self->await_disconnect(self->send_disconnect(), self->disconnect_deadline());
        std::uint64_t epoch;
        {
            std::lock_guard lock(self->mutex_);
            self->connect_in_flight_ = false;
            // A disconnect() and start() meanwhile found this connect in flight and left
            // it to finish: the current era's attempt is this one.
            epoch = self->epoch_;
        }
        self->attempt_connect(epoch);
    });
    if (!posted) {
        std::lock_guard lock(mutex_);
        connect_in_flight_ = false;
    }
}

std::shared_ptr<const ConnectInfo> SessionCore::connect_info() const {
    std::lock_guard lock(mutex_);
    return connect_info_;
}

void SessionCore::on_connect_failure(const mqtt::token& token) {
    const int return_code = token.get_return_code();
    const auto paho_message = paho_failure_message(token);
    BrokerUri broker;
    {
        std::lock_guard lock(mutex_);
        broker = brokers_[attempt_index_];
    }
    const auto host_port = broker.host + ":" + std::to_string(broker.port);
    // A broker's refusal says why itself: its CONNACK code (MQTT 5: Paho puts the reason
    // code in the return code).
    if (return_code > 0) {
        const bool v5 = return_code >= 0x80;
        connection_failed(
            Error(kind_of(v5 ? 0 : return_code, v5 ? return_code : 0, ErrorKind::connection),
                  "connect failed: " + describe_refusal(return_code, host_port))
                .with_codes(v5 ? 0 : return_code, v5 ? return_code : 0));
        return;
    }
    auto error = from_token(token, ErrorKind::connection, "connect failed");
    if (return_code != MQTTASYNC_FAILURE) {
        connection_failed(std::move(error));
        return;
    }
    // Paho's generic failure. Its own words may say it timed out; otherwise a probe of
    // our own names the reason, shared for a moment by the manager's sessions (see
    // ProbeCache). On a secure connection a handshake of our own may name a TLS reason
    // (see diagnose_tls_failure), a timeout included: Paho's covers the handshake too.
    const bool timed_out = paho_timed_out(paho_message);
    if (timed_out) {
        error = Error(ErrorKind::timeout,
                      "connect failed: " + describe_timeout(host_port, options_.connect_timeout))
                    .with_codes(return_code, 0);
    }
    if (!broker.secure()) {
        if (timed_out) {
            connection_failed(std::move(error));
            return;
        }
        if (const auto probe = runtime_->probes.fresh(host_port)) {
            connection_failed(
                Error(ErrorKind::connection,
                      "connect failed: " + describe_unreachable(*probe, host_port, paho_message))
                    .with_codes(return_code, 0));
            return;
        }
    }
    // The probe and the handshake block, so they run on the background thread, not
    // Paho's, and the waker stops now.
    runtime_->waker.connect_finished(this);
    const auto tls = broker.secure() ? options_.tls.value_or(TlsConfig{}) : TlsConfig{};
    const auto trust_file = ca_bundle_ ? ca_bundle_->path() : tls.ca_file;
    const auto tls_timeout =
        std::min<std::chrono::milliseconds>(options_.connect_timeout, std::chrono::seconds(3));
    const auto probe_timeout =
        std::min<std::chrono::milliseconds>(options_.connect_timeout, std::chrono::seconds(1));
    auto diagnose = [weak = weak_from_this(), broker, host_port, error, return_code, timed_out, tls,
                     trust_file, tls_timeout, probe_timeout, paho_message]() mutable {
        auto self = weak.lock();
        if (!self) return;
        try {
            if (!timed_out) {
                auto probe = self->runtime_->probes.fresh(host_port);
                if (!probe) {
                    probe = probe_tcp(broker.host, broker.port, probe_timeout);
                    self->runtime_->probes.store(host_port, *probe);
                }
                error = Error(ErrorKind::connection,
                              "connect failed: " +
                                  describe_unreachable(*probe, host_port, paho_message))
                            .with_codes(return_code, 0);
            }
            if (broker.secure()) {
                const auto reason =
                    diagnose_tls_failure(broker.host, broker.port, tls, trust_file, tls_timeout);
                if (!reason.empty()) {
                    error = Error(tls_failure_kind(reason), "TLS handshake failed: " + reason)
                                .with_codes(return_code, 0);
                }
            }
        } catch (const std::exception&) {
            // The diagnosis is a courtesy: the connect failed either way.
        }
        self->connection_failed(std::move(error));
    };
    if (!runtime_->background.post(std::move(diagnose))) connection_failed(std::move(error));
}

std::string SessionCore::last_connect_error() const {
    std::lock_guard lock(mutex_);
    return last_connect_error_;
}

void SessionCore::connection_failed(Error error) {
    runtime_->waker.connect_finished(this);
    error.with_session(options_.name);
    SessionState new_state;
    std::chrono::milliseconds delay{0};
    std::uint64_t epoch;
    bool as_before = false;  // the same failure as the last attempt's
    int failed = 0;          // attempts failed since the last connect, this one included
    {
        std::lock_guard lock(mutex_);
        connect_in_flight_ = false;
        epoch = epoch_;
        error.with_context("broker", brokers_[attempt_index_].paho_uri());
        if (!want_connected_) return;
        failed = ++failed_connects_;
        const auto failure = std::hash<std::string_view>{}(error.what());
        as_before = failure == last_connect_failure_;
        last_connect_failure_ = failure;
        last_connect_error_ = error.what();
        if (as_before) error.with_context("failed_attempts", failed);
        queue_event(EventType::error, ErrorInfo{error.kind(), error.what()});
        broker_index_ = (broker_index_ + 1) % brokers_.size();
        if (++tried_in_round_ < brokers_.size()) {
            // Fail over to the next broker at once; back off only after a whole round.
            new_state = SessionState::reconnecting;
        } else if (options_.reconnect.enabled) {
            tried_in_round_ = 0;
            broker_index_ = 0;  // each round starts with the preferred broker
            delay = backoff_.next();
            new_state = SessionState::reconnecting;
        } else {
            want_connected_ = false;
            new_state = SessionState::disconnected;
        }
        set_state(new_state);
        if (delay.count() > 0) {
            queue_event(EventType::session_reconnecting, ReconnectInfo{backoff_.attempt(), delay});
        }
    }
    log_error(error, as_before ? spdlog::level::debug : spdlog::level::warn);
    announce_state();
    if (new_state != SessionState::reconnecting) return;
    if (delay.count() == 0) {
        // Not from Paho's callback thread: the scheduler makes the next attempt.
        runtime_->scheduler.post([weak = weak_from_this(), epoch] {
            if (auto self = weak.lock()) self->attempt_connect(epoch);
        });
    } else {
        schedule_reconnect(delay, epoch);
    }
}

DisconnectInfo SessionCore::broker_disconnect(const mqtt::properties& properties, int reason_code) {
    DisconnectInfo info;
    info.cause = DisconnectCause::broker_disconnect;
    info.reason_code = reason_code;
    if (properties.contains(mqtt::property::REASON_STRING)) {
        info.reason_string = mqtt::get<std::string>(properties, mqtt::property::REASON_STRING);
    }
    if (properties.contains(mqtt::property::SERVER_REFERENCE)) {
        info.server_reference =
            mqtt::get<std::string>(properties, mqtt::property::SERVER_REFERENCE);
    }
    return info;
}

std::string SessionCore::describe_loss(const DisconnectInfo& info) {
    char code[8];
    std::snprintf(code, sizeof code, "0x%02X", static_cast<unsigned>(info.reason_code & 0xFF));
    switch (info.cause) {
        case DisconnectCause::broker_disconnect: {
            auto text = "the broker " + info.broker +
                        " sent DISCONNECT: " + mqtt::exception::reason_code_str(info.reason_code) +
                        " (" + code + ")";
            if (!info.reason_string.empty()) text += ", saying " + quoted(info.reason_string);
            if (!info.server_reference.empty()) {
                text += "; it names another broker to use: " + quoted(info.server_reference);
            }
            return text;
        }
        case DisconnectCause::connection_lost:
            return "the connection to " + info.broker + " dropped after " +
                   std::to_string(info.connected_for.count()) +
                   " ms: the broker closed it, the network failed or the keep-alive expired "
                   "(Paho C 1.3.12 does not say which)";
        case DisconnectCause::application:
            break;
    }
    return info.reason;
}

void SessionCore::on_connection_lost(DisconnectInfo info) noexcept {
    try {
        std::chrono::milliseconds delay{0};
        bool reconnect = false;
        std::uint64_t epoch;
        std::uint64_t generation;
        {
            std::lock_guard lock(mutex_);
            ready_.store(false, std::memory_order_release);
            alias_link_.store(0, std::memory_order_release);
            if (!want_connected_ || state() != SessionState::connected) return;
            epoch = epoch_;
            generation = generation_;
            tried_in_round_ = 0;  // retry the broker we were on first, then the others
            // A connection that held for a while starts the backoff afresh; one that
            // drops at once keeps growing it, so a flapping broker is not hammered.
            if (std::chrono::steady_clock::now() - connected_at_ >= stable_connection) {
                backoff_.reset();
            }
            info.broker = brokers_[connected_index_].paho_uri();
            info.connected_for = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - connected_at_);
            info.reason = describe_loss(info);
            queue_event(EventType::session_disconnected, info);
            reconnect = options_.reconnect.enabled;
            if (!reconnect) want_connected_ = false;
            set_state(reconnect ? SessionState::reconnecting : SessionState::disconnected);
            if (reconnect) {
                delay = backoff_.next();
                queue_event(EventType::session_reconnecting,
                            ReconnectInfo{backoff_.attempt(), delay});
            }
            last_disconnected_ = std::chrono::system_clock::now();
        }
        save_state();
        give_up_poison(generation);
        log_->warn("session '{}' lost its connection: {}", options_.name, info.reason);
        announce_state();
        if (reconnect) schedule_reconnect(delay, epoch);
    } catch (...) {
        // Nothing may unwind into Paho's C code.
    }
}

void SessionCore::schedule_reconnect(std::chrono::milliseconds delay, std::uint64_t epoch) {
    runtime_->scheduler.post_after(delay, [weak = weak_from_this(), epoch] {
        if (auto self = weak.lock()) self->attempt_connect(epoch);
    });
}

void SessionCore::mark_ready(std::uint64_t generation,
                             const std::vector<std::pair<std::string, int>>& granted) {
    {
        std::lock_guard lock(mutex_);
        if (generation != generation_ || state() != SessionState::connected) return;
        for (const auto& [filter, qos] : granted) subscriptions_.acknowledge(filter, qos);
        ready_.store(true, std::memory_order_release);
        queue_event(EventType::session_ready);
    }
    if (outbox_waiting()) post_pump();
    save_state();
    announce_state();
}

std::shared_ptr<mqtt::token> SessionCore::send_disconnect(const DisconnectOptions* how) noexcept {
    try {
        if (client_->is_connected()) {
            mqtt::disconnect_options disconnect(
                static_cast<int>(options_.disconnect_timeout.count()));
            if (how) {
                disconnect.set_reason_code(static_cast<mqtt::ReasonCode>(how->reason_code));
                mqtt::properties properties;
                if (how->session_expiry) {
                    properties.add({mqtt::property::SESSION_EXPIRY_INTERVAL,
                                    static_cast<int32_t>(how->session_expiry->count())});
                }
                if (!how->reason_string.empty()) {
                    properties.add({mqtt::property::REASON_STRING, how->reason_string});
                }
                for (const auto& [key, value] : how->user_properties) {
                    properties.add({mqtt::property::USER_PROPERTY, key, value});
                }
                disconnect.set_properties(std::move(properties));
                mqtt::disconnect_options_test::carry_reason_and_properties(disconnect);
            }
            return client_->disconnect(std::move(disconnect));
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
    {
        std::lock_guard lock(mutex_);
        if (state() == SessionState::closed) return;
        want_connected_ = false;
        ++epoch_;  // pending reconnect timers are void now
        ready_.store(false, std::memory_order_release);
        if (state() == SessionState::connected)
            queue_local_disconnect("disconnected by the application");
        set_state(SessionState::disconnected);
    }
    announce_state();
    await_disconnect(send_disconnect(), disconnect_deadline());
}

void SessionCore::queue_local_disconnect(const char* what) {
    DisconnectInfo info;
    info.cause = DisconnectCause::application;
    info.broker = brokers_[connected_index_].paho_uri();
    info.connected_for = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - connected_at_);
    info.reason = std::string(what) + " (connected to " + info.broker + ")";
    queue_event(EventType::session_disconnected, std::move(info));
}

std::shared_ptr<mqtt::token> SessionCore::begin_close(SessionState& old_state,
                                                      const DisconnectOptions* how) noexcept {
    {
        std::lock_guard lock(mutex_);
        old_state = state();
        if (old_state == SessionState::closed) return nullptr;
        want_connected_ = false;
        ++epoch_;
        ready_.store(false, std::memory_order_release);
        if (old_state == SessionState::connected) queue_local_disconnect("session closed");
        set_state(SessionState::closed);
    }
    return send_disconnect(how);
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
        subscriptions_.clear();
    }
    for (auto& entry : router_->take_all()) entry->deactivate();
    permanent_routes_.clear();
    fail_undelivered();  // what the broker did not confirm by now never will be
    announce_state();
}

void SessionCore::close(const DisconnectOptions* how) noexcept {
    SessionState old_state;
    auto token = begin_close(old_state, how);
    finish_close(old_state, token, disconnect_deadline());
}

}  // namespace mqttx::detail
