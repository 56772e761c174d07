// The live counters behind SessionMetrics: relaxed atomics, with what the sending
// threads touch and what Paho's receive thread touches on separate cache lines.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "latency_recorder.hpp"
#include "mqttx/metrics.hpp"
#include "rate_window.hpp"

namespace mqttx::detail {

inline std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The time a now_ns() value stands for (the epoch for 0: "never").
inline std::chrono::system_clock::time_point time_from_ns(std::int64_t ns) noexcept {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(ns)));
}

struct SessionStats {
    alignas(64) std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> bytes_sent{0};
    std::atomic<std::int64_t> last_sent_ns{0};

    alignas(64) std::atomic<std::uint64_t> messages_received{0};
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::int64_t> last_message_ns{0};

    alignas(64) std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> offline_dropped{0};
    std::atomic<std::uint64_t> unrouted{0};  // arrived with no route to take them
    std::atomic<std::uint64_t> invalid_received{0};
    std::atomic<std::uint64_t> poison_publishes{0};
    std::atomic<std::uint64_t> window_stalls{0};
    std::atomic<bool> window_stalled{false};
    std::atomic<std::int64_t> last_error_ns{0};

    alignas(64) LatencyRecorder publish_latency;     // Paho's send and receive threads
    std::atomic<std::int64_t> started_ns{now_ns()};  // added, or last reset
    RateWindow rates{SessionMetrics::rate_window, RateWindow::Clock::now()};

    std::uint64_t messages() const noexcept {
        return messages_sent.load(std::memory_order_relaxed) +
               messages_received.load(std::memory_order_relaxed);
    }
    std::uint64_t bytes() const noexcept {
        return bytes_sent.load(std::memory_order_relaxed) +
               bytes_received.load(std::memory_order_relaxed);
    }
    void sample_rates() { rates.sample(RateWindow::Clock::now(), messages(), bytes()); }

    void count_error() noexcept {
        errors.fetch_add(1, std::memory_order_relaxed);
        last_error_ns.store(now_ns(), std::memory_order_relaxed);
    }

    SessionMetrics snapshot() const noexcept {
        using std::memory_order_relaxed;
        SessionMetrics m;
        m.messages_sent = messages_sent.load(memory_order_relaxed);
        m.messages_received = messages_received.load(memory_order_relaxed);
        m.bytes_sent = bytes_sent.load(memory_order_relaxed);
        m.bytes_received = bytes_received.load(memory_order_relaxed);
        m.errors = errors.load(memory_order_relaxed);
        m.reconnects = reconnects.load(memory_order_relaxed);
        m.dropped = dropped.load(memory_order_relaxed);
        m.offline_dropped = offline_dropped.load(memory_order_relaxed);
        m.unrouted = unrouted.load(memory_order_relaxed);
        m.invalid_received = invalid_received.load(memory_order_relaxed);
        m.poison_publishes = poison_publishes.load(memory_order_relaxed);
        m.window_stalls = window_stalls.load(memory_order_relaxed);
        m.window_stalled = window_stalled.load(memory_order_relaxed);
        m.last_message = time_from_ns(std::max(last_message_ns.load(memory_order_relaxed),
                                               last_sent_ns.load(memory_order_relaxed)));
        m.last_error = time_from_ns(last_error_ns.load(memory_order_relaxed));
        m.started = time_from_ns(started_ns.load(memory_order_relaxed));
        m.publish_latency = publish_latency.snapshot();
        const auto now = RateWindow::Clock::now();
        const auto window = rates.rates(now, m.messages_sent + m.messages_received,
                                        m.bytes_sent + m.bytes_received);
        m.message_rate = window.messages_per_second;
        m.bytes_rate = window.bytes_per_second;
        const double alive =
            std::chrono::duration<double>(
                std::chrono::nanoseconds(now_ns() - started_ns.load(memory_order_relaxed)))
                .count();
        if (alive > 0.0) {
            m.average_message_rate =
                static_cast<double>(m.messages_sent + m.messages_received) / alive;
        }
        return m;
    }

    // Counters back to zero (gauges such as the outbox depth are not counters). Counts
    // made while it runs may be lost; that is the nature of a reset.
    void reset() noexcept {
        for (auto* counter : {&messages_sent, &bytes_sent, &messages_received, &bytes_received,
                              &errors, &reconnects, &dropped, &offline_dropped, &unrouted,
                              &invalid_received, &poison_publishes, &window_stalls}) {
            counter->store(0, std::memory_order_relaxed);
        }
        last_message_ns.store(0, std::memory_order_relaxed);
        last_sent_ns.store(0, std::memory_order_relaxed);
        last_error_ns.store(0, std::memory_order_relaxed);
        publish_latency.reset();
        rates.reset(RateWindow::Clock::now());
        started_ns.store(now_ns(), std::memory_order_relaxed);
    }
};

}  // namespace mqttx::detail
