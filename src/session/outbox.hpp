// Outbox: the messages a session accepted and the broker has not confirmed. Waiting
// ones go to Paho in publish order while the session is ready and the in-flight window
// has room; those handed to Paho are in flight until Paho reports on them. Here, not
// in Paho: past a full window Paho's send thread sleeps up to a second before it looks
// again, and Paho drops the oldest of its own buffer without a word, where this outbox
// applies the session's overflow policy and counts.
//
// It also keeps the poison guard's count (PerformanceOptions::max_publish_attempts).
// Thread-safe: every call is one step under the outbox's own lock. It never calls
// Paho, storage or a token; what leaves it, the caller settles.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "delivery.hpp"
#include "mqttx/options.hpp"

namespace mqttx::detail {

class Outbox {
  public:
    // From PerformanceOptions, whose defaults these are.
    struct Limits {
        std::size_t window = 20;          // max_inflight
        std::size_t max_pending = 10000;  // waiting messages at most
        BufferOverflow overflow = BufferOverflow::reject;
        int max_publish_attempts = 3;
    };

    explicit Outbox(Limits limits) : limits_(limits) {}

    // A newly accepted message. In flight at once (stamped with connection `link`) when
    // the caller can hand it to Paho now (`may_hand_off`), the session is `ready`, nothing
    // waits and the window has room; otherwise it waits. A full outbox refuses it
    // (overflow reject) or drops its oldest waiting message to make room (drop_oldest).
    // `ready` is read under the outbox's lock: whoever sets it looks for waiting messages
    // under the same lock after, so a message is either sent at once or seen waiting.
    struct Admission {
        bool in_flight = false;
        bool rejected = false;
        std::shared_ptr<Delivery> dropped;
    };
    Admission admit(const std::shared_ptr<Delivery>& delivery, bool may_hand_off,
                    const std::atomic<bool>& ready, std::uint32_t link);

    // The first waiting message, moved in flight and stamped with `link`; null when
    // none waits or the window is full.
    std::shared_ptr<Delivery> next(std::uint32_t link);
    // Removes the in-flight message Paho reports on (its user context); null if unknown.
    std::shared_ptr<Delivery> take(const void* context);
    // The in-flight message of `context`, left in place; null if unknown.
    std::shared_ptr<Delivery> find(const void* context) const;
    // A failure of the in-flight message of `context`: back among the waiting ones, in
    // publish order, when `retry(delivery)` says so (its connection was lost, or Paho was
    // disconnected when it was handed over), else removed. Decided under the outbox's
    // lock, so that take_all() (a close) and connection_lost() always find it in one
    // place or the other. Null `delivery`: it was not in flight any more.
    struct GivenBack {
        std::shared_ptr<Delivery> delivery;
        bool requeued = false;
    };
    template <class Retry>
    GivenBack give_back(const void* context, Retry&& retry) {
        GivenBack back;
        std::lock_guard lock(mutex_);
        if (!queues_) return back;
        auto it = queues_->in_flight.find(static_cast<const Delivery*>(context));
        if (it == queues_->in_flight.end()) return back;
        back.delivery = std::move(it->second);
        queues_->in_flight.erase(it);
        if (retry(*back.delivery)) {
            insert_waiting(back.delivery);
            back.requeued = true;
        }
        return back;
    }
    // A message read back from storage: waits behind those before it.
    void restore(std::shared_ptr<Delivery> delivery);
    // The in-flight message with Paho's packet identifier that storage still holds.
    std::shared_ptr<Delivery> stored_in_flight(int message_id);
    // Everything, in flight first, then waiting; the outbox is empty after.
    std::vector<std::shared_ptr<Delivery>> take_all();

    // The connection of `lost` dropped. The oldest unconfirmed message that was in
    // flight on it is the suspect: a broker handles a connection's packets in order, so
    // a message it closes the connection on is the oldest it has not acknowledged.
    // Suspect at max_publish_attempts drops in a row, it leaves the outbox here.
    struct GivenUp {
        std::shared_ptr<Delivery> delivery;  // null: none given up this time
        bool held_by_paho = false;           // it was in flight, not back waiting
    };
    GivenUp connection_lost(std::uint32_t lost);

    bool has_waiting() const;
    struct Sizes {
        std::size_t waiting = 0;
        std::size_t in_flight = 0;
    };
    // Both under one lock, inline: metrics() reads them for every session at each scrape.
    Sizes sizes() const {
        std::lock_guard lock(mutex_);
        return queues_ ? Sizes{queues_->waiting.size(), queues_->in_flight.size()} : Sizes{};
    }
    const Limits& limits() const noexcept { return limits_; }

  private:
    struct Queues {
        std::deque<std::shared_ptr<Delivery>> waiting;
        // The in-flight map's nodes come back to this pool, so a publish does not
        // allocate one in steady state.
        std::pmr::unsynchronized_pool_resource in_flight_nodes;
        std::pmr::unordered_map<const Delivery*, std::shared_ptr<Delivery>> in_flight{
            &in_flight_nodes};
    };

    Queues& queues();                                         // with mutex_ held
    void insert_waiting(std::shared_ptr<Delivery> delivery);  // with mutex_ held

    const Limits limits_;
    mutable std::mutex mutex_;
    // Made on first use: the deque's first block and the pool's tables are about 1 KB
    // that an idle session never needs.
    std::unique_ptr<Queues> queues_;
    // The poison guard's suspect: the oldest message in flight at the last drops, and
    // at how many drops in a row it was.
    std::uint64_t suspect_sequence_ = ~std::uint64_t{0};
    int suspect_drops_ = 0;
};

}  // namespace mqttx::detail
