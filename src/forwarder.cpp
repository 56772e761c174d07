#include "mqttx/forwarder.hpp"

#include <nlohmann/json.hpp>

#include <regex>

#include "forwarder_core.hpp"
#include "mqttx/error.hpp"
#include "mqttx/session_manager.hpp"
#include "mqttx/topic.hpp"
#include "problems.hpp"
#include "runtime.hpp"
#include "session/session_core.hpp"
#include "topic_template.hpp"
#include "wire_checks.hpp"

namespace mqttx {

// ---- validation and the builder ---------------------------------------------------

void validate(const ForwarderConfig& config) {
    detail::Problems problems;
    if (config.name.empty()) problems.add("name", "must not be empty");
    if (config.sources.empty()) problems.add("sources", "at least one source is required");
    for (std::size_t i = 0; i < config.sources.size(); ++i) {
        const auto& source = config.sources[i];
        const std::string field = "sources[" + std::to_string(i) + "]";
        if (source.session.empty()) problems.add(field + ".session", "must not be empty");
        if (source.filters.empty()) problems.add(field + ".filters", "at least one filter");
        for (const auto& filter : source.filters) {
            if (auto bad = topic::check_topic_filter(filter); !bad.empty()) {
                problems.add(field + ".filters", detail::quoted(filter) + ": " + std::string(bad));
            }
        }
    }
    if (config.target.empty()) problems.add("target", "must not be empty");
    if (!config.share_group.empty()) {
        if (auto bad = topic::check_share_group(config.share_group); !bad.empty()) {
            problems.add("share_group",
                         detail::quoted(config.share_group) + ": " + std::string(bad));
        }
    }
    if (config.qos && (*config.qos < 0 || *config.qos > 2)) {
        problems.add("qos", "QoS must be 0, 1 or 2, got " + std::to_string(*config.qos));
    }
    for (std::size_t i = 0; i < config.mappings.size(); ++i) {
        std::string problem;
        detail::TopicTemplate compiled(config.mappings[i].from, config.mappings[i].to, problem);
        if (!problem.empty()) problems.add("mappings[" + std::to_string(i) + "]", problem);
    }
    if (config.prefix.find_first_of("+#") != std::string::npos) {
        problems.add("prefix", "may not contain '+' or '#'");
    }
    detail::check_string(problems, "prefix", config.prefix);
    for (const auto& filter : config.topic_filters) {
        if (auto bad = topic::check_topic_filter(filter); !bad.empty()) {
            problems.add("topic_filters", detail::quoted(filter) + ": " + std::string(bad));
        }
    }
    for (const auto& pattern : config.payload_patterns) {
        try {
            std::regex compiled(pattern);
        } catch (const std::regex_error& e) {
            problems.add("payload_patterns", detail::quoted(pattern) + ": " + e.what());
        }
    }
    for (const auto& predicate : config.predicates) {
        if (!predicate) problems.add("predicates", "an empty predicate");
    }
    for (const auto& transform : config.transforms) {
        if (!transform) problems.add("transforms", "an empty transform");
    }
    for (std::size_t i = 0; i < config.metadata.size(); ++i) {
        const auto& [key, value] = config.metadata[i];
        const std::string field = "metadata[" + std::to_string(i) + "]";
        if (key.empty()) problems.add(field + ".key", "must not be empty");
        if (key == detail::ForwarderCore::hops_property) {
            problems.add(field + ".key", detail::quoted(key) + " is reserved for the hop count");
        }
        // User properties on MQTT 5, JSON strings in the envelope: UTF-8 either way.
        detail::check_string(problems, field + ".key", key);
        detail::check_string(problems, field + ".value", value);
    }
    if (!detail::is_enumerator(config.mode, ForwardMode::decoupled)) {
        problems.add("mode", "not a ForwardMode");
    }
    if (!detail::is_enumerator(config.overflow, Overflow::drop_newest)) {
        problems.add("overflow", "not an Overflow");
    }
    if (config.handoff_timeout.count() < 0) problems.add("handoff_timeout", "must not be negative");
    if (config.buffer_size < 1) problems.add("buffer_size", "must be at least 1");
    if (config.max_hops < 1) problems.add("max_hops", "must be at least 1");
    if (!problems.empty()) problems.raise("invalid forwarder '" + config.name + "'");
}

ForwarderBuilder::ForwarderBuilder(std::string name) {
    config_.name = std::move(name);
}
ForwarderBuilder& ForwarderBuilder::source(std::string session, std::vector<std::string> filters) {
    config_.sources.push_back({std::move(session), std::move(filters)});
    return *this;
}
ForwarderBuilder& ForwarderBuilder::target(std::string session) {
    config_.target = std::move(session);
    return *this;
}
ForwarderBuilder& ForwarderBuilder::qos(int qos) {
    config_.qos = qos;
    return *this;
}
ForwarderBuilder& ForwarderBuilder::keep_qos() {
    config_.qos.reset();
    return *this;
}
ForwarderBuilder& ForwarderBuilder::share_group(std::string group) {
    config_.share_group = std::move(group);
    return *this;
}
ForwarderBuilder& ForwarderBuilder::retain(bool keep) {
    config_.keep_retain = keep;
    return *this;
}
ForwarderBuilder& ForwarderBuilder::map_topic(std::string from, std::string to) {
    config_.mappings.push_back({std::move(from), std::move(to)});
    return *this;
}
ForwarderBuilder& ForwarderBuilder::prefix(std::string prefix) {
    config_.prefix = std::move(prefix);
    return *this;
}
ForwarderBuilder& ForwarderBuilder::filter_topic(std::string filter) {
    config_.topic_filters.push_back(std::move(filter));
    return *this;
}
ForwarderBuilder& ForwarderBuilder::filter(MessagePredicate predicate) {
    config_.predicates.push_back(std::move(predicate));
    return *this;
}
ForwarderBuilder& ForwarderBuilder::filter_payload(std::string pattern) {
    config_.payload_patterns.push_back(std::move(pattern));
    return *this;
}
ForwarderBuilder& ForwarderBuilder::transform(PayloadTransform transform) {
    config_.transforms.push_back(std::move(transform));
    return *this;
}
ForwarderBuilder& ForwarderBuilder::set_json_field(std::string field, std::string value) {
    config_.transforms.push_back(
        [field = std::move(field), value = std::move(value)](std::string_view payload) {
            auto doc = nlohmann::json::parse(payload);  // throws on a payload that is not JSON
            if (!doc.is_object()) throw std::invalid_argument("payload is not a JSON object");
            auto* node = &doc;
            std::string_view rest = field;
            for (;;) {
                const auto dot = rest.find('.');
                const std::string key(rest.substr(0, dot));
                if (dot == std::string_view::npos) {
                    (*node)[key] = value;
                    break;
                }
                node = &(*node)[key];
                if (!node->is_object() && !node->is_null()) {
                    throw std::invalid_argument("'" + key + "' is not a JSON object");
                }
                rest.remove_prefix(dot + 1);
            }
            return doc.dump();
        });
    return *this;
}
ForwarderBuilder& ForwarderBuilder::metadata(std::string key, std::string value) {
    config_.metadata.emplace_back(std::move(key), std::move(value));
    return *this;
}
ForwarderBuilder& ForwarderBuilder::json_envelope(bool on) {
    config_.json_envelope = on;
    return *this;
}
ForwarderBuilder& ForwarderBuilder::mode(ForwardMode mode) {
    config_.mode = mode;
    return *this;
}
ForwarderBuilder& ForwarderBuilder::handoff_timeout(std::chrono::milliseconds timeout) {
    config_.handoff_timeout = timeout;
    return *this;
}
ForwarderBuilder& ForwarderBuilder::buffer(std::size_t size, Overflow overflow) {
    config_.buffer_size = size;
    config_.overflow = overflow;
    return *this;
}
ForwarderBuilder& ForwarderBuilder::max_hops(int hops) {
    config_.max_hops = hops;
    return *this;
}
ForwarderBuilder& ForwarderBuilder::enabled(bool on) {
    config_.enabled = on;
    return *this;
}
ForwarderConfig ForwarderBuilder::build() const {
    validate(config_);
    return config_;
}

// ---- Forwarder -------------------------------------------------------------------

Forwarder::Forwarder(std::shared_ptr<detail::ForwarderCore> core) noexcept
    : core_(std::move(core)) {}
Forwarder::~Forwarder() = default;
const std::string& Forwarder::name() const noexcept {
    return core_->config().name;
}
const ForwarderConfig& Forwarder::config() const noexcept {
    return core_->config();
}
void Forwarder::start() {
    core_->start();
}
void Forwarder::stop() noexcept {
    core_->stop();
}
bool Forwarder::running() const noexcept {
    return core_->running();
}
bool Forwarder::subscribed() const noexcept {
    return core_->subscribed();
}
ForwarderMetrics Forwarder::metrics() const noexcept {
    return core_->metrics();
}

void Forwarder::reset_metrics() noexcept {
    core_->reset_metrics();
}

// ---- ForwarderManager ------------------------------------------------------------

ForwarderManager::ForwarderManager(SessionManager& sessions) : sessions_(sessions) {}

ForwarderManager::~ForwarderManager() {
    stop_all();
}

std::shared_ptr<Forwarder> ForwarderManager::make(ForwarderConfig config) {
    validate(config);
    std::vector<std::shared_ptr<Session>> sources;
    for (const auto& source : config.sources)
        sources.push_back(sessions_.get_session(source.session));
    auto target = sessions_.get_session(config.target);

    detail::Problems problems;
    const bool target_v5 = target->options().protocol == Protocol::v5;
    if (!config.metadata.empty() && !target_v5 && !config.json_envelope) {
        problems.add("metadata", "target '" + config.target +
                                     "' speaks MQTT 3.1.1, which has no user properties: "
                                     "set json_envelope or use an MQTT 5 target");
    }
    for (const auto& source : sources) {
        if (source->name() != config.target) continue;
        if (!target_v5) {
            problems.add("sources", "source and target '" + config.target +
                                        "' are one MQTT 3.1.1 session: without no_local "
                                        "(MQTT 5) its forwarded messages would come back");
        } else if (!config.share_group.empty()) {
            problems.add("share_group", "source and target '" + config.target +
                                            "' are one session: its forwarded messages would "
                                            "come back (MQTT 5 forbids no_local on a shared "
                                            "subscription)");
        }
    }
    if (!problems.empty()) problems.raise("invalid forwarder '" + config.name + "'");

    std::weak_ptr<detail::Runtime> runtime = sessions_.runtime_;
    auto emit = [runtime](Event event) {
        if (auto r = runtime.lock()) r->emit(0, std::move(event));
    };
    return std::make_shared<Forwarder>(std::make_shared<detail::ForwarderCore>(
        std::move(config), std::move(sources), std::move(target), std::move(emit)));
}

Forwarder& ForwarderManager::add(ForwarderConfig config) {
    const std::string name = config.name;
    const bool enabled = config.enabled;
    auto forwarder = make(std::move(config));
    {
        std::lock_guard lock(mutex_);
        if (forwarders_.contains(name)) {
            throw Error(ErrorKind::duplicate_forwarder, "a forwarder named '" + name + "' exists");
        }
        forwarders_.emplace(name, forwarder);
    }
    if (enabled) {
        try {
            forwarder->start();
        } catch (...) {
            std::lock_guard lock(mutex_);
            forwarders_.erase(name);
            throw;
        }
    }
    return *forwarder;
}

Forwarder& ForwarderManager::replace(ForwarderConfig config) {
    const bool enabled = config.enabled;
    auto next = make(std::move(config));
    auto previous = find(next->name());
    // The new routes subscribe before the old ones stop: a filter both use keeps its
    // broker subscription, so nothing published meanwhile is missed.
    if (enabled) next->start();
    {
        std::lock_guard lock(mutex_);
        auto it = forwarders_.find(next->name());
        if (it == forwarders_.end() || it->second != previous) {
            next->stop();
            throw Error(ErrorKind::forwarder_not_found,
                        "forwarder '" + next->name() + "' was removed meanwhile");
        }
        it->second = next;
    }
    previous->stop();
    return *next;
}

std::shared_ptr<Forwarder> ForwarderManager::find(std::string_view name) const {
    std::lock_guard lock(mutex_);
    auto it = forwarders_.find(name);
    if (it == forwarders_.end()) {
        throw Error(ErrorKind::forwarder_not_found,
                    "no forwarder named '" + std::string(name) + "'");
    }
    return it->second;
}

void ForwarderManager::remove(std::string_view name) {
    std::shared_ptr<Forwarder> forwarder;
    {
        std::lock_guard lock(mutex_);
        auto it = forwarders_.find(name);
        if (it == forwarders_.end()) {
            throw Error(ErrorKind::forwarder_not_found,
                        "no forwarder named '" + std::string(name) + "'");
        }
        forwarder = std::move(it->second);
        forwarders_.erase(it);
    }
    forwarder->stop();
}

Forwarder& ForwarderManager::get(std::string_view name) {
    return *find(name);
}

std::vector<std::string> ForwarderManager::list() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    for (const auto& [name, forwarder] : forwarders_) names.push_back(name);
    return names;
}

