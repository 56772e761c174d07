// ForwarderCore: one running forwarder. A source message goes through on_message():
// hop check, filters, transforms, topic mapping, metadata; then to the target session,
// either at once on the source's receive thread (at-least-once) or through a bounded
// queue and a worker thread (decoupled).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "delivery.hpp"
#include "latency_recorder.hpp"
#include "mqttx/events.hpp"
#include "mqttx/forwarder.hpp"
#include "mqttx/route.hpp"
#include "mqttx/session.hpp"
#include "topic_template.hpp"

namespace mqttx::detail {

class ForwarderCore : public DeliveryObserver, public std::enable_shared_from_this<ForwarderCore> {
  public:
    using Emit = std::function<void(Event)>;
    // The name of the hop-count user property.
    static constexpr const char* hops_property = "mqttx-hops";

    // `config` must have passed validate(); the sessions must exist.
    ForwarderCore(ForwarderConfig config, std::vector<std::shared_ptr<Session>> sources,
                  std::shared_ptr<Session> target, Emit emit);
    ~ForwarderCore();

    const ForwarderConfig& config() const noexcept { return config_; }
    void start();
    void stop() noexcept;
    bool running() const noexcept;
    bool subscribed() const noexcept;
    ForwarderMetrics metrics() const noexcept;
    void reset_metrics() noexcept;
    bool uses(std::string_view session) const noexcept;
    // The target's outcome of a forwarded message; `tag` is its arrival at the source
    // (nanoseconds of Message::Clock), for the latency.
    void settled(const Error* error, std::int64_t tag) noexcept override;

  private:
    // Topic and payload are shared, not copied: the received payload goes out as it is
    // unless a transform or the JSON envelope replaces it.
    struct Outgoing {
        mqtt::string_ref topic;
        mqtt::binary_ref payload;
        int qos = 0;
        bool retained = false;
        PublishProperties properties;
        Message::Clock::time_point received_at;
    };
    enum class DropReason { hop_limit, transform, buffer_full, target };

    void on_message(const Message& message) noexcept;
    // Filters, transforms, maps; empty when the message is not to be forwarded.
    std::optional<Outgoing> prepare(const Message& message);
    // Publishes on the target, retrying a full outbox until `deadline`; true when accepted.
    bool publish(Outgoing& out, std::chrono::steady_clock::time_point deadline);
    void enqueue(Outgoing out);
    void run_worker();
    void drop(DropReason reason, const std::string& why);

    const ForwarderConfig config_;
    const std::vector<std::shared_ptr<Session>> sources_;
    const std::shared_ptr<Session> target_;
    const Emit emit_;
    const bool target_v5_;
    std::vector<TopicTemplate> mappings_;
    std::vector<std::regex> patterns_;

    mutable std::mutex mutex_;  // routes_ and the worker's life
    std::vector<Route> routes_;
    std::thread worker_;

    mutable std::mutex queue_mutex_;
    std::condition_variable queue_changed_;
    std::deque<Outgoing> queue_;
    bool stopping_ = false;

    std::atomic<std::uint64_t> received_{0}, forwarded_{0}, acknowledged_{0}, filtered_{0},
        transformed_{0}, dropped_{0}, dropped_hop_limit_{0}, dropped_buffer_full_{0},
        dropped_transform_{0}, dropped_target_{0}, errors_{0};
    std::atomic<std::int64_t> last_forward_ns_{0};
    LatencyRecorder latency_;
};

}  // namespace mqttx::detail
