#include "forwarder_core.hpp"

#include <nlohmann/json.hpp>

#include <thread>

#include "deadline.hpp"
#include "mqttx/error.hpp"
#include "mqttx/topic.hpp"
#include "session/session_core.hpp"
#include "session_stats.hpp"
#include "thread_name.hpp"

namespace mqttx::detail {

namespace {

using Clock = std::chrono::steady_clock;

int hops_of(const Message& message) {
    for (const auto& [key, value] : message.user_properties()) {
        if (key != ForwarderCore::hops_property) continue;
        try {
            return std::stoi(value);
        } catch (const std::exception&) {
            return 0;  // not ours to judge: count it as a first hop
        }
    }
    return 0;
}

std::string envelope(std::string_view payload,
                     const std::vector<std::pair<std::string, std::string>>& metadata) {
    nlohmann::json doc;
    // Invalid UTF-8 would make dump() throw: such bytes are replaced.
    doc["payload"] = std::string(payload);
    doc["metadata"] = nlohmann::json::object();
    for (const auto& [key, value] : metadata) doc["metadata"][key] = value;
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

ForwarderCore::ForwarderCore(ForwarderConfig config, std::vector<std::shared_ptr<Session>> sources,
                             std::shared_ptr<Session> target, Emit emit)
    : config_(std::move(config)),
      sources_(std::move(sources)),
      target_(std::move(target)),
      emit_(std::move(emit)),
      target_v5_(target_->options().protocol == Protocol::v5) {
    std::string problem;
    for (const auto& mapping : config_.mappings)
        mappings_.emplace_back(mapping.from, mapping.to, problem);
    for (const auto& pattern : config_.payload_patterns) patterns_.emplace_back(pattern);
}

ForwarderCore::~ForwarderCore() {
    stop();
}

bool ForwarderCore::uses(std::string_view session) const noexcept {
    if (target_->name() == session) return true;
    for (const auto& source : sources_) {
        if (source->name() == session) return true;
    }
    return false;
}

void ForwarderCore::start() {
    std::lock_guard lock(mutex_);
    if (!routes_.empty()) return;
    {
        std::lock_guard queue_lock(queue_mutex_);
        stopping_ = false;
    }
    if (config_.mode == ForwardMode::decoupled) worker_ = std::thread([this] { run_worker(); });
    // Subscribe at the QoS asked for, or at 2 so that messages keep the QoS they were sent with.
    const int qos = config_.qos.value_or(2);
    std::weak_ptr<ForwarderCore> weak = weak_from_this();
    auto handler = [weak](const Message& message) {
        if (auto self = weak.lock()) self->on_message(message);
    };
    std::vector<Route> routes;
    try {
        for (std::size_t i = 0; i < sources_.size(); ++i) {
            const auto& source = sources_[i];
            SubscribeOptions options;
            // Its own forwarded messages must not come back to a session that is both.
            options.no_local = source->name() == target_->name();
            options.share_group = config_.share_group;
            // At least once: the message is published on before Paho acknowledges it.
            if (config_.mode == ForwardMode::at_least_once) {
                options.handler_thread = HandlerThread::receive_thread;
            }
            for (const auto& filter : config_.sources[i].filters) {
                routes.emplace_back(source->core().subscribe(filter, qos, handler, options));
            }
        }
    } catch (...) {
        routes.clear();
        {
            std::lock_guard queue_lock(queue_mutex_);
            stopping_ = true;
        }
        queue_changed_.notify_all();
        if (worker_.joinable()) worker_.join();
        throw;
    }
    routes_ = std::move(routes);
}

void ForwarderCore::stop() noexcept {
    std::lock_guard lock(mutex_);
    for (auto& route : routes_) route.stop();  // waits for running handlers
    routes_.clear();
    {
        std::lock_guard queue_lock(queue_mutex_);
        stopping_ = true;
    }
    queue_changed_.notify_all();
    if (worker_.joinable()) worker_.join();
    std::lock_guard queue_lock(queue_mutex_);
    queue_.clear();  // what sat in the decoupled queue is lost, as documented
}

bool ForwarderCore::running() const noexcept {
    std::lock_guard lock(mutex_);
    return !routes_.empty();
}

bool ForwarderCore::subscribed() const noexcept {
    // A route keeps the QoS its broker granted across a lost connection (a persistent
    // session may still have it); what counts here is now.
    for (const auto& source : sources_) {
        if (source->state() != SessionState::connected) return false;
    }
    std::lock_guard lock(mutex_);
    if (routes_.empty()) return false;
    for (const auto& route : routes_) {
        if (route.granted_qos() < 0) return false;
    }
    return true;
}

ForwarderMetrics ForwarderCore::metrics() const noexcept {
    using std::memory_order_relaxed;
    ForwarderMetrics m;
    m.received = received_.load(memory_order_relaxed);
    m.forwarded = forwarded_.load(memory_order_relaxed);
    m.acknowledged = acknowledged_.load(memory_order_relaxed);
    m.filtered = filtered_.load(memory_order_relaxed);
    m.transformed = transformed_.load(memory_order_relaxed);
    m.dropped = dropped_.load(memory_order_relaxed);
    m.dropped_hop_limit = dropped_hop_limit_.load(memory_order_relaxed);
    m.dropped_buffer_full = dropped_buffer_full_.load(memory_order_relaxed);
    m.dropped_transform = dropped_transform_.load(memory_order_relaxed);
    m.dropped_target = dropped_target_.load(memory_order_relaxed);
    m.errors = errors_.load(memory_order_relaxed);
    m.last_forward = time_from_ns(last_forward_ns_.load(memory_order_relaxed));
    m.latency = latency_.snapshot();
    m.running = running();
    m.subscribed = subscribed();
    {
        std::lock_guard queue_lock(queue_mutex_);
        m.queued = queue_.size();
    }
    return m;
}

void ForwarderCore::reset_metrics() noexcept {
    for (auto* counter : {&received_, &forwarded_, &acknowledged_, &filtered_, &transformed_,
                          &dropped_, &dropped_hop_limit_, &dropped_buffer_full_,
                          &dropped_transform_, &dropped_target_, &errors_}) {
        counter->store(0, std::memory_order_relaxed);
    }
    last_forward_ns_.store(0, std::memory_order_relaxed);
    latency_.reset();
}

void ForwarderCore::on_message(const Message& message) noexcept {
    try {
        received_.fetch_add(1, std::memory_order_relaxed);
        auto out = prepare(message);
        if (!out) return;
        if (config_.mode == ForwardMode::decoupled) {
            enqueue(std::move(*out));
        } else if (!publish(*out, deadline_after(config_.handoff_timeout))) {
            drop(DropReason::buffer_full, "target outbox full for longer than handoff_timeout");
        }
    } catch (const std::exception& e) {
        drop(DropReason::target, e.what());
    } catch (...) {
        drop(DropReason::target, "unknown failure");
    }
}

std::optional<ForwarderCore::Outgoing> ForwarderCore::prepare(const Message& message) {
    const int hops = hops_of(message);
    if (hops >= config_.max_hops) {
        drop(DropReason::hop_limit, "hop limit reached on '" + std::string(message.topic()) + "'");
        return std::nullopt;
    }
    bool pass = true;
    for (const auto& filter : config_.topic_filters)
        pass = pass && topic::matches(filter, message.topic());
    for (const auto& pattern : patterns_) {
        pass =
            pass && std::regex_search(message.payload().begin(), message.payload().end(), pattern);
    }
    try {
        for (const auto& predicate : config_.predicates) pass = pass && predicate(message);
    } catch (const std::exception& e) {
        drop(DropReason::transform, std::string("predicate failed: ") + e.what());
        return std::nullopt;
    } catch (...) {  // user code may throw anything
        drop(DropReason::transform, "predicate failed: threw a non-std::exception");
        return std::nullopt;
    }
    if (!pass) {
        filtered_.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
    }

    Outgoing out;
    out.received_at = message.received_at();
    std::string_view payload = message.payload();
    if (message.paho_message()) out.payload = message.paho_message()->get_payload_ref();
    if (!config_.transforms.empty()) {
        try {
            for (const auto& transform : config_.transforms) {
                out.payload = mqtt::binary_ref(transform(payload));
                payload = out.payload.str();
            }
        } catch (const std::exception& e) {
            drop(DropReason::transform, std::string("transform failed: ") + e.what());
            return std::nullopt;
        } catch (...) {
            drop(DropReason::transform, "transform failed: threw a non-std::exception");
            return std::nullopt;
        }
        transformed_.fetch_add(1, std::memory_order_relaxed);
    }

    std::string topic;
    bool mapped = false;
    for (const auto& mapping : mappings_) {
        if (mapping.apply(message.topic(), topic)) {
            mapped = true;
            break;
        }
    }
    if (!mapped) topic = std::string(message.topic());
    topic.insert(0, config_.prefix);
    if (auto problem = topic::check_topic_name(topic); !problem.empty()) {
        drop(DropReason::transform,
             "mapped topic '" + topic + "' is invalid: " + std::string(problem));
        return std::nullopt;
    }
    out.topic = mqtt::string_ref(std::move(topic));

    out.qos = config_.qos.value_or(message.qos());
    out.retained = config_.keep_retain && message.retained();
    if (target_v5_) {
        // The source's user properties travel on, with our metadata and the hop count.
        for (const auto& property : message.user_properties()) {
            if (property.first != hops_property) out.properties.user_properties.push_back(property);
        }
        for (const auto& entry : config_.metadata) out.properties.user_properties.push_back(entry);
        out.properties.user_properties.emplace_back(hops_property, std::to_string(hops + 1));
    } else if (config_.json_envelope) {
        out.payload = mqtt::binary_ref(envelope(payload, config_.metadata));
    }
    // A standalone message (no Paho message behind it) has its payload copied once.
    if (!out.payload) out.payload = mqtt::binary_ref(payload.data(), payload.size());
    return out;
}

bool ForwarderCore::publish(Outgoing& out, Clock::time_point deadline) {
    const auto received_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(out.received_at.time_since_epoch())
            .count();
    for (;;) {
        try {
            target_->core().publish_shared(out.topic, out.payload, out.qos, out.retained,
                                           out.properties.empty() ? nullptr : &out.properties,
                                           weak_from_this(), received_ns);
            forwarded_.fetch_add(1, std::memory_order_relaxed);
            last_forward_ns_.store(now_ns(), std::memory_order_relaxed);
            return true;
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::buffer_full) throw;
            if (Clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
}

void ForwarderCore::enqueue(Outgoing out) {
    std::unique_lock lock(queue_mutex_);
    if (queue_.size() >= config_.buffer_size) {
        switch (config_.overflow) {
            case Overflow::drop_newest:
                lock.unlock();
                drop(DropReason::buffer_full, "forwarder queue full (drop_newest)");
                return;
            case Overflow::drop_oldest:
                queue_.pop_front();
                lock.unlock();
                drop(DropReason::buffer_full, "forwarder queue full (drop_oldest)");
                lock.lock();
                break;
            case Overflow::block:
                if (!detail::wait_for(queue_changed_, lock, config_.handoff_timeout, [this] {
                        return queue_.size() < config_.buffer_size || stopping_;
                    })) {
                    lock.unlock();
                    drop(DropReason::buffer_full, "forwarder queue full (block timed out)");
                    return;
                }
                break;
        }
    }
    queue_.push_back(std::move(out));
    lock.unlock();
    queue_changed_.notify_all();
}

void ForwarderCore::run_worker() {
    name_this_thread("mqttx-forward");
    for (;;) {
        Outgoing out;
        {
            std::unique_lock lock(queue_mutex_);
            queue_changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            out = std::move(queue_.front());
            queue_.pop_front();
        }
        queue_changed_.notify_all();  // room for a blocked source
        try {
            // Only this forwarder waits for the target here: retry until it takes it.
            while (!publish(out, Clock::now() + std::chrono::milliseconds(100))) {
                std::lock_guard lock(queue_mutex_);
                if (stopping_) return;
            }
        } catch (const std::exception& e) {
            drop(DropReason::target, e.what());
        }
    }
}

void ForwarderCore::drop(DropReason reason, const std::string& why) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    switch (reason) {
        case DropReason::hop_limit:
            dropped_hop_limit_.fetch_add(1, std::memory_order_relaxed);
            return;  // a loop ended as designed: no error
        case DropReason::buffer_full:
            dropped_buffer_full_.fetch_add(1, std::memory_order_relaxed);
            break;
        case DropReason::transform:
            dropped_transform_.fetch_add(1, std::memory_order_relaxed);
            break;
        case DropReason::target:
            dropped_target_.fetch_add(1, std::memory_order_relaxed);
            break;
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    try {
        emit_(Event{EventType::error, target_->name(),
                    ErrorInfo{ErrorKind::publish, "forwarder '" + config_.name + "': " + why},
                    std::chrono::system_clock::now()});
    } catch (...) {
        // Counted above; an event that cannot be sent must not stop forwarding.
    }
}

void ForwarderCore::settled(const Error* error, std::int64_t tag) noexcept {
    if (error) {
        drop(DropReason::target, error->what());
        return;
    }
    acknowledged_.fetch_add(1, std::memory_order_relaxed);
    latency_.record(std::chrono::duration_cast<std::chrono::nanoseconds>(Message::Clock::now() -
                                                                         time_from_ns(tag)));
}

}  // namespace mqttx::detail
