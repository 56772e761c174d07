#include "runtime.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "logging.hpp"

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

void Runtime::track_rates(std::weak_ptr<SessionStats> stats) {
    bool start = false;
    {
        std::lock_guard lock(rates_mutex_);
        rated_.push_back(std::move(stats));
        start = !std::exchange(ticking_, true);
    }
    if (start) {
        scheduler.post_after(std::chrono::seconds(1),
                             [weak = weak_from_this()] { sample_rates(weak); });
    }
}

void Runtime::sample_rates(const std::weak_ptr<Runtime>& weak) {
    auto self = weak.lock();
    if (!self) return;
    {
        std::lock_guard lock(self->rates_mutex_);
        std::erase_if(self->rated_, [](const auto& entry) { return entry.expired(); });
        for (const auto& entry : self->rated_) {
            if (auto stats = entry.lock()) stats->sample_rates();
        }
    }
    self->scheduler.post_after(std::chrono::seconds(1), [weak] { sample_rates(weak); });
}

void Runtime::stop() noexcept {
    scheduler.stop();
    background.stop();
    dispatcher.stop();
}

}  // namespace mqttx::detail
