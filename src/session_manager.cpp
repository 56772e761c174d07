#include "mqttx/session_manager.hpp"

#include <spdlog/spdlog.h>

#include "channel_queue.hpp"
#include "deadline.hpp"
#include "global_route.hpp"
#include "mqttx/prometheus.hpp"
#include "problems.hpp"
#include "prometheus_text.hpp"
#include "runtime.hpp"
#include "session/session_core.hpp"
#include "wire_checks.hpp"

namespace mqttx {

namespace {

const ManagerOptions& checked(const ManagerOptions& options) {
    std::string problems;
    if (options.dispatcher_threads == 0) problems += "dispatcher_threads: must be at least 1; ";
    if (options.dispatch_queue_size == 0) problems += "dispatch_queue_size: must be at least 1; ";
    if (options.dispatch_block_timeout.count() < 0) {
        problems += "dispatch_block_timeout: must not be negative; ";
    }
    if (!problems.empty()) {
        problems.resize(problems.size() - 2);
        throw Error(ErrorKind::configuration, "invalid manager options: " + problems);
    }
    return options;
}

// Waiting for the broker on Paho's own thread would wait forever.
void refuse_on_inline_thread(const char* what) {
    if (detail::on_inline_handler_thread()) {
        throw Error(ErrorKind::configuration,
                    std::string(what) + " from an inline handler would deadlock");
    }
}

}  // namespace

SessionManager::SessionManager(ManagerOptions options)
    : runtime_(std::make_shared<detail::Runtime>(checked(options))),
      global_routes_(std::make_shared<detail::GlobalRoutes>()),
      forwarders_(std::make_unique<ForwarderManager>(*this)) {}

SessionManager::~SessionManager() {
    try {
        close();
    } catch (const std::exception& e) {
        runtime_->log->error("closing the session manager: {}", e.what());
    }
}

std::shared_ptr<Session> SessionManager::add_session(Options options) {
    validate(options);
    const std::string name = options.name;
    std::size_t worker;
    {
        std::lock_guard lock(mutex_);
        if (closed_) throw Error(ErrorKind::session_closed, "the session manager is closed");
        if (sessions_.contains(name)) {
            throw Error(ErrorKind::duplicate_session, "a session with this name exists already")
                .with_session(name);
        }
        worker = next_worker_++;
    }
    // Building the Paho client happens outside the lock; the name is checked again below.
    auto core = std::make_shared<detail::SessionCore>(std::move(options), runtime_, worker);
    core->install_initial_subscriptions();
    runtime_->track(core);
    auto shared_core = core;
    auto session = std::make_shared<Session>(std::move(core));
    {
        std::lock_guard lock(mutex_);
        if (closed_) throw Error(ErrorKind::session_closed, "the session manager is closed");
        if (!sessions_.emplace(name, session).second) {
            throw Error(ErrorKind::duplicate_session, "a session with this name exists already")
                .with_session(name);
        }
    }
    // After the session is visible, so a concurrent handle() reaches it one way or the
    // other; GlobalRoute::apply_to ignores the second.
    try {
        for (const auto& route : global_routes_->snapshot()) route->apply_to(shared_core);
    } catch (...) {
        {  // a session that cannot take the manager's routes is not added
            std::lock_guard lock(mutex_);
            sessions_.erase(name);
        }
        session->close();
        throw;
    }
    runtime_->emit(worker,
                   Event{EventType::session_added, name, {}, std::chrono::system_clock::now()});
    return session;
}

namespace {

// Adds a session's counters (less those of an earlier snapshot `since`) to `totals`: a
// ManagerMetrics, or the SessionMetrics that keeps removed sessions' counts.
template <class Totals>
void add_counters(Totals& totals, const SessionMetrics& m, const SessionMetrics* since = nullptr) {
    const SessionMetrics zero;
    const auto& before = since ? *since : zero;
    totals.messages_sent += m.messages_sent - before.messages_sent;
    totals.messages_received += m.messages_received - before.messages_received;
    totals.bytes_sent += m.bytes_sent - before.bytes_sent;
    totals.bytes_received += m.bytes_received - before.bytes_received;
    totals.errors += m.errors - before.errors;
    totals.reconnects += m.reconnects - before.reconnects;
    totals.dropped += m.dropped - before.dropped;
    totals.offline_dropped += m.offline_dropped - before.offline_dropped;
    totals.invalid_received += m.invalid_received - before.invalid_received;
    totals.poison_publishes += m.poison_publishes - before.poison_publishes;
    totals.window_stalls += m.window_stalls - before.window_stalls;
}

}  // namespace

void SessionManager::remove_session(std::string_view name) {
    refuse_on_inline_thread("remove_session()");
    std::shared_ptr<Session> session;
    {
        std::lock_guard lock(mutex_);
        auto it = sessions_.find(name);
        if (it == sessions_.end()) throw Error::session_not_found(std::string(name));
        session = std::move(it->second);
        sessions_.erase(it);
        // The manager's totals are counters: what a removed session counted stays in them.
        add_counters(removed_totals_, session->metrics());
    }
    const auto at_removal = session->metrics();
    // Closed before its forwarders stop: closing keeps the broker's subscriptions (a
    // persistent session finds them again), stopping a route would unsubscribe.
    session->close();  // outside the lock: bounded by the session's disconnect timeout
    forwarders_->session_removed(name);
    {
        std::lock_guard lock(mutex_);
        add_counters(removed_totals_, session->metrics(), &at_removal);
    }
    global_routes_->forget(&session->core());
    close_channels(name);
    // On the session's own dispatcher thread: after its last message and event.
    runtime_->emit(
        session->core().worker(),
        Event{EventType::session_removed, std::string(name), {}, std::chrono::system_clock::now()});
}

std::shared_ptr<Session> SessionManager::find(std::string_view name) const {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(name);
    return it == sessions_.end() ? nullptr : it->second;
}

std::shared_ptr<Session> SessionManager::get_session(std::string_view name) const {
    auto session = find(name);
    if (!session) throw Error::session_not_found(std::string(name));
    return session;
}

std::vector<std::string> SessionManager::list_sessions() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    names.reserve(sessions_.size());
    for (const auto& [name, session] : sessions_) names.push_back(name);
    return names;
}

