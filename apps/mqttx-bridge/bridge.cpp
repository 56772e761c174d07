#include "bridge.hpp"

#include <algorithm>
#include <functional>
#include <set>
#include <thread>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

#include "mqttx/error.hpp"
#include "mqttx/prometheus.hpp"

namespace mqttx::bridge {

namespace {

ManagerOptions manager_options() {
    ManagerOptions options;
    options.logger = spdlog::default_logger();  // the library's lines go where ours go
    return options;
}

void apply_log_level(const std::string& level) {
    spdlog::default_logger()->set_level(spdlog::level::from_str(level));
}

// The sessions every forwarder of `config` uses, source or target.
std::set<std::string> sessions_used(const ForwarderConfig& config) {
    std::set<std::string> used{config.target};
    for (const auto& source : config.sources) used.insert(source.session);
    return used;
}

template <class Entry>
const Entry* find_entry(const std::vector<Entry>& entries, const std::string& name) {
    for (const auto& entry : entries) {
        if constexpr (std::is_same_v<Entry, SessionEntry>) {
            if (entry.options.name == name) return &entry;
        } else {
            if (entry.config.name == name) return &entry;
        }
    }
    return nullptr;
}

// Library calls may throw more than Error (std::bad_alloc, a std::system_error from a
// thread): the bridge logs them as it logs an Error, and runs on.
std::string failure_of(const std::function<void()>& call) {
    try {
        call();
        return {};
    } catch (const std::exception& e) {
        return e.what();
    }
}

// Whether `now` can swap in for `before` with ForwarderManager::replace(): the same
// sessions and subscription kind, so that the subscriptions the two share are the same.
bool replaceable(const ForwarderConfig& before, const ForwarderConfig& now) {
    return sessions_used(before) == sessions_used(now) && before.target == now.target &&
           before.share_group == now.share_group;
}

}  // namespace

Bridge::Bridge(BridgeConfig config, std::string config_path, LoadOptions load)
    : manager_(manager_options()),
      path_(std::move(config_path)),
      load_(std::move(load)),
      config_(std::move(config)),
      last_success_(std::chrono::system_clock::now()) {
    apply_log_level(config_.log_level);
}

Bridge::~Bridge() {
    manager_.close();
}

void Bridge::start() {
    std::lock_guard change(change_mutex_);
    for (const auto& session : config_.sessions) add_session(session);
    for (const auto& forwarder : config_.forwarders) add_forwarder(forwarder);
    // Only now: a persistent session's broker sends what it kept as soon as it is
    // connected, and a message that finds no forwarder's route is not forwarded.
    for (const auto& session : config_.sessions) connect(session.options.name);
    spdlog::info("started: {} session(s), {} forwarder(s){}", config_.sessions.size(),
                 config_.forwarders.size(),
                 load_.instance.empty() ? "" : ", instance " + load_.instance);
}

void Bridge::set_failed(const std::string& what, std::string why) {
    std::replace(why.begin(), why.end(), '\n', ' ');  // one line per reason in /readyz
    std::lock_guard lock(state_mutex_);
    failed_[what] = std::move(why);
}

void Bridge::clear_failed(const std::string& what) {
    std::lock_guard lock(state_mutex_);
    failed_.erase(what);
}

bool Bridge::failed(const std::string& what) const {
    std::lock_guard lock(state_mutex_);
    return failed_.count(what) > 0;
}

bool Bridge::attempt(const std::string& what, const std::string& failing,
                     const std::function<void()>& call) {
    const auto problem = failure_of(call);
    if (problem.empty()) {
        clear_failed(what);
        return true;
    }
    set_failed(what, failing + ": " + problem);
    spdlog::error("{}: {}: {}", what, failing, problem);
    return false;
}

void Bridge::add_session(const SessionEntry& entry) {
    const auto& name = entry.options.name;
    if (attempt("session " + name, "not started", [&] { manager_.add_session(entry.options); })) {
        spdlog::info("session {}: added ({})", name, entry.options.brokers.front());
    }
}

void Bridge::connect(const std::string& session) {
    if (failed("session " + session)) return;
    attempt("session " + session, "cannot connect", [&] { manager_.connect(session); });
}

void Bridge::add_forwarder(const ForwarderEntry& entry) {
    const auto& name = entry.config.name;
    if (attempt("forwarder " + name, "not started",
                [&] { manager_.forwarders().add(entry.config); })) {
        spdlog::info("forwarder {}: added (target {})", name, entry.config.target);
    }
}

void Bridge::replace_forwarder(const ForwarderEntry& entry) {
    const auto& name = entry.config.name;
    if (attempt("forwarder " + name, "new configuration refused, the old one runs on",
                [&] { manager_.forwarders().replace(entry.config); })) {
        spdlog::info("forwarder {}: replaced", name);
    }
}

bool Bridge::reload() {
    std::lock_guard change(change_mutex_);
    BridgeConfig next;
    if (const auto problem = failure_of([&] { next = load_config(path_, load_); });
        !problem.empty()) {
        {
            std::lock_guard lock(state_mutex_);
            ++reloads_failed_;
        }
        spdlog::error("reload of {} rejected, the running configuration stays:", path_);
        std::string_view text = problem;
        while (!text.empty()) {
            const auto end = text.find('\n');
            spdlog::error("  {}", text.substr(0, end));
            text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        }
        return false;
    }

    // Sessions that are gone or changed (or failed: they get another try).
    std::set<std::string> sessions_out;
    for (const auto& old : config_.sessions) {
        const auto* now = find_entry(next.sessions, old.options.name);
        if (now == nullptr || now->source != old.source || failed("session " + old.options.name)) {
            sessions_out.insert(old.options.name);
        }
    }
    // Forwarders: removed and added again when gone, failed or using one of those
    // sessions; swapped in place when only their own table changed, which keeps the
    // subscriptions they share with the new one.
    std::set<std::string> forwarders_out;
    std::vector<const ForwarderEntry*> forwarders_changed;
    for (const auto& old : config_.forwarders) {
        const auto* now = find_entry(next.forwarders, old.config.name);
        bool out = now == nullptr || failed("forwarder " + old.config.name);
        for (const auto& session : sessions_used(old.config))
            out |= sessions_out.count(session) > 0;
        if (!out && now->source != old.source && !replaceable(old.config, now->config)) out = true;
        if (out) {
            forwarders_out.insert(old.config.name);
        } else if (now->source != old.source) {
            forwarders_changed.push_back(now);
        }
    }

    const auto running_sessions = manager_.list_sessions();
    const auto running = [&](const std::string& name) {
        return std::find(running_sessions.begin(), running_sessions.end(), name) !=
               running_sessions.end();
    };
    // Closed first, so that the forwarders removed next do not unsubscribe them.
    for (const auto& name : sessions_out) {
        if (running(name)) manager_.get_session(name)->close();
    }
    const auto running_forwarders = manager_.forwarders().list();
    for (const auto& name : forwarders_out) {
        if (std::find(running_forwarders.begin(), running_forwarders.end(), name) !=
            running_forwarders.end()) {
            manager_.forwarders().remove(name);
            spdlog::info("forwarder {}: removed", name);
        }
        clear_failed("forwarder " + name);
    }
    for (const auto& name : sessions_out) {
        if (running(name)) {
            manager_.remove_session(name);
            spdlog::info("session {}: removed", name);
        }
        clear_failed("session " + name);
    }

    std::vector<std::string> sessions_in;
    std::size_t forwarders_in = 0;
    for (const auto& entry : next.sessions) {
        if (find_entry(config_.sessions, entry.options.name) == nullptr ||
            sessions_out.count(entry.options.name) > 0) {
            add_session(entry);
            sessions_in.push_back(entry.options.name);
        }
    }
    for (const auto& entry : next.forwarders) {
        if (find_entry(config_.forwarders, entry.config.name) == nullptr ||
            forwarders_out.count(entry.config.name) > 0) {
            add_forwarder(entry);
            ++forwarders_in;
        }
    }
    for (const auto* entry : forwarders_changed) replace_forwarder(*entry);
    for (const auto& name : sessions_in) connect(name);  // after their forwarders, as start()

    apply_log_level(next.log_level);
    spdlog::info(
        "reloaded {}: {} session(s) and {} forwarder(s) out, {} and {} in, {} "
        "forwarder(s) replaced, the rest untouched",
        path_, sessions_out.size(), forwarders_out.size(), sessions_in.size(), forwarders_in,
        forwarders_changed.size());
    std::lock_guard lock(state_mutex_);
    config_ = std::move(next);
    ++reloads_succeeded_;
    last_success_ = std::chrono::system_clock::now();
    return failed_.empty();
}

std::set<std::string> Bridge::running_targets() {
    std::set<std::string> targets;
    // change_mutex_ is held: no forwarder goes away meanwhile.
    for (const auto& name : manager_.forwarders().list()) {
        targets.insert(manager_.forwarders().get(name).config().target);
    }
    return targets;
}

std::uint64_t Bridge::queued(const std::set<std::string>& targets) const {
    std::uint64_t total = 0;
    for (const auto& [name, metrics] : manager_.forwarders().all_metrics()) total += metrics.queued;
    for (const auto& name : targets) {
        try {
            const auto metrics = manager_.get_session(name)->metrics();
            total += metrics.outbox_waiting + metrics.in_flight;
        } catch (const Error&) {
            // not running: nothing it could hand over
        }
    }
    return total;
}

std::uint64_t Bridge::drain(std::chrono::milliseconds deadline) {
    std::lock_guard change(change_mutex_);
    {
        std::lock_guard lock(state_mutex_);
        draining_ = true;
    }
    // A session that is only a source closes first: no new message enters the bridge,
    // and the broker keeps what a persistent session has not acknowledged. A session
    // that is also a target keeps running to deliver.
    const auto targets = running_targets();
    for (const auto& name : manager_.list_sessions()) {
        if (targets.count(name) == 0) manager_.get_session(name)->close();
    }
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t left = queued(targets);
    spdlog::info("draining: {} message(s) to hand over, deadline {} ms", left, deadline.count());
    while (left > 0 && std::chrono::steady_clock::now() - start < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        left = queued(targets);
    }
    manager_.close();
    if (left == 0) {
        spdlog::info("drained in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - start)
                                             .count());
    } else {
        spdlog::error(
            "drain deadline passed with {} message(s) not handed over (a persistent "
            "target keeps them in its storage for the next start)",
            left);
    }
    return left;
}

BridgeConfig Bridge::config() const {
    std::lock_guard lock(state_mutex_);
    return config_;
}

std::string Bridge::metrics_text() const {
    std::lock_guard lock(state_mutex_);
    PrometheusExporter exporter("mqttx_bridge");
    exporter.declare("config_reloads_total", MetricType::counter,
                     "Configuration reloads (SIGHUP), by result.");
    exporter.declare("config_last_reload_success_timestamp_seconds", MetricType::gauge,
                     "When the running configuration was loaded, in seconds since the epoch.");
    exporter.declare("info", MetricType::gauge, "The instance and the library version; always 1.");
    exporter.add("config_reloads_total", {{"result", "success"}}, reloads_succeeded_);
    exporter.add("config_reloads_total", {{"result", "failure"}}, reloads_failed_);
    exporter.add("config_last_reload_success_timestamp_seconds", {},
                 std::chrono::duration<double>(last_success_.time_since_epoch()).count());
    exporter.add("info", {{"instance", load_.instance}, {"version", MQTTX_BRIDGE_VERSION}}, 1);
    return exporter.text();
}

std::vector<std::string> Bridge::not_ready() const {
    std::lock_guard lock(state_mutex_);
    std::vector<std::string> reasons;
    if (draining_) reasons.emplace_back("bridge: draining (stopping)");
    for (const auto& [what, why] : failed_) reasons.push_back(what + ": " + why);
    return reasons;
}

}  // namespace mqttx::bridge
