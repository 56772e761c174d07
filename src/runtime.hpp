// Runtime: what a manager's sessions share: the scheduler thread, the dispatcher
// threads, the event bus and the condition variable that readiness waits use.
// Sessions hold it by shared_ptr, so a session kept past its manager stays safe.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "connect_failure.hpp"
#include "dispatcher.hpp"
#include "event_bus.hpp"
#include "mqttx/session_manager.hpp"
#include "paho_waker.hpp"
#include "scheduler.hpp"
#include "session_stats.hpp"

namespace mqttx::detail {

class SessionCore;
class Runtime;

// A session's lifecycle events, delivered on its dispatcher worker in the order they
// were pushed, without the pushing thread waiting on anyone: a flush posts one drain
// task when none is pending, and the task delivers everything pushed by then. Held by
// shared_ptr, so what a closing session pushed is delivered after it is gone.
class OrderedEvents : public std::enable_shared_from_this<OrderedEvents> {
  public:
    void push(Event event);  // with the caller's lock that orders the events held
    void flush(Runtime& runtime, std::size_t worker);

  private:
    std::mutex mutex_;
    std::vector<Event> events_;
    bool drain_posted_ = false;
};

class Runtime : public std::enable_shared_from_this<Runtime> {
  public:
    explicit Runtime(const ManagerOptions& options);
    ~Runtime() { stop(); }
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Emits an event on the session's dispatcher worker (after its earlier messages).
    void emit(std::size_t worker, Event event);
    // Hands an event to its handlers, here and now.
    void deliver(const Event& event) const;
    // Wakes every wait_for_session / wait_for_all_sessions.
    void notify_state_change();

    // Calls the session's every_second() (its message rates, the stalled-window check)
    // about once a second, until the session is gone. The first call starts the ticker
    // on the scheduler.
    void track(std::weak_ptr<SessionCore> session);

    void stop() noexcept;

    const ManagerOptions options;
    const std::shared_ptr<spdlog::logger> log;
    Scheduler scheduler;
    // Blocking work (a TLS handshake that names why a connect failed, saving a session's
    // state), kept off the scheduler so that it never delays another session's timers.
    Scheduler background;
    PahoWaker waker{scheduler, log, options.wake_paho_on_connect};
    ProbeCache probes;  // why connects failed, for the sessions' error messages
    Dispatcher dispatcher;
    const std::shared_ptr<EventBus> events;
    std::mutex state_mutex;
    std::condition_variable state_changed;

  private:
    static void tick_sessions(const std::weak_ptr<Runtime>& runtime);

    std::mutex tracked_mutex_;
    std::vector<std::weak_ptr<SessionCore>> tracked_;
    bool ticking_ = false;
};

}  // namespace mqttx::detail
