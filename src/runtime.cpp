#include "runtime.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "logging.hpp"
#include "session/session_core.hpp"

namespace mqttx::detail {

Runtime::Runtime(const ManagerOptions& manager_options)
    : options(manager_options),
      log(manager_options.logger ? manager_options.logger : default_logger()),
      dispatcher(manager_options.dispatcher_threads, manager_options.dispatch_queue_size),
      events(std::make_shared<EventBus>()) {}

void Runtime::emit(std::size_t worker, Event event) {
    if (!events->wanted(event.type)) return;
    auto deliver = [bus = events, log = log, event = std::move(event)] {
        if (int failures = bus->deliver(event); failures > 0) {
            log->warn("{} handler(s) of event {} for session '{}' threw", failures,
                      to_string(event.type), event.session);
        }
    };
    if (!dispatcher.post(worker, std::move(deliver), options.dispatch_block_timeout)) {
        log->warn("event dropped: dispatch queue full or stopped");
    }
}

void Runtime::notify_state_change() {
    // Taking the mutex orders this notification after a waiter's predicate check.
    { std::lock_guard lock(state_mutex); }
    state_changed.notify_all();
}

void Runtime::track(std::weak_ptr<SessionCore> session) {
    bool start = false;
    {
        std::lock_guard lock(tracked_mutex_);
        tracked_.push_back(std::move(session));
        start = !std::exchange(ticking_, true);
    }
    if (start) {
        scheduler.post_after(std::chrono::seconds(1),
                             [weak = weak_from_this()] { tick_sessions(weak); });
    }
}

void Runtime::tick_sessions(const std::weak_ptr<Runtime>& weak) {
    auto self = weak.lock();
    if (!self) return;
    std::vector<std::shared_ptr<SessionCore>> sessions;
    {
        std::lock_guard lock(self->tracked_mutex_);
        std::erase_if(self->tracked_, [](const auto& entry) { return entry.expired(); });
        sessions.reserve(self->tracked_.size());
        for (const auto& entry : self->tracked_) {
            if (auto session = entry.lock()) sessions.push_back(std::move(session));
        }
    }
    // Outside the lock: a check may emit an event, and a session may be added meanwhile.
    for (const auto& session : sessions) session->every_second();
    self->scheduler.post_after(std::chrono::seconds(1), [weak] { tick_sessions(weak); });
}

void Runtime::stop() noexcept {
    scheduler.stop();
    background.stop();
    dispatcher.stop();
}

}  // namespace mqttx::detail
