// Small synchronisation helpers for tests that must wait on a condition with a
// generous deadline, never on a fixed sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace mqttx::test {

using namespace std::chrono_literals;

inline constexpr std::chrono::steady_clock::duration default_deadline = 20s;

// A one-shot signal: open() releases every wait(), now and later.
class Gate {
  public:
    // Notifies under the lock: once a waiter sees the gate open, open() no longer touches
    // it, so the waiter may destroy the gate at once.
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        cv_.notify_all();
    }
    // True when opened before the deadline.
    bool wait(std::chrono::steady_clock::duration deadline = default_deadline) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, deadline, [this] { return open_; });
    }
    bool is_open() {
        std::lock_guard lock(mutex_);
        return open_;
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

// A test's background thread, told to stop and joined however the test ends (a failed
// ASSERT returns early; a joinable std::thread would then end the whole binary).
struct Background {
    std::atomic<bool> running{true};
    std::thread thread;
    ~Background() { stop(); }
    void stop() {
        running = false;
        if (thread.joinable()) thread.join();
    }
};

// Spins (yielding) until `done` holds or the deadline passes; returns its last value.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::steady_clock::duration deadline = default_deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return done();
        std::this_thread::yield();
    }
    return true;
}

}  // namespace mqttx::test