std::map<std::string, SessionState> SessionManager::get_all_sessions_status() const {
    std::lock_guard lock(mutex_);
    std::map<std::string, SessionState> status;
    for (const auto& [name, session] : sessions_) status.emplace(name, session->state());
    return status;
}

void SessionManager::connect(std::string_view name) {
    get_session(name)->core().start();
}

void SessionManager::connect_all() {
    std::vector<std::shared_ptr<Session>> sessions;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, session] : sessions_) sessions.push_back(session);
    }
    // Every connect starts at once, never connect-then-wait: see PahoWaker.
    for (const auto& session : sessions) session->core().start();
}

void SessionManager::wait_for_session(std::string_view name, std::chrono::milliseconds timeout) {
    auto session = get_session(name);
    auto& core = session->core();
    std::unique_lock lock(runtime_->state_mutex);
    const bool done = detail::wait_for(runtime_->state_changed, lock, timeout, [&] {
        return core.ready() || core.state() == SessionState::closed;
    });
    lock.unlock();  // what follows takes the session's own lock
    if (core.state() == SessionState::closed) throw Error::session_closed(std::string(name));
    if (!done) {
        auto error = Error::timeout("session not ready in time")
                         .with_session(std::string(name))
                         .with_context("state", to_string(core.state()))
                         .with_context("timeout_ms", timeout.count());
        if (auto why = core.last_connect_error(); !why.empty()) {
            error.with_context("last_connect_error", std::move(why));
        }
        throw error;
    }
}

