#include "scheduler.hpp"

#include "thread_name.hpp"

namespace mqttx::detail {

Scheduler::Scheduler()
    : state_(std::make_shared<State>()), thread_([state = state_] { run(*state); }) {
    thread_id_ = thread_.get_id();
}

Scheduler::~Scheduler() {
    stop();
}

bool Scheduler::post_at(Clock::time_point when, Task task) {
    std::lock_guard lock(state_->mutex);
    if (state_->stopping) return false;
    state_->queue.push({when, state_->sequence++, std::move(task)});
    // Notified under the lock: a task that destroys this scheduler could otherwise
    // free the condition variable before notify_one() touches it.
    state_->wake.notify_one();
    return true;
}

void Scheduler::stop() noexcept {
    decltype(State::queue) dropped;  // destroyed outside the lock
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
        dropped.swap(state_->queue);
    }
    state_->wake.notify_all();
    std::lock_guard lock(stop_mutex_);
    if (!thread_.joinable()) return;
    if (on_scheduler_thread()) {
        thread_.detach();
    } else {
        thread_.join();
    }
}

void Scheduler::run(State& state) {
    name_this_thread("mqttx-scheduler");
    std::unique_lock lock(state.mutex);
    while (!state.stopping) {
        if (state.queue.empty()) {
            state.wake.wait(lock);
            continue;
        }
        const auto when = state.queue.top().when;
        if (when == Clock::time_point::max()) {  // a saturated delay: never due
            state.wake.wait(lock);
            continue;
        }
        if (Clock::now() < when) {
            state.wake.wait_until(lock, when);
            continue;
        }
        // priority_queue::top() is const; the task is moved out before pop().
        Task task = std::move(const_cast<Item&>(state.queue.top()).task);
        state.queue.pop();
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
