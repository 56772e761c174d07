#include "event_bus.hpp"

#include <algorithm>

#include "problems.hpp"

namespace mqttx {

const char* to_string(EventType type) noexcept {
    switch (type) {
        case EventType::session_connecting:
            return "session_connecting";
        case EventType::session_connected:
            return "session_connected";
        case EventType::session_ready:
            return "session_ready";
        case EventType::session_disconnected:
            return "session_disconnected";
        case EventType::session_reconnecting:
            return "session_reconnecting";
        case EventType::session_added:
            return "session_added";
        case EventType::session_removed:
            return "session_removed";
        case EventType::session_state_changed:
            return "session_state_changed";
        case EventType::forwarder_stopped:
            return "forwarder_stopped";
        case EventType::error:
            return "error";
        case EventType::window_stalled:
            return "window_stalled";
    }
    return "unknown";
}

const char* to_string(DisconnectCause cause) noexcept {
    switch (cause) {
        case DisconnectCause::application:
            return "application";
        case DisconnectCause::broker_disconnect:
            return "broker_disconnect";
        case DisconnectCause::connection_lost:
            return "connection_lost";
    }
    return "unknown";
}

void EventSubscription::unsubscribe() noexcept {
    if (id_ == 0) return;
    if (auto bus = bus_.lock()) bus->remove(id_);
    id_ = 0;
    bus_.reset();
}

namespace detail {

namespace {
thread_local bool in_event_handler = false;
}  // namespace

std::uint64_t EventBus::add(std::optional<EventType> type, EventHandler handler) {
    if (!handler) throw Error(ErrorKind::configuration, "an event handler must not be empty");
    // It indexes the listener counts.
    if (type && !is_enumerator(*type, EventType::window_stalled)) {
        throw Error(ErrorKind::configuration, "not an EventType");
    }
    std::lock_guard lock(mutex_);
    const auto id = next_id_++;
    entries_.push_back({id, type, std::make_shared<Slot>(std::move(handler))});
    listeners_[type ? static_cast<std::size_t>(*type) : any_type].fetch_add(1);
    return id;
}

void EventBus::remove(std::uint64_t id) noexcept {
    std::shared_ptr<Slot> slot;
    {
        std::lock_guard lock(mutex_);
        auto it = std::find_if(entries_.begin(), entries_.end(),
                               [id](const Entry& entry) { return entry.id == id; });
        if (it == entries_.end()) return;
        slot = std::move(it->slot);
        listeners_[it->type ? static_cast<std::size_t>(*it->type) : any_type].fetch_sub(1);
        entries_.erase(it);
    }
    slot->active.store(false);  // seq_cst pairs with deliver(), as for routes
    if (in_event_handler) return;
    for (int running = slot->running.load(); running > 0; running = slot->running.load()) {
        slot->running.wait(running);
    }
}

bool EventBus::wanted(EventType type) const noexcept {
    return listeners_[static_cast<std::size_t>(type)].load(std::memory_order_relaxed) > 0 ||
           listeners_[any_type].load(std::memory_order_relaxed) > 0;
}

int EventBus::deliver(const Event& event) {
    std::vector<std::shared_ptr<Slot>> slots;
    {
        std::lock_guard lock(mutex_);
        for (const auto& entry : entries_) {
            if (!entry.type || *entry.type == event.type) slots.push_back(entry.slot);
        }
    }
    int failures = 0;
    const bool outer = !in_event_handler;
    in_event_handler = true;
    for (const auto& slot : slots) {
        slot->running.fetch_add(1);
        if (slot->active.load()) {
            try {
                slot->handler(event);
            } catch (...) {
                ++failures;
            }
        }
        slot->running.fetch_sub(1);
        slot->running.notify_all();
    }
    if (outer) in_event_handler = false;
    return failures;
}

}  // namespace detail
}  // namespace mqttx
