#include "dispatcher.hpp"

#include <algorithm>
#include <utility>

#include "deadline.hpp"
#include "router.hpp"
#include "thread_name.hpp"

namespace mqttx::detail {

Dispatcher::Dispatcher(std::size_t threads, std::size_t queue_capacity) {
    if (threads == 0) threads = 1;
    if (queue_capacity == 0) queue_capacity = 1;
    workers_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        auto worker = std::make_shared<Worker>();
        worker->capacity = queue_capacity;
        worker->ring.resize(std::min(queue_capacity, initial_ring));
        worker->spent.reserve(spent_limit);
        workers_.push_back(std::move(worker));
    }
    for (auto& worker : workers_) {
        worker->thread = std::thread([worker] { run(*worker); });
        worker->thread_id = worker->thread.get_id();
    }
}

Dispatcher::~Dispatcher() {
    stop();
}

bool Dispatcher::post(std::size_t worker, std::shared_ptr<Router> router, Message message,
                      std::chrono::milliseconds block_for) {
    return push(workers_[worker % workers_.size()],
                Task{std::move(router), std::move(message), nullptr}, block_for);
}

bool Dispatcher::post(std::size_t worker, std::function<void()> task,
                      std::chrono::milliseconds block_for) {
    return push(workers_[worker % workers_.size()], Task{nullptr, Message{}, std::move(task)},
                block_for);
}

bool Dispatcher::push(std::shared_ptr<Worker> keep, Task&& task,
                      std::chrono::milliseconds block_for) {
    Worker& worker = *keep;
    std::unique_lock lock(worker.mutex);
    if (worker.size == worker.ring.size() && worker.size < worker.capacity) grow(worker);
    const auto capacity = worker.ring.size();
    if (worker.size == capacity) {
        // A handler running on this very worker must never wait for itself.
        if (std::this_thread::get_id() == worker.thread_id) return false;
        ++worker.blocked;
        const bool room = detail::wait_for(worker.not_full, lock, block_for, [&] {
            return worker.size < capacity || worker.stopping;
        });
        --worker.blocked;
        if (!room) return false;
    }
    if (worker.stopping) return false;
    worker.ring[(worker.head + worker.size) % capacity] = std::move(task);
    ++worker.size;
    worker.spent.clear();
    if (!worker.sleeping) return true;
    worker.sleeping = false;  // one notification per sleep is enough
    lock.unlock();
    // Outside the lock, so the worker does not wake into a held mutex. `keep` holds the
    // Worker: the task may already have run and destroyed the Dispatcher.
    worker.not_empty.post();
    return true;
}

void Dispatcher::grow(Worker& worker) {
    std::vector<Task> larger(std::min(worker.capacity, worker.ring.size() * 2));
    for (std::size_t i = 0; i < worker.size; ++i) {
        larger[i] = std::move(worker.ring[(worker.head + i) % worker.ring.size()]);
    }
    worker.ring = std::move(larger);
    worker.head = 0;
}

void Dispatcher::run(Worker& worker) {
    name_this_thread("mqttx-dispatch");
    std::unique_lock lock(worker.mutex);
    bool streaming = false;
    for (;;) {
        // While messages stream in (the last sleep was short), yield a few times before
        // sleeping: on a busy machine the thread that pushes next (Paho's receive
        // thread) often needs this CPU only for a moment, and each sleep costs a futex
        // wait, a wake-up and two context switches (S5 fan-out: a quarter fewer context
        // switches). Not after a long sleep: a push that comes while the worker waits
        // for its turn after a yield does not wake it, which adds to the latency of
        // sparse messages (S1 ping-pong).
        for (int i = 0; streaming && i < idle_yields && worker.size == 0 && !worker.stopping; ++i) {
            lock.unlock();
            std::this_thread::yield();
            lock.lock();
        }
        while (worker.size == 0 && !worker.stopping) {
            worker.sleeping = true;  // a push or stop() clears it and posts not_empty once
            const auto slept = std::chrono::steady_clock::now();
            lock.unlock();
            worker.not_empty.wait();
            lock.lock();
            streaming = std::chrono::steady_clock::now() - slept < streaming_gap;
        }
        worker.sleeping = false;
        if (worker.size == 0) {  // stopping and drained
            worker.spent.clear();
            return;
        }
        Task task = std::move(worker.ring[worker.head]);
        worker.head = (worker.head + 1) % worker.ring.size();
        --worker.size;
        const bool wake_pusher = worker.blocked > 0;
        lock.unlock();
        if (wake_pusher) worker.not_full.notify_one();
        if (task.function) {
            try {
                task.function();
            } catch (...) {
                // Event tasks catch and log themselves; this thread must survive anything.
            }
        } else if (task.router) {
            task.router->deliver(task.message, Router::Pass::dispatcher);
        }
        task.function = nullptr;
        task.router.reset();
        lock.lock();
        if (task.message && worker.spent.size() < spent_limit) {
            worker.spent.push_back(std::move(task.message));
        } else if (task.message) {
            lock.unlock();
            task.message = Message{};
            lock.lock();
        }
    }
}

void Dispatcher::stop() noexcept {
    {
        std::lock_guard lock(stop_mutex_);
        if (stopped_) return;
        stopped_ = true;
    }
    for (auto& worker : workers_) {
        bool asleep = false;
        {
            std::lock_guard lock(worker->mutex);
            worker->stopping = true;
            asleep = std::exchange(worker->sleeping, false);
        }
        if (asleep) worker->not_empty.post();
        worker->not_full.notify_all();
    }
    for (auto& worker : workers_) {
        if (!worker->thread.joinable()) continue;
        if (std::this_thread::get_id() == worker->thread_id) {
            worker->thread.detach();  // stopped from one of its own handlers
        } else {
            worker->thread.join();
        }
    }
}

bool Dispatcher::on_dispatcher_thread() const noexcept {
    const auto self = std::this_thread::get_id();
    for (const auto& worker : workers_) {
        if (worker->thread_id == self) return true;
    }
    return false;
}

}  // namespace mqttx::detail
