// EventBus: the registry of event handlers. Emission copies the matching handlers
// under the lock and calls them after releasing it.
#pragma once

#include <array>
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
    // Whether a handler for `type` (or for every event) is registered now. Emitters ask
    // first: with nobody listening, an event is not built or queued at all, which with
    // thousands of sessions connecting saves tens of thousands of dispatcher tasks.
    bool wanted(EventType type) const noexcept;

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
    // EventType::window_stalled is the last type.
    static constexpr std::size_t any_type = static_cast<std::size_t>(EventType::window_stalled) + 1;
    // Registered handlers per type, and for every event at [any_type].
    std::array<std::atomic<int>, any_type + 1> listeners_{};
    std::mutex mutex_;
    std::vector<Entry> entries_;
    std::uint64_t next_id_ = 1;
};

}  // namespace mqttx::detail
