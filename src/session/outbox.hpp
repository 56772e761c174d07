// Outbox: the messages a session accepted and the broker has not confirmed. Waiting
// ones go to Paho in publish order while the session is ready and the in-flight window
// has room; those handed to Paho are in flight until Paho reports on them. Here, not
// in Paho: past a full window Paho's send thread sleeps up to a second before it looks
// again, and Paho drops the oldest of its own buffer without a word, where this outbox
// applies the session's overflow policy and counts.
//
// A persistent session's outbox spills: past `spill_after` waiting messages, one that
// only the outbox still holds (its token let go, no observer) leaves memory, since its
// outbox record in storage has it; what stays is its sequence (consecutive ones as
// one run) and its size. The caller loads it back when it reaches the front.
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
#include <optional>
#include <unordered_map>
#include <vector>

#include "delivery.hpp"
#include "mqttx/options.hpp"

namespace mqttx::detail {

class Outbox {
  public:
    // From PerformanceOptions, whose defaults these are.
    struct Limits {
        std::size_t window = 20;            // max_inflight
        std::size_t max_pending = 10000;    // waiting messages at most
        std::size_t max_pending_bytes = 0;  // their topics and payloads at most; 0: no bound
        BufferOverflow overflow = BufferOverflow::reject;
        int max_publish_attempts = 3;
        std::size_t spill_after = 0;  // 0: nothing spills (no storage holds it)
    };

    explicit Outbox(Limits limits) : limits_(limits), window_(limits.window) {}

    // Keeps the window of the current connection below `receive_maximum` (the broker's
    // MQTT 5 Receive Maximum; 65535 when it set none), never above Limits::window. The
    // window counts every message handed to Paho, QoS 0 too, which the maximum does not.
    void limit_window(std::size_t receive_maximum);

    // A newly accepted message. In flight at once (stamped with connection `link`) when
    // the caller can hand it to Paho now (`may_hand_off`), the session is `ready`, nothing
    // waits and the window has room; otherwise it waits. A full outbox refuses it
    // (overflow reject; also a message larger than max_pending_bytes on its own) or drops
    // its oldest waiting messages to make room (drop_oldest): those in memory, and the
    // sequences of spilled ones, whose records the caller removes.
    // `ready` is read under the outbox's lock: whoever sets it looks for waiting messages
    // under the same lock after, so a message is either sent at once or seen waiting.
    struct Admission {
        bool in_flight = false;
        bool rejected = false;
        std::vector<std::shared_ptr<Delivery>> dropped;
        std::vector<std::uint64_t> dropped_spilled;
    };
    Admission admit(const std::shared_ptr<Delivery>& delivery, bool may_hand_off,
                    const std::atomic<bool>& ready, std::uint32_t link);

    // The first waiting message, moved in flight and stamped with `link`. Neither when
    // none waits or the window is full; when it is spilled, its sequence: the caller
    // loads it and gives it to unspill().
    struct Next {
        std::shared_ptr<Delivery> delivery;
        std::optional<std::uint64_t> spilled;
    };
    Next next(std::uint32_t link);
    // The spilled message `sequence`, loaded from storage (null: unreadable, it leaves
    // the outbox), back in memory at the front. False if it is not at the front any
    // more (dropped meanwhile).
    bool unspill(std::uint64_t sequence, std::shared_ptr<Delivery> delivery);
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
    // A message read back from storage: waits behind those before it (and may spill).
    void restore(std::shared_ptr<Delivery> delivery);
    // Publishes Paho resends from the last run take room in the window until Paho lets
    // go of them: a broker's receive maximum counts every unacknowledged publish, and
    // mosquitto 2.0 acknowledges a QoS 2 publish past it but never delivers it.
    void hold_for_paho(std::size_t count);
    // Paho let go of `count` of them: true if any was still held.
    bool released_by_paho(std::size_t count);
    // Paho stored the QoS 2 publish with this packet identifier: the in-flight message
    // that has it, if storage still holds its record. Paho may write before publish()
    // has returned the identifier: then it is kept for claim().
    std::shared_ptr<Delivery> written_by_paho(int message_id);
    // The identifier Paho gave `delivery`. True if Paho has stored the publish already:
    // the caller removes its record.
    bool claim(Delivery& delivery, int message_id);
    // Paho removed its record of the publish with this identifier (confirmed, or failed).
    void forgotten_by_paho(int message_id);
    // Paho dropped every record (a clean start, or a broker without the session).
    void forget_all_written();
    // Everything in memory, in flight first, then waiting; the outbox is empty after
    // (spilled messages stay in storage only).
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
    // The in-flight messages handed to Paho before `cutoff`, oldest first (QoS and
    // packet identifier, 0 when Paho has not given one), and when the oldest was handed.
    struct Stalled {
        std::chrono::steady_clock::time_point oldest{};
        std::vector<std::pair<int, int>> messages;  // (QoS, packet identifier)
    };
    Stalled handed_before(std::chrono::steady_clock::time_point cutoff) const;
    struct Sizes {
        std::size_t waiting = 0;
        std::size_t in_flight = 0;
        std::size_t spilled = 0;  // of the waiting ones
        std::size_t waiting_bytes = 0;
    };
    // Under one lock, inline: metrics() reads them for every session at each scrape.
    Sizes sizes() const {
        std::lock_guard lock(mutex_);
        if (!queues_) return {};
        return {queues_->waiting_messages, queues_->in_flight.size(), queues_->spilled_sizes.size(),
                queues_->waiting_bytes};
    }
    const Limits& limits() const noexcept { return limits_; }

  private:
    // A waiting message in memory, or a run of consecutive spilled ones.
    struct Waiting {
        std::shared_ptr<Delivery> delivery;  // null: spilled
        std::uint64_t sequence = 0;          // its own, or the run's first
        std::uint64_t count = 1;             // spilled: the run's length
    };
    struct Queues {
        std::deque<Waiting> waiting;              // in publish order
        std::deque<std::uint32_t> spilled_sizes;  // bytes of each spilled message, in order
        std::size_t waiting_messages = 0;
        std::size_t waiting_bytes = 0;
        // The in-flight map's nodes come back to this pool, so a publish does not
        // allocate one in steady state.
        std::pmr::unsynchronized_pool_resource in_flight_nodes;
        std::pmr::unordered_map<const Delivery*, std::shared_ptr<Delivery>> in_flight{
            &in_flight_nodes};
    };

    // With mutex_ held:
    Queues& queues();
    void insert_waiting(std::shared_ptr<Delivery> delivery);
    bool full_for(std::size_t bytes) const;
    void drop_oldest(Admission& admission);
    void spill_behind_last();
    void erase_waiting(std::deque<Waiting>::iterator at);
    bool window_has_room() const { return queues_->in_flight.size() + held_by_paho_ < window_; }

    const Limits limits_;
    mutable std::mutex mutex_;
    std::size_t window_;  // limits_.window, or the broker's Receive Maximum when smaller
    // Made on first use: the deque's first block and the pool's tables are about 1 KB
    // that an idle session never needs.
    std::unique_ptr<Queues> queues_;
    std::size_t held_by_paho_ = 0;        // Paho's resends from the last run, unconfirmed
    std::vector<int> written_unclaimed_;  // identifiers Paho stored before claim()
    // The poison guard's suspect: the oldest message in flight at the last drops, and
    // at how many drops in a row it was.
    std::uint64_t suspect_sequence_ = ~std::uint64_t{0};
    int suspect_drops_ = 0;
};

}  // namespace mqttx::detail
