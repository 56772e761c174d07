// RateWindow: messages and bytes per second over a sliding window, from samples of a
// session's running totals taken about once a second by the manager's ticker, so the
// message path pays nothing for it. Samples with unchanged totals extend one run, and the
// ring of runs is made only when the totals first move: 10,000 idle sessions hold none.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
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
        push({start, start, 0, 0});
    }

    // Sampled faster than the ring holds a window's worth, the oldest samples go first:
    // the rates then cover a shorter span, and stay right.
    void sample(Clock::time_point now, std::uint64_t messages, std::uint64_t bytes) {
        std::lock_guard lock(mutex_);
        if (count_ > 0 && at(count_ - 1).messages == messages && at(count_ - 1).bytes == bytes) {
            at(count_ - 1).last = now;
        } else {
            push({now, now, messages, bytes});
        }
        while (count_ > 1 && at(0).last < now - window_) drop_oldest();
    }

    // The rates from the start of the window (or the oldest run inside it) to `now`;
    // when no run reaches into the window (the ticker has not run for a while), from the
    // end of the newest one.
    Rates rates(Clock::time_point now, std::uint64_t messages, std::uint64_t bytes) const {
        std::lock_guard lock(mutex_);
        const Run* base = &at(count_ - 1);
        Clock::time_point since = base->last;
        for (std::size_t i = 0; i < count_; ++i) {
            // The totals did not move during a run, so they were the run's at any time
            // inside it, also where the window starts.
            const auto from = std::max(at(i).first, now - window_);
            if (at(i).last >= now - window_ && from < now) {
                base = &at(i);
                since = from;
                break;
            }
        }
        const double seconds = std::chrono::duration<double>(now - since).count();
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
        push({now, now, 0, 0});
    }

  private:
    // Samples taken while the totals stood still, as one entry: an idle session has one.
    struct Run {
        Clock::time_point first;
        Clock::time_point last;
        std::uint64_t messages;
        std::uint64_t bytes;
    };
    static constexpr std::size_t capacity = 16;  // a 10 s window sampled each second fits

    // The ring is made when a second run begins; until then the one run lives in `only_`.
    Run& at(std::size_t i) { return ring_ ? (*ring_)[(first_ + i) % capacity] : only_; }
    const Run& at(std::size_t i) const { return ring_ ? (*ring_)[(first_ + i) % capacity] : only_; }
    void drop_oldest() {
        first_ = (first_ + 1) % capacity;
        --count_;
    }
    void push(const Run& run) {
        if (!ring_ && count_ > 0) {
            ring_ = std::make_unique<std::array<Run, capacity>>();
            (*ring_)[0] = only_;
            first_ = 0;
        }
        if (count_ == capacity) drop_oldest();
        ++count_;
        at(count_ - 1) = run;
    }

    const std::chrono::seconds window_;
    mutable std::mutex mutex_;
    Run only_{};
    std::unique_ptr<std::array<Run, capacity>> ring_;  // at(0) is the oldest
    std::size_t first_ = 0;
    std::size_t count_ = 0;
};

}  // namespace mqttx::detail
