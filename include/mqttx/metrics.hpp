// Metric snapshots: plain structs copied out of relaxed atomic counters.
// Field names follow the original Go library so its users find their way.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace mqttx {

struct SessionMetrics {
    std::uint64_t messages_sent = 0;      // publishes accepted by Paho
    std::uint64_t messages_received = 0;  // messages that arrived from the broker
    std::uint64_t bytes_sent = 0;         // payload bytes
    std::uint64_t bytes_received = 0;     // payload bytes
    std::uint64_t errors = 0;             // failed operations and handler exceptions
    std::uint64_t reconnects = 0;         // successful connects after the first
    std::uint64_t dropped = 0;            // messages dropped by a full queue
    std::uint64_t offline_dropped = 0;    // publishes dropped from the offline buffer (drop_oldest)
    std::uint64_t active_subscriptions = 0;
    std::uint64_t outbox_waiting = 0;  // accepted, not yet handed to Paho (the offline buffer)
    std::uint64_t in_flight = 0;       // handed to Paho, not yet confirmed
    std::chrono::system_clock::time_point last_message{};
    std::chrono::system_clock::time_point last_error{};
};

// A latency distribution with Prometheus-style cumulative buckets.
struct LatencyHistogram {
    static constexpr std::array<double, 12> bounds_seconds{
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};
    std::array<std::uint64_t, bounds_seconds.size()> buckets{};  // observations <= each bound
    std::uint64_t count = 0;                                     // all observations
    double sum_seconds = 0.0;
};

struct ForwarderMetrics {
    std::uint64_t received = 0;      // source messages that reached the forwarder
    std::uint64_t forwarded = 0;     // accepted by the target session
    std::uint64_t acknowledged = 0;  // confirmed by the target broker (QoS 0: written)
    std::uint64_t filtered = 0;      // stopped by a filter
    std::uint64_t transformed = 0;   // payloads changed by the transforms
    std::uint64_t dropped = 0;       // all drops; by reason below
    std::uint64_t dropped_hop_limit = 0;
    std::uint64_t dropped_buffer_full = 0;
    std::uint64_t dropped_transform = 0;  // a transform threw or a mapped topic was invalid
    std::uint64_t dropped_target = 0;     // the target refused or failed the publish
    std::uint64_t errors = 0;
    std::chrono::system_clock::time_point last_forward{};
    // From the source message's arrival to the target broker's acknowledgement.
    LatencyHistogram latency;
};

}  // namespace mqttx
