// LatencyRecorder: the live counters behind a LatencyHistogram (relaxed atomics, no lock).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "mqttx/metrics.hpp"

namespace mqttx::detail {

class LatencyRecorder {
  public:
    void record(std::chrono::nanoseconds latency) noexcept {
        const double seconds = std::chrono::duration<double>(latency).count();
        const auto& bounds = LatencyHistogram::bounds_seconds;
        std::size_t i = 0;
        while (i < bounds.size() && seconds > bounds[i]) ++i;
        if (i < bounds.size()) buckets_[i].fetch_add(1, std::memory_order_relaxed);
        count_.fetch_add(1, std::memory_order_relaxed);
        sum_ns_.fetch_add(static_cast<std::uint64_t>(latency.count() < 0 ? 0 : latency.count()),
                          std::memory_order_relaxed);
    }

    LatencyHistogram snapshot() const noexcept {
        LatencyHistogram h;
        std::uint64_t running = 0;
        for (std::size_t i = 0; i < h.buckets.size(); ++i) {
            running += buckets_[i].load(std::memory_order_relaxed);
            h.buckets[i] = running;
        }
        // A record() between the loads above and this one may have counted a bucket but
        // not yet the total: never let +Inf fall below the last bucket.
        h.count = std::max(count_.load(std::memory_order_relaxed), running);
        h.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
        return h;
    }

    void reset() noexcept {
        for (auto& bucket : buckets_) bucket.store(0, std::memory_order_relaxed);
        count_.store(0, std::memory_order_relaxed);
        sum_ns_.store(0, std::memory_order_relaxed);
    }

  private:
    // Per bucket, not cumulative; the +Inf bucket is count_.
    std::atomic<std::uint64_t> buckets_[LatencyHistogram::bounds_seconds.size()]{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace mqttx::detail
