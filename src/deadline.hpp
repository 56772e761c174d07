// Deadlines that saturate. steady_clock counts nanoseconds in 64 bits, so now() plus a
// user's timeout overflows from about 292 years on (milliseconds::max() among them)
// and lands in the past: the wait would end at once. Every wait on a timeout the user
// gave goes through these.
#pragma once

#include <chrono>
#include <condition_variable>

namespace mqttx::detail {

using SteadyClock = std::chrono::steady_clock;

// now + timeout, or time_point::max() when that is beyond what the clock can hold.
// A negative timeout is now.
template <class Rep, class Period>
SteadyClock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout,
                                       SteadyClock::time_point now = SteadyClock::now()) noexcept {
    using Timeout = std::chrono::duration<Rep, Period>;
    if (timeout <= Timeout::zero()) return now;
    // Compared in the caller's unit, which is coarser: converting the timeout to
    // nanoseconds is what overflows.
    const auto room = std::chrono::duration_cast<Timeout>(SteadyClock::time_point::max() - now);
    if (timeout >= room) return SteadyClock::time_point::max();
    return now + std::chrono::duration_cast<SteadyClock::duration>(timeout);
}

// Waits until `done()` or the deadline and returns done(). At a saturated deadline
// it waits without limit: no clock arithmetic at all.
template <class Lock, class Predicate>
bool wait_until(std::condition_variable& cv, Lock& lock, SteadyClock::time_point deadline,
                Predicate done) {
    if (deadline == SteadyClock::time_point::max()) {
        cv.wait(lock, done);
        return true;
    }
    return cv.wait_until(lock, deadline, done);
}

// std::condition_variable::wait_for, but a timeout too long for the clock waits
// without limit instead of not at all.
template <class Lock, class Rep, class Period, class Predicate>
bool wait_for(std::condition_variable& cv, Lock& lock, std::chrono::duration<Rep, Period> timeout,
              Predicate done) {
    return wait_until(cv, lock, deadline_after(timeout), done);
}

}  // namespace mqttx::detail
