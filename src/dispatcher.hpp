// Dispatcher: the threads that run user handlers and event handlers, so that Paho's
// single receive thread only enqueues. A session always uses the same worker, which
// keeps its messages and events in order. Each worker's queue is a bounded ring that
// grows on demand up to its bound, so an idle manager does not hold the whole bound.
#pragma once

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <semaphore.h>

#include "mqttx/message.hpp"

namespace mqttx::detail {

class Router;

// A sleeping worker waits here; the push that finds it asleep posts once. Not a
// condition variable: glibc re-locks the mutex after a condition wait as if contended,
// so each wake-up cost the worker one more futex call (a wake of nobody) at its next
// unlock, about one per message in a flood.
class WakeSignal {
  public:
    WakeSignal() noexcept { sem_init(&semaphore_, 0, 0); }
    ~WakeSignal() { sem_destroy(&semaphore_); }
    WakeSignal(const WakeSignal&) = delete;
    WakeSignal& operator=(const WakeSignal&) = delete;
    void post() noexcept { sem_post(&semaphore_); }
    void wait() noexcept {
        while (sem_wait(&semaphore_) != 0 && errno == EINTR) {
        }
    }

  private:
    sem_t semaphore_;
};

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
        WakeSignal not_empty;
        std::condition_variable not_full;
        std::vector<Task> ring;  // grown (doubled) while full and below capacity
        std::size_t capacity = 0;
        std::size_t head = 0;
        std::size_t size = 0;
        bool sleeping = false;    // waiting on not_empty: only then does a push post it
        std::size_t blocked = 0;  // pushers waiting on not_full
        // Messages whose handlers are done, released by the next push. That push
        // usually runs on Paho's receive thread: Paho's message destructor takes Paho's
        // global trace mutex, which a worker thread would contend for with Paho's own.
        std::vector<Message> spent;  // at most spent_limit: reserved, never reallocated
        bool stopping = false;
        std::thread thread;
        std::thread::id thread_id;  // kept apart: join() and detach() reset thread's
    };
    static constexpr std::size_t spent_limit = 64;
    static constexpr std::size_t initial_ring = 256;
    static constexpr int idle_yields = 2;  // before a worker with nothing to do sleeps
    // A sleep shorter than this means messages stream in (a flood gives each worker one
    // every 15-35 us on the bench machine; a ping-pong round trip takes about 100 us).
    static constexpr std::chrono::microseconds streaming_gap{50};
    // Takes its own reference: a task may destroy the Dispatcher before push() returns.
    bool push(std::shared_ptr<Worker> keep, Task&& task, std::chrono::milliseconds block_for);
    static void run(Worker& worker);
    static void grow(Worker& worker);  // with worker.mutex held

    // Shared with each worker's thread, so a thread detached by a stop() from one of
    // its own tasks never touches a destroyed Worker.
    std::vector<std::shared_ptr<Worker>> workers_;
    std::mutex stop_mutex_;
    bool stopped_ = false;
};

}  // namespace mqttx::detail
