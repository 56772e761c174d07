#include "event_bus.hpp"

#include <algorithm>

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
        case EventType::error:
            return "error";
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

std::uint64_t EventBus::add(std::optional<EventType> type, EventHandler handler) {
    std::lock_guard lock(mutex_);
    const auto id = next_id_++;
    entries_.push_back({id, type, std::make_shared<EventHandler>(std::move(handler))});
    return id;
}

void EventBus::remove(std::uint64_t id) noexcept {
    std::lock_guard lock(mutex_);
    std::erase_if(entries_, [id](const Entry& entry) { return entry.id == id; });
}

int EventBus::deliver(const Event& event) {
    std::vector<std::shared_ptr<EventHandler>> handlers;
    {
        std::lock_guard lock(mutex_);
        for (const auto& entry : entries_) {
            if (!entry.type || *entry.type == event.type) handlers.push_back(entry.handler);
        }
    }
    int failures = 0;
    for (const auto& handler : handlers) {
        try {
            (*handler)(event);
        } catch (...) {
            ++failures;
        }
    }
    return failures;
}

}  // namespace detail
}  // namespace mqttx
