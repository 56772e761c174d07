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
    auto deliver = [self = shared_from_this(), event = std::move(event)] { self->deliver(event); };
    if (!dispatcher.post(worker, std::move(deliver), options.dispatch_block_timeout)) {
        log->warn("event dropped: dispatch queue full or stopped");
    }
}

void Runtime::deliver(const Event& event) const {
    if (int failures = events->deliver(event); failures > 0) {
        log->warn("{} handler(s) of event {} for session '{}' threw", failures,
                  to_string(event.type), event.session);
    }
}

void OrderedEvents::push(Event event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
}

void OrderedEvents::flush(Runtime& runtime, std::size_t worker) {
    {
        std::lock_guard lock(mutex_);
        if (events_.empty() || drain_posted_) return;
        drain_posted_ = true;
    }
    auto drain = [self = shared_from_this(), runtime = runtime.shared_from_this()] {
        std::vector<Event> events;
        {
            std::lock_guard lock(self->mutex_);
            events.swap(self->events_);
            self->drain_posted_ = false;
        }
        for (const auto& event : events) runtime->deliver(event);
    };
    if (!runtime.dispatcher.post(worker, std::move(drain),
                                 runtime.options.dispatch_block_timeout)) {
        {
            std::lock_guard lock(mutex_);
            drain_posted_ = false;  // the next flush tries again
        }
        runtime.log->warn("events delayed: dispatch queue full or stopped");
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