void SessionManager::wait_for_all_sessions(std::chrono::milliseconds timeout) {
    std::vector<std::shared_ptr<Session>> sessions;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, session] : sessions_) sessions.push_back(session);
    }
    // Checked at every state change of any session: from where the last check stopped,
    // then once over all, so that 10,000 sessions connecting cost O(n), not O(n^2).
    std::size_t ready_so_far = 0;
    auto all_ready = [&] {
        while (ready_so_far < sessions.size() && sessions[ready_so_far]->core().ready()) {
            ++ready_so_far;
        }
        if (ready_so_far < sessions.size()) return false;
        for (std::size_t i = 0; i < sessions.size(); ++i) {
            if (!sessions[i]->core().ready()) {
                ready_so_far = i;
                return false;
            }
        }
        return true;
    };
    std::unique_lock lock(runtime_->state_mutex);
    if (detail::wait_for(runtime_->state_changed, lock, timeout, all_ready)) return;
    lock.unlock();  // what follows takes each session's own lock
    // Each session not ready, its state and why its last connect failed: what the log
    // says, where the caller sees it.
    std::string list;
    std::size_t missing = 0;
    constexpr std::size_t listed = 20;  // a fleet's worth would be a page of text
    for (const auto& session : sessions) {
        auto& core = session->core();
        if (core.ready()) continue;
        if (++missing > listed) continue;
        list += list.empty() ? "" : "; ";
        list += session->name() + " (" + to_string(core.state());
        if (auto why = core.last_connect_error(); !why.empty()) list += ", last connect: " + why;
        list += ")";
    }
    if (missing == 0) return;  // the last ones got ready after the deadline
    if (missing > listed) list += "; and " + std::to_string(missing - listed) + " more";
    throw Error::timeout("sessions not ready in time: " + list)
        .with_context("not_ready", static_cast<long long>(missing))
        .with_context("timeout_ms", timeout.count());
}

DeliveryToken SessionManager::publish_to(std::string_view session, std::string_view topic,
                                         std::string_view payload, int qos, bool retained,
                                         const PublishProperties& properties) {
    return get_session(session)->publish(topic, payload, qos, retained, properties);
}

std::vector<DeliveryToken> SessionManager::publish_to_all(std::string_view topic,
                                                          std::string_view payload, int qos,
                                                          bool retained,
                                                          const PublishProperties& properties) {
    std::vector<std::shared_ptr<Session>> sessions;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, session] : sessions_) sessions.push_back(session);
    }
    // All or none: a v3.1.1 session would refuse the properties half way through.
    if (!properties.empty()) {
        for (const auto& session : sessions) {
            if (session->options().protocol != Protocol::v5) {
                throw Error(ErrorKind::configuration,
                            "publish_to_all with MQTT 5 properties: session '" + session->name() +
                                "' is MQTT 3.1.1 (nothing was published)")
                    .with_session(session->name())
                    .with_topic(std::string(topic));
            }
        }
    }
    std::vector<DeliveryToken> tokens;
    tokens.reserve(sessions.size());
    for (const auto& session : sessions)
        tokens.push_back(session->publish(topic, payload, qos, retained, properties));
    return tokens;
}

Route SessionManager::subscribe_to(std::string_view session, std::string_view filter, int qos,
                                   MessageHandler handler, const SubscribeOptions& options) {
    return get_session(session)->subscribe(filter, qos, std::move(handler), options);
}

namespace {

// A listen() route: stopping it also closes its channel; its drops count as the route's.
class ChannelRoute final : public detail::RouteHandle {
  public:
    ChannelRoute(std::shared_ptr<detail::RouteHandle> inner,
                 std::shared_ptr<detail::ChannelQueue> queue)
        : inner_(std::move(inner)), queue_(std::move(queue)) {}
    void stop() noexcept override {
        inner_->stop();
        queue_->close();
    }
    bool active() const noexcept override { return inner_->active(); }
    RouteStats stats() const noexcept override {
        auto stats = inner_->stats();
        stats.dropped += queue_->dropped();
        return stats;
    }
    const std::string& filter() const noexcept override { return inner_->filter(); }

  private:
    std::shared_ptr<detail::RouteHandle> inner_;
    std::shared_ptr<detail::ChannelQueue> queue_;
};

// `inline_handlers`: the manager runs every handler on Paho's receive thread.
void check_channel(const ChannelOptions& options, const SubscribeOptions& route,
                   bool inline_handlers) {
    if (options.capacity == 0) {
        throw Error(ErrorKind::configuration, "ChannelOptions::capacity must be at least 1");
    }
    if (options.block_timeout.count() < 0) {
        throw Error(ErrorKind::configuration, "ChannelOptions::block_timeout must not be negative");
    }
    if (!detail::is_enumerator(options.overflow, Overflow::drop_newest)) {
        throw Error(ErrorKind::configuration, "ChannelOptions::overflow is not an Overflow");
    }
    if (auto problem = detail::check_subscribe_options(route, Protocol::v5); !problem.empty()) {
        throw Error(ErrorKind::configuration, std::move(problem));
    }
    // A full channel would stop every session of the process from receiving.
    const bool on_receive_thread =
        inline_handlers || route.handler_thread == HandlerThread::receive_thread;
    if (options.overflow == Overflow::block && on_receive_thread) {
        throw Error(ErrorKind::configuration,
                    "a channel filled on Paho's receive thread may not block (Overflow::block)");
    }
}

std::pair<std::shared_ptr<detail::ChannelQueue>, MessageHandler> make_channel(
    const ChannelOptions& options) {
    auto queue = std::make_shared<detail::ChannelQueue>(options);
    return {queue, [queue](const Message& message) { queue->push(message); }};
}

}  // namespace

