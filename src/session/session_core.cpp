#include "session/session_core.hpp"

#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>
#include <random>

#include "paho_error.hpp"
#include "runtime.hpp"

namespace mqttx::detail {

namespace {

// A persistent session keeps this many waiting messages in memory before the others
// wait in storage only (Outbox::Limits::spill_after).
constexpr std::size_t spill_after = 1000;

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
    // The name may hold anything; brokers refuse control characters in a client id.
    // Kept: letters, digits, '-', '_' and '.'.
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

}  // namespace

SessionCore::SessionCore(Options options, std::shared_ptr<Runtime> runtime, std::size_t worker)
    : options_(std::move(options)),
      client_id_(make_client_id(options_)),
      shared_name_(std::make_shared<const std::string>(options_.name)),
      runtime_(std::move(runtime)),
      worker_(worker),
      log_(options_.logger ? options_.logger : runtime_->log),
      stats_(std::make_shared<SessionStats>()),
      router_(std::make_shared<Router>(stats_, log_)),
      brokers_(parse_brokers(options_)),
      lifecycle_events_(std::make_shared<OrderedEvents>()),
      random_(static_cast<std::minstd_rand::result_type>(random_bits())),
      backoff_(options_.reconnect,
               [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }),
      outbox_(
          Outbox::Limits{.window = static_cast<std::size_t>(options_.performance.max_inflight),
                         .max_pending = static_cast<std::size_t>(options_.performance.max_pending),
                         .max_pending_bytes = options_.performance.max_pending_bytes,
                         .overflow = options_.performance.overflow,
                         .max_publish_attempts = options_.performance.max_publish_attempts,
                         .spill_after = keeps_storage(options_) ? spill_after : 0}),
      ca_bundle_(options_.tls && !options_.tls->ca_path.empty()
                     ? std::make_unique<CaBundle>(options_.tls->ca_path)
                     : nullptr),
      storage_(SessionStorage::open(options_, client_id_, log_)),
      persistence_(
          storage_
              ? std::make_unique<PahoPersistence>(
                    storage_->backend(), log_, options_.name,
                    PahoPersistence::Observer{
                        .written = [this](int id) { on_publish_written(id); },
                        .forgotten = [this](int id) { outbox_.forgotten_by_paho(id); },
                        .resends_done = [this](std::size_t count) { on_paho_resends_done(count); },
                        .cleared = [this] { outbox_.forget_all_written(); }})
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
    // Paho C 1.3.12 passes no cause (an empty string) for a dropped connection.
    client_->set_connection_lost_handler([this](const std::string&) {
        try {
            on_connection_lost(DisconnectInfo{});
        } catch (...) {
            // Nothing may unwind into Paho's C code.
        }
    });
    client_->set_disconnected_handler(
        [this](const mqtt::properties& properties, mqtt::ReasonCode reason) {
            try {
                on_connection_lost(broker_disconnect(properties, static_cast<int>(reason)));
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
        metrics.active_subscriptions = subscriptions_.size();
    }
    const auto outbox = outbox_.sizes();
    metrics.outbox_waiting = outbox.waiting;
    metrics.outbox_spilled = outbox.spilled;
    metrics.outbox_waiting_bytes = outbox.waiting_bytes;
    metrics.in_flight = outbox.in_flight;
    return metrics;
}

std::map<std::string, RouteStats> SessionCore::route_stats() const {
    return router_->stats_by_filter();
}

std::optional<StorageMetrics> SessionCore::storage_metrics() const {
    if (!storage_) return std::nullopt;
    return storage_->backend()->metrics();
}

void SessionCore::reset_metrics() noexcept {
    stats_->reset();
}

SessionState SessionCore::set_state(SessionState next) {
    const auto old_state = state_.exchange(next, std::memory_order_acq_rel);
    if (old_state != next) {
        queue_event(EventType::session_state_changed, StateChange{old_state, next});
    }
    return old_state;
}

void SessionCore::queue_event(EventType type, EventData data) {
    if (!runtime_->events->wanted(type)) return;
    lifecycle_events_->push(
        Event{type, options_.name, std::move(data), std::chrono::system_clock::now()});
}

void SessionCore::flush_events() {
    lifecycle_events_->flush(*runtime_, worker_);
}

void SessionCore::announce_state() {
    flush_events();
    runtime_->notify_state_change();
}

void SessionCore::emit(EventType type, EventData data) {
    if (!runtime_->events->wanted(type)) return;
    runtime_->emit(worker_,
                   Event{type, options_.name, std::move(data), std::chrono::system_clock::now()});
}

void SessionCore::log_error(const Error& error, spdlog::level::level_enum level) {
    stats_->count_error();
    log_->log(level, "{}", error.what());
}

void SessionCore::report(const Error& error, spdlog::level::level_enum level) {
    log_error(error, level);
    emit(EventType::error, ErrorInfo{error.kind(), error.what()});
}

bool SessionCore::post_after(std::chrono::milliseconds delay, std::function<void()> task) {
    return runtime_->scheduler.post_after(delay, std::move(task));
}

void SessionCore::check_open() const {
    if (state() == SessionState::closed) throw Error::session_closed(options_.name);
}

}  // namespace mqttx::detail
