// Metric snapshots: plain structs copied out of relaxed atomic counters.
// Field names follow the original Go library so its users find their way.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "mqttx/session_state.hpp"

namespace mqttx {

// A latency distribution with Prometheus-style cumulative buckets.
struct LatencyHistogram {
    static constexpr std::array<double, 12> bounds_seconds{
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};
    std::array<std::uint64_t, bounds_seconds.size()> buckets{};  // observations <= each bound
    std::uint64_t count = 0;                                     // all observations
    double sum_seconds = 0.0;
};

struct SessionMetrics {
    std::uint64_t messages_sent = 0;      // publishes accepted by publish()
    std::uint64_t messages_received = 0;  // messages that arrived from the broker
    std::uint64_t bytes_sent = 0;         // payload bytes
    std::uint64_t bytes_received = 0;     // payload bytes
    std::uint64_t errors = 0;             // failed operations and handler exceptions
    std::uint64_t reconnects = 0;         // successful connects after the first
    std::uint64_t dropped = 0;            // received messages dropped by a full queue
    std::uint64_t offline_dropped = 0;    // publishes dropped from the offline buffer (drop_oldest)
    std::uint64_t unrouted = 0;           // received messages no route wanted
    // Received messages dropped before routing: their topic breaks the MQTT rules (a
    // broken or hostile server sent them).
    std::uint64_t invalid_received = 0;
    // QoS 1/2 publishes given up: in flight each time the broker closed the connection,
    // max_publish_attempts times in a row (a message the broker refuses to take).
    std::uint64_t poison_publishes = 0;
    // Stalls reported: the oldest in-flight message waited in_flight_stall_after.
    std::uint64_t window_stalls = 0;
    bool window_stalled = false;  // now
    std::uint64_t active_subscriptions = 0;
    std::uint64_t outbox_waiting = 0;  // accepted, not yet handed to Paho (the offline buffer)
    std::uint64_t outbox_spilled = 0;  // of them, kept in storage only (persistent sessions)
    std::uint64_t outbox_waiting_bytes = 0;  // their topics and payloads
    std::uint64_t in_flight = 0;             // handed to Paho, not yet confirmed
    SessionState state = SessionState::disconnected;
    bool connected = false;
    // Messages (sent and received) and their payload bytes per second over the last
    // rate_window, and messages per second since `started`.
    static constexpr std::chrono::seconds rate_window{10};
    double message_rate = 0.0;
    double bytes_rate = 0.0;
    double average_message_rate = 0.0;
    std::chrono::system_clock::time_point started{};       // when added, or last reset
    std::chrono::system_clock::time_point last_message{};  // sent or received; epoch if none
    std::chrono::system_clock::time_point last_error{};    // epoch if none
    // QoS 1/2 publishes: from publish() to the broker's acknowledgement (PUBACK, PUBCOMP).
    LatencyHistogram publish_latency;
};

// Totals over a manager's sessions (sums of their counters, removed sessions' included,
// so they never go down) and how many sessions are in which state.
struct ManagerMetrics {
    std::uint64_t sessions = 0;
    std::uint64_t sessions_connected = 0;
    std::uint64_t sessions_connecting = 0;
    std::uint64_t sessions_reconnecting = 0;
    std::uint64_t sessions_disconnected = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_received = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t errors = 0;
    std::uint64_t reconnects = 0;
    std::uint64_t dropped = 0;
    std::uint64_t offline_dropped = 0;
    std::uint64_t invalid_received = 0;
    std::uint64_t poison_publishes = 0;
    std::uint64_t window_stalls = 0;
    std::uint64_t sessions_stalled = 0;  // whose window is stalled now
    std::uint64_t active_subscriptions = 0;
    std::uint64_t forwarders = 0;
    double message_rate = 0.0;  // the sum of the sessions' message_rate
};

struct ForwarderMetrics {
    bool running = false;            // started and not stopped
    bool subscribed = false;         // running, every source subscription acknowledged now
    std::uint64_t queued = 0;        // decoupled: waiting in the queue for the target
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