std::shared_ptr<detail::GlobalRoute> SessionManager::add_global_route(
    std::string_view filter, MessageHandler handler, int qos, const SubscribeOptions& options) {
    // Checked here too: with no session yet, nothing else would look at them now.
    if (auto problem = detail::check_subscribe_options(options, Protocol::v5); !problem.empty()) {
        throw Error(ErrorKind::configuration, std::move(problem)).with_topic(std::string(filter));
    }
    auto route = std::make_shared<detail::GlobalRoute>(std::string(filter), qos, std::move(handler),
                                                       options, global_routes_);
    std::vector<std::shared_ptr<Session>> sessions;
    {
        std::lock_guard lock(mutex_);
        if (closed_) throw Error(ErrorKind::session_closed, "the session manager is closed");
        global_routes_->add(route);
        for (const auto& [name, session] : sessions_) sessions.push_back(session);
    }
    try {
        for (const auto& session : sessions) route->apply_to(session->core().shared_from_this());
    } catch (...) {
        route->stop();  // never half-registered
        throw;
    }
    return route;
}

Route SessionManager::handle(std::string_view filter, MessageHandler handler, int qos,
                             const SubscribeOptions& options) {
    return Route(add_global_route(filter, std::move(handler), qos, options));
}

Route SessionManager::handle_to(std::string_view session, std::string_view filter,
                                MessageHandler handler, int qos, const SubscribeOptions& options) {
    return get_session(session)->subscribe(filter, qos, std::move(handler), options);
}

Listener SessionManager::listen(std::string_view filter, int qos, ChannelOptions channel,
                                const SubscribeOptions& options) {
    check_channel(channel, options, runtime_->options.inline_handlers);
    auto [queue, handler] = make_channel(channel);
    auto inner = add_global_route(filter, std::move(handler), qos, options);
    keep_channel({}, queue);
    return {MessageChannel(queue), Route(std::make_shared<ChannelRoute>(inner, queue))};
}

Listener SessionManager::listen_to(std::string_view session, std::string_view filter, int qos,
                                   std::optional<ChannelOptions> channel,
                                   const SubscribeOptions& options) {
    auto target = get_session(session);
    if (!channel) {
        channel.emplace();
        channel->capacity = target->options().message_channel_size;
    }
    check_channel(*channel, options, runtime_->options.inline_handlers);
    auto [queue, handler] = make_channel(*channel);
    auto inner = target->core().subscribe(filter, qos, std::move(handler), options);
    keep_channel(std::string(session), queue);
    return {MessageChannel(queue), Route(std::make_shared<ChannelRoute>(inner, queue))};
}

void SessionManager::keep_channel(std::string session,
                                  const std::shared_ptr<detail::ChannelQueue>& queue) {
    {
        std::lock_guard lock(mutex_);
        if (!closed_) {
            // Channels whose route and consumer are gone need no closing.
            std::erase_if(channels_, [](const auto& entry) { return entry.second.expired(); });
            channels_.emplace_back(std::move(session), queue);
            return;
        }
    }
    queue->close();  // the manager closed meanwhile
}

void SessionManager::close_channels(std::string_view session) {
    std::vector<std::shared_ptr<detail::ChannelQueue>> closing;
    {
        std::lock_guard lock(mutex_);
        std::erase_if(channels_, [&](const auto& entry) {
            if (!session.empty() && entry.first != session) return false;
            if (auto queue = entry.second.lock()) closing.push_back(std::move(queue));
            return true;
        });
    }
    for (const auto& queue : closing) queue->close();
}

void SessionManager::disconnect_all() {
    refuse_on_inline_thread("disconnect_all()");
    std::vector<std::shared_ptr<Session>> sessions;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, session] : sessions_) sessions.push_back(session);
    }
    for (const auto& session : sessions) session->core().disconnect();
}

