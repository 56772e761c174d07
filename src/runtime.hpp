// Runtime: what a manager's sessions share: the scheduler thread, the dispatcher
// threads, the event bus and the condition variable that readiness waits use.
// Sessions hold it by shared_ptr, so a session kept past its manager stays safe.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include "dispatcher.hpp"
#include "event_bus.hpp"
#include "mqttx/session_manager.hpp"
#include "paho_waker.hpp"
#include "scheduler.hpp"

namespace mqttx::detail {

class Runtime {
  public:
    explicit Runtime(const ManagerOptions& options);
    ~Runtime() { stop(); }
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Emits an event on the session's dispatcher worker (after its earlier messages).
    void emit(std::size_t worker, Event event);
    // Wakes every wait_for_session / wait_for_all_sessions.
    void notify_state_change();

    void stop() noexcept;

    const ManagerOptions options;
    const std::shared_ptr<spdlog::logger> log;
    Scheduler scheduler;
    PahoWaker waker{scheduler, options.wake_paho_on_connect};
    Dispatcher dispatcher;
    const std::shared_ptr<EventBus> events;
    std::mutex state_mutex;
    std::condition_variable state_changed;
};

}  // namespace mqttx::detail
