// Scheduler: one thread running timed tasks (connect attempts, backoff timers,
// post-connect work), so Paho's callbacks can hand work off and return at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace mqttx::detail {

class Scheduler {
  public:
    using Clock = std::chrono::steady_clock;
    using Task = std::function<void()>;

    Scheduler();
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // False once stopped (the task is dropped).
    bool post(Task task) { return post_at(Clock::now(), std::move(task)); }
    bool post_after(std::chrono::milliseconds delay, Task task) {
        return post_at(Clock::now() + delay, std::move(task));
    }
    bool post_at(Clock::time_point when, Task task);

    // Drops pending tasks, waits for a running one, joins (unless called from the
    // scheduler thread itself, which then exits after its current task).
    void stop() noexcept;
    bool on_scheduler_thread() const noexcept {
        return std::this_thread::get_id() == thread_.get_id();
    }

  private:
    struct Item {
        Clock::time_point when;
        std::uint64_t sequence;  // keeps FIFO order among tasks due at the same time
        Task task;
        bool operator>(const Item& other) const {
            return when != other.when ? when > other.when : sequence > other.sequence;
        }
    };
    void run();

    std::mutex mutex_;
    std::condition_variable wake_;
    std::priority_queue<Item, std::vector<Item>, std::greater<>> queue_;
    std::uint64_t sequence_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace mqttx::detail
