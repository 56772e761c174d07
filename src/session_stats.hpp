// The live counters behind SessionMetrics: relaxed atomics, with what the sending
// threads touch and what Paho's receive thread touches on separate cache lines.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "mqttx/metrics.hpp"

namespace mqttx::detail {

inline std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct SessionStats {
    alignas(64) std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> bytes_sent{0};

    alignas(64) std::atomic<std::uint64_t> messages_received{0};
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::int64_t> last_message_ns{0};

    alignas(64) std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> offline_dropped{0};
    std::atomic<std::uint64_t> unrouted{0};  // arrived with no route to take them
    std::atomic<std::int64_t> last_error_ns{0};

    void count_error() noexcept {
        errors.fetch_add(1, std::memory_order_relaxed);
        last_error_ns.store(now_ns(), std::memory_order_relaxed);
    }

    SessionMetrics snapshot() const noexcept {
        using std::memory_order_relaxed;
        auto time = [](std::int64_t ns) {
            return std::chrono::system_clock::time_point(
                std::chrono::duration_cast<std::chrono::system_clock::duration>(
                    std::chrono::nanoseconds(ns)));
        };
        SessionMetrics m;
        m.messages_sent = messages_sent.load(memory_order_relaxed);
        m.messages_received = messages_received.load(memory_order_relaxed);
        m.bytes_sent = bytes_sent.load(memory_order_relaxed);
        m.bytes_received = bytes_received.load(memory_order_relaxed);
        m.errors = errors.load(memory_order_relaxed);
        m.reconnects = reconnects.load(memory_order_relaxed);
        m.dropped = dropped.load(memory_order_relaxed);
        m.offline_dropped = offline_dropped.load(memory_order_relaxed);
        m.last_message = time(last_message_ns.load(memory_order_relaxed));
        m.last_error = time(last_error_ns.load(memory_order_relaxed));
        return m;
    }
};

}  // namespace mqttx::detail
