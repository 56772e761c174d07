// RateWindow: messages and bytes per second over a sliding window, from samples of a
// session's running totals taken about once a second by the manager's ticker, so the
// message path pays nothing for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>

namespace mqttx::detail {

class RateWindow {
  public:
    using Clock = std::chrono::steady_clock;

    struct Rates {
        double messages_per_second = 0.0;
        double bytes_per_second = 0.0;
    };

    RateWindow(std::chrono::seconds window, Clock::time_point start) : window_(window) {
        samples_.push_back({start, 0, 0});
    }

    void sample(Clock::time_point now, std::uint64_t messages, std::uint64_t bytes) {
        std::lock_guard lock(mutex_);
        samples_.push_back({now, messages, bytes});
        while (samples_.size() > 1 && samples_.front().at < now - window_) samples_.pop_front();
    }

    // The rates from the oldest sample inside the window to `now`; when no sample is
    // inside (the ticker has not run for a while), from the newest one.
    Rates rates(Clock::time_point now, std::uint64_t messages, std::uint64_t bytes) const {
        std::lock_guard lock(mutex_);
        const Sample* base = &samples_.back();
        for (const auto& s : samples_) {
            if (s.at >= now - window_ && s.at < now) {
                base = &s;
                break;
            }
        }
        const double seconds = std::chrono::duration<double>(now - base->at).count();
        if (seconds <= 0.0) return {};
        // A reset may leave totals below the baseline: count from zero then.
        const auto delta = [](std::uint64_t now_total, std::uint64_t then) {
            return static_cast<double>(now_total >= then ? now_total - then : now_total);
        };
        return {delta(messages, base->messages) / seconds, delta(bytes, base->bytes) / seconds};
    }

    void reset(Clock::time_point now) {
        std::lock_guard lock(mutex_);
        samples_.clear();
        samples_.push_back({now, 0, 0});
    }

  private:
    struct Sample {
        Clock::time_point at;
        std::uint64_t messages;
        std::uint64_t bytes;
    };
    const std::chrono::seconds window_;
    mutable std::mutex mutex_;
    std::deque<Sample> samples_;  // oldest first
};

}  // namespace mqttx::detail