EventSubscription SessionManager::on_event(EventType type, EventHandler handler) {
    return {runtime_->events, runtime_->events->add(type, std::move(handler))};
}

EventSubscription SessionManager::on_any_event(EventHandler handler) {
    return {runtime_->events, runtime_->events->add(std::nullopt, std::move(handler))};
}

std::vector<std::shared_ptr<Session>> SessionManager::all_sessions() const {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Session>> sessions;
    sessions.reserve(sessions_.size());
    for (const auto& [name, session] : sessions_) sessions.push_back(session);
    return sessions;
}

namespace {

void add_to_totals(ManagerMetrics& totals, const SessionMetrics& m) {
    ++totals.sessions;
    switch (m.state) {
        case SessionState::connected:
            ++totals.sessions_connected;
            break;
        case SessionState::connecting:
            ++totals.sessions_connecting;
            break;
        case SessionState::reconnecting:
            ++totals.sessions_reconnecting;
            break;
        case SessionState::disconnected:
        case SessionState::closed:  // a removed session's last moments
            ++totals.sessions_disconnected;
            break;
    }
    add_counters(totals, m);
    totals.sessions_stalled += m.window_stalled ? 1 : 0;
    totals.active_subscriptions += m.active_subscriptions;
    totals.message_rate += m.message_rate;
}

}  // namespace

void SessionManager::add_removed(ManagerMetrics& totals) const {
    std::lock_guard lock(mutex_);
    add_counters(totals, removed_totals_);
}

ManagerMetrics SessionManager::metrics() const {
    ManagerMetrics totals;
    for (const auto& session : all_sessions()) add_to_totals(totals, session->metrics());
    add_removed(totals);
    totals.forwarders = forwarders_->list().size();
    return totals;
}

std::string SessionManager::prometheus_text() const {
    // Every session is read once, so the totals agree with the per-session lines.
    const auto sessions = all_sessions();
    std::vector<detail::SessionSample> samples;
    samples.reserve(sessions.size());
    ManagerMetrics totals;
    for (const auto& session : sessions) {
        samples.push_back({session->name(), session->metrics(), session->route_metrics(),
                           session->storage_metrics()});
        add_to_totals(totals, samples.back().metrics);
    }
    add_removed(totals);
    const auto forwarders = forwarders_->all_metrics();
    totals.forwarders = forwarders.size();

    PrometheusExporter exporter;
    detail::declare_manager_families(exporter);
    detail::declare_session_families(exporter);
    detail::declare_forwarder_families(exporter);
    detail::add_manager(exporter, totals);
    for (const auto& sample : samples) detail::add_session(exporter, sample);
    for (const auto& [name, metrics] : forwarders) detail::add_forwarder(exporter, name, metrics);
    return exporter.text();
}

void SessionManager::reset_metrics() {
    {
        std::lock_guard lock(mutex_);
        removed_totals_ = {};
    }
    for (const auto& session : all_sessions()) session->reset_metrics();
    forwarders_->reset_all_metrics();
}

void SessionManager::close() {
    if (runtime_->dispatcher.on_dispatcher_thread()) {
        throw Error(ErrorKind::configuration, "close() called from a message or event handler");
    }
    refuse_on_inline_thread("close()");
    std::map<std::string, std::shared_ptr<Session>, std::less<>> sessions;
    {
        std::lock_guard lock(mutex_);
        if (closed_) return;
        closed_ = true;
        sessions.swap(sessions_);
    }
    // All sessions disconnect at once: the whole close takes one disconnect timeout,
    // not one per session.
    std::vector<std::pair<SessionState, std::shared_ptr<mqtt::token>>> closing;
    closing.reserve(sessions.size());
    auto deadline = std::chrono::steady_clock::time_point::min();
    for (const auto& [name, session] : sessions) {
        SessionState old_state;
        auto token = session->core().begin_close(old_state);
        closing.emplace_back(old_state, std::move(token));
        deadline = std::max(deadline, session->core().disconnect_deadline());
    }
    std::size_t i = 0;
    for (const auto& [name, session] : sessions) {
        session->core().finish_close(closing[i].first, closing[i].second, deadline);
        ++i;
    }
    // Only now: a forwarder stopped while its sources were connected would unsubscribe
    // them, and a persistent session would come back without its subscriptions.
    forwarders_->stop_all();
    close_channels({});
    runtime_->stop();
}

}  // namespace mqttx
