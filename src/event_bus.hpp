// EventBus: the registry of event handlers. Emission copies the matching handlers
// under the lock and calls them after releasing it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "mqttx/events.hpp"

namespace mqttx::detail {

class EventBus {
  public:
    // `type` empty: every event.
    std::uint64_t add(std::optional<EventType> type, EventHandler handler);
    // After it returns the handler is not running and never runs again (inside an event
    // handler it does not wait: two handlers removing each other would wait forever).
    void remove(std::uint64_t id) noexcept;
    // Runs every matching handler on the calling thread; exceptions are returned as
    // a count so the caller can log them.
    int deliver(const Event& event);

  private:
    struct Slot {
        explicit Slot(EventHandler h) : handler(std::move(h)) {}
        const EventHandler handler;
        std::atomic<bool> active{true};
        std::atomic<int> running{0};
    };
    struct Entry {
        std::uint64_t id;
        std::optional<EventType> type;
        std::shared_ptr<Slot> slot;
    };
    std::mutex mutex_;
    std::vector<Entry> entries_;
    std::uint64_t next_id_ = 1;
};

}  // namespace mqttx::detail
