#include "scheduler.hpp"

namespace mqttx::detail {

Scheduler::Scheduler() : thread_([this] { run(); }) {}

Scheduler::~Scheduler() {
    stop();
}

bool Scheduler::post_at(Clock::time_point when, Task task) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        queue_.push({when, sequence_++, std::move(task)});
    }
    wake_.notify_one();
    return true;
}

void Scheduler::stop() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        queue_ = {};
    }
    wake_.notify_all();
    if (!thread_.joinable()) return;
    if (on_scheduler_thread()) {
        thread_.detach();
    } else {
        thread_.join();
    }
}

void Scheduler::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (queue_.empty()) {
            wake_.wait(lock);
            continue;
        }
        const auto when = queue_.top().when;
        if (Clock::now() < when) {
            wake_.wait_until(lock, when);
            continue;
        }
        // priority_queue::top() is const; the task is moved out before pop().
        Task task = std::move(const_cast<Item&>(queue_.top()).task);
        queue_.pop();
        lock.unlock();
        try {
            task();
        } catch (...) {
            // Tasks log their own failures; nothing may end this thread.
        }
        task = nullptr;  // release captured state outside the lock
        lock.lock();
    }
}

}  // namespace mqttx::detail
