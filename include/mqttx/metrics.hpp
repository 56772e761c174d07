// Metric snapshots: plain structs copied out of relaxed atomic counters.
// Field names follow the original Go library so its users find their way.
#pragma once

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
    std::chrono::system_clock::time_point last_message{};
    std::chrono::system_clock::time_point last_error{};
};

}  // namespace mqttx
