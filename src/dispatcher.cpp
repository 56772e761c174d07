#include "dispatcher.hpp"

#include "router.hpp"

namespace mqttx::detail {

Dispatcher::Dispatcher(std::size_t threads, std::size_t queue_capacity) {
    if (threads == 0) threads = 1;
    if (queue_capacity == 0) queue_capacity = 1;
    workers_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        auto worker = std::make_shared<Worker>();
        worker->ring.resize(queue_capacity);
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
    return push(*workers_[worker % workers_.size()],
                Task{std::move(router), std::move(message), nullptr}, block_for);
}

bool Dispatcher::post(std::size_t worker, std::function<void()> task,
                      std::chrono::milliseconds block_for) {
    return push(*workers_[worker % workers_.size()], Task{nullptr, Message{}, std::move(task)},
                block_for);
}

bool Dispatcher::push(Worker& worker, Task&& task, std::chrono::milliseconds block_for) {
    std::unique_lock lock(worker.mutex);
    const auto capacity = worker.ring.size();
    if (worker.size == capacity) {
        // A handler running on this very worker must never wait for itself.
        if (std::this_thread::get_id() == worker.thread_id) return false;
        if (!worker.not_full.wait_for(lock, block_for,
                                      [&] { return worker.size < capacity || worker.stopping; })) {
            return false;
        }
    }
    if (worker.stopping) return false;
    worker.ring[(worker.head + worker.size) % capacity] = std::move(task);
    ++worker.size;
    // Notified under the lock: a worker that stops the dispatcher from this very task
    // could otherwise be gone before notify_one() touches its condition variable.
    worker.not_empty.notify_one();
    return true;
}

void Dispatcher::run(Worker& worker) {
    std::unique_lock lock(worker.mutex);
    for (;;) {
        worker.not_empty.wait(lock, [&] { return worker.size > 0 || worker.stopping; });
        if (worker.size == 0) return;  // stopping and drained
        Task task = std::move(worker.ring[worker.head]);
        worker.head = (worker.head + 1) % worker.ring.size();
        --worker.size;
        lock.unlock();
        worker.not_full.notify_one();
        if (task.function) {
            try {
                task.function();
            } catch (...) {
                // Event tasks catch and log themselves; this thread must survive anything.
            }
        } else if (task.router) {
            task.router->deliver(task.message, Router::Pass::dispatcher);
        }
        task = Task{};  // release the message and router before waiting again
        lock.lock();
    }
}

void Dispatcher::stop() noexcept {
    {
        std::lock_guard lock(stop_mutex_);
        if (stopped_) return;
        stopped_ = true;
    }
    for (auto& worker : workers_) {
        {
            std::lock_guard lock(worker->mutex);
            worker->stopping = true;
        }
        worker->not_empty.notify_all();
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
