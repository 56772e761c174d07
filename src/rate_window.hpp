// RateWindow: messages and bytes per second over a sliding window, from samples of a
// session's running totals taken about once a second by the manager's ticker, so the
// message path pays nothing for it. The samples sit in a small ring inside the object:
// a session holds one, and 10,000 sessions should not each hold a deque's first block.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
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
        push({start, 0, 0});
    }

    // Sampled faster than the ring holds a window's worth, the oldest samples go first:
    // the rates then cover a shorter span, and stay right.
    void sample(Clock::time_point now, std::uint64_t messages, std::uint64_t bytes) {
        std::lock_guard lock(mutex_);
        push({now, messages, bytes});
        while (count_ > 1 && at(0).at < now - window_) drop_oldest();
    }

    // The rates from the oldest sample inside the window to `now`; when no sample is
    // inside (the ticker has not run for a while), from the newest one.
    Rates rates(Clock::time_point now, std::uint64_t messages, std::uint64_t bytes) const {
        std::lock_guard lock(mutex_);
        const Sample* base = &at(count_ - 1);
        for (std::size_t i = 0; i < count_; ++i) {
            if (at(i).at >= now - window_ && at(i).at < now) {
                base = &at(i);
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
        count_ = 0;
        push({now, 0, 0});
    }

  private:
    struct Sample {
        Clock::time_point at;
        std::uint64_t messages;
        std::uint64_t bytes;
    };
    static constexpr std::size_t capacity = 16;  // a 10 s window sampled each second fits

    const Sample& at(std::size_t i) const { return samples_[(first_ + i) % capacity]; }
    void drop_oldest() {
        first_ = (first_ + 1) % capacity;
        --count_;
    }
    void push(const Sample& s) {
        if (count_ == capacity) drop_oldest();
        samples_[(first_ + count_) % capacity] = s;
        ++count_;
    }

    const std::chrono::seconds window_;
    mutable std::mutex mutex_;
    std::array<Sample, capacity> samples_{};  // a ring: at(0) is the oldest
    std::size_t first_ = 0;
    std::size_t count_ = 0;
};

}  // namespace mqttx::detail
