// Scheduler: one thread running timed tasks (connect attempts, backoff timers,
// post-connect work), so Paho's callbacks can hand work off and return at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "deadline.hpp"

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
        return post_at(deadline_after(delay), std::move(task));
    }
    bool post_at(Clock::time_point when, Task task);

    // Drops pending tasks, waits for a running one and joins. Called from a task (the
    // scheduler's own thread), it returns at once and the thread ends after that task.
    void stop() noexcept;
    bool on_scheduler_thread() const noexcept { return std::this_thread::get_id() == thread_id_; }

  private:
    struct Item {
        Clock::time_point when;
        std::uint64_t sequence;  // keeps FIFO order among tasks due at the same time
        Task task;
        bool operator>(const Item& other) const {
            return when != other.when ? when > other.when : sequence > other.sequence;
        }
    };
    // Shared with the thread, so a thread detached by a stop() from inside a task
    // never touches a destroyed Scheduler.
    struct State {
        std::mutex mutex;
        std::condition_variable wake;
        std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
        std::uint64_t sequence = 0;
        bool stopping = false;
    };
    static void run(State& state);

    const std::shared_ptr<State> state_;
    std::mutex stop_mutex_;
    std::thread thread_;
    std::thread::id thread_id_;
};

}  // namespace mqttx::detail