void ForwarderManager::start(std::string_view name) {
    find(name)->start();
}

void ForwarderManager::stop(std::string_view name) {
    find(name)->stop();
}

void ForwarderManager::stop_all() noexcept {
    std::vector<std::shared_ptr<Forwarder>> all;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, forwarder] : forwarders_) all.push_back(forwarder);
    }
    for (const auto& forwarder : all) forwarder->stop();
}

std::map<std::string, ForwarderMetrics> ForwarderManager::all_metrics() const {
    std::map<std::string, ForwarderMetrics> metrics;
    std::lock_guard lock(mutex_);
    for (const auto& [name, forwarder] : forwarders_) metrics.emplace(name, forwarder->metrics());
    return metrics;
}

void ForwarderManager::reset_all_metrics() noexcept {
    std::lock_guard lock(mutex_);
    for (const auto& [name, forwarder] : forwarders_) forwarder->reset_metrics();
}

void ForwarderManager::session_removed(std::string_view session) noexcept {
    std::vector<std::shared_ptr<Forwarder>> affected;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, forwarder] : forwarders_) {
            if (forwarder->running() && forwarder->core_->uses(session))
                affected.push_back(forwarder);
        }
    }
    for (const auto& forwarder : affected) {
        forwarder->stop();
        if (auto runtime = sessions_.runtime_) {
            runtime->emit(
                0, Event{EventType::forwarder_stopped, std::string(session),
                         ForwarderStopped{forwarder->name(),
                                          "session '" + std::string(session) + "' was removed"},
                         std::chrono::system_clock::now()});
        }
    }
}

}  // namespace mqttx
