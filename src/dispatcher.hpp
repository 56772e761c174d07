// Dispatcher: the threads that run user handlers and event handlers, so that Paho's
// single receive thread only enqueues. A session always uses the same worker, which
// keeps its messages and events in order. Each worker's queue is a bounded ring.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mqttx/message.hpp"

namespace mqttx::detail {

class Router;

class Dispatcher {
  public:
    Dispatcher(std::size_t threads, std::size_t queue_capacity);
    ~Dispatcher();
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    std::size_t worker_count() const noexcept { return workers_.size(); }
    // Queues `message` for `router` on worker `worker % worker_count()`. When the queue
    // is full, waits up to `block_for` (the caller is Paho's receive thread: waiting
    // longer would stall every session), then returns false: the message is dropped.
    bool post(std::size_t worker, std::shared_ptr<Router> router, Message message,
              std::chrono::milliseconds block_for);
    bool post(std::size_t worker, std::function<void()> task, std::chrono::milliseconds block_for);

    // Runs what is queued, then joins the threads. Idempotent.
    void stop() noexcept;
    bool on_dispatcher_thread() const noexcept;

  private:
    struct Task {
        std::shared_ptr<Router> router;
        Message message;
        std::function<void()> function;
    };
    struct Worker {
        std::mutex mutex;
        std::condition_variable not_empty;
        std::condition_variable not_full;
        std::vector<Task> ring;
        std::size_t head = 0;
        std::size_t size = 0;
        bool stopping = false;
        std::thread thread;
        std::thread::id thread_id;  // kept apart: join() and detach() reset thread's
    };
    bool push(Worker& worker, Task&& task, std::chrono::milliseconds block_for);
    static void run(Worker& worker);

    // Shared with each worker's thread, so a thread detached by a stop() from one of
    // its own tasks never touches a destroyed Worker.
    std::vector<std::shared_ptr<Worker>> workers_;
    std::mutex stop_mutex_;
    bool stopped_ = false;
};

}  // namespace mqttx::detail
