#include "session/outbox.hpp"

#include <algorithm>

namespace mqttx::detail {

Outbox::Queues& Outbox::queues() {
    if (!queues_) queues_ = std::make_unique<Queues>();
    return *queues_;
}

void Outbox::insert_waiting(std::shared_ptr<Delivery> delivery) {
    auto& box = queues();
    box.waiting_bytes += delivery->size();
    ++box.waiting_messages;
    auto later = std::upper_bound(
        box.waiting.begin(), box.waiting.end(), delivery->sequence(),
        [](std::uint64_t sequence, const Waiting& w) { return sequence < w.sequence; });
    const auto sequence = delivery->sequence();
    box.waiting.insert(later, Waiting{std::move(delivery), sequence});
}

bool Outbox::full_for(std::size_t bytes) const {
    return queues_->waiting_messages >= limits_.max_pending ||
           (limits_.max_pending_bytes != 0 &&
            queues_->waiting_bytes + bytes > limits_.max_pending_bytes);
}

void Outbox::drop_oldest(Admission& admission) {
    auto& box = *queues_;
    auto& front = box.waiting.front();
    if (front.delivery) {
        admission.dropped.push_back(front.delivery);
        erase_waiting(box.waiting.begin());
        return;
    }
    admission.dropped_spilled.push_back(front.sequence);
    ++front.sequence;
    if (--front.count == 0) box.waiting.pop_front();
    box.waiting_bytes -= box.spilled_sizes.front();
    box.spilled_sizes.pop_front();
    --box.waiting_messages;
}

void Outbox::erase_waiting(std::deque<Waiting>::iterator at) {
    auto& box = *queues_;
    box.waiting_bytes -= at->delivery->size();
    --box.waiting_messages;
    box.waiting.erase(at);
}

namespace {

// Its outbox record keeps the message whole: it has no MQTT 5 property but user
// properties (OutboxRecord keeps no other).
bool record_keeps_all(const Delivery& delivery) {
    const auto& properties = delivery.message().get_properties().c_struct();
    for (int i = 0; i < properties.count; ++i) {
        if (properties.array[i].identifier != MQTTPROPERTY_CODE_USER_PROPERTY) return false;
    }
    return true;
}

}  // namespace

// The message before the newest one leaves memory if only the outbox holds it: by the
// time the next publish comes, a caller that let its token go has done so.
void Outbox::spill_behind_last() {
    auto& box = *queues_;
    if (limits_.spill_after == 0 || box.waiting_messages <= limits_.spill_after ||
        box.waiting.size() < 2) {
        return;
    }
    const auto at = box.waiting.end() - 2;
    auto& candidate = at->delivery;
    // Only the outbox holds it, and nobody can take another reference but the outbox.
    if (!candidate || candidate.use_count() != 1 || !candidate->stored || candidate->observed() ||
        !record_keeps_all(*candidate)) {
        return;
    }
    box.spilled_sizes.push_back(static_cast<std::uint32_t>(candidate->size()));
    if (at != box.waiting.begin()) {
        auto& run = *(at - 1);
        if (!run.delivery && run.sequence + run.count == at->sequence) {
            ++run.count;
            box.waiting.erase(at);
            return;
        }
    }
    candidate.reset();
}

void Outbox::limit_window(std::size_t receive_maximum) {
    std::lock_guard lock(mutex_);
    // Paho keeps to the Receive Maximum itself, and the session wants one place more in
    // Paho than in the window (see make_connect_options): one below it, when it binds.
    window_ = receive_maximum > limits_.window ? limits_.window
                                               : std::max<std::size_t>(1, receive_maximum - 1);
}

Outbox::Admission Outbox::admit(const std::shared_ptr<Delivery>& delivery, bool may_hand_off,
                                const std::atomic<bool>& ready, std::uint32_t link) {
    Admission admission;
    std::lock_guard lock(mutex_);
    auto& box = queues();
    if (may_hand_off && box.waiting.empty() && window_has_room() &&
        ready.load(std::memory_order_acquire)) {
        box.in_flight.emplace(delivery.get(), delivery);  // before Paho may report on it
        delivery->sent_in = link;
        delivery->handed_at = delivery->accepted_at();  // a moment ago: no clock read here
        delivery->message_id.store(0, std::memory_order_relaxed);  // claim() sets the new one
        admission.in_flight = true;
        return admission;
    }
    const auto bytes = delivery->size();
    if (limits_.max_pending_bytes != 0 && bytes > limits_.max_pending_bytes) {
        admission.rejected = true;  // dropping everything would not make room
        return admission;
    }
    while (full_for(bytes)) {
        if (limits_.overflow == BufferOverflow::reject) {
            admission.rejected = true;
            return admission;
        }
        drop_oldest(admission);
    }
    box.waiting.push_back(Waiting{delivery, delivery->sequence()});
    box.waiting_bytes += bytes;
    ++box.waiting_messages;
    spill_behind_last();
    return admission;
}

Outbox::Next Outbox::next(std::uint32_t link) {
    std::lock_guard lock(mutex_);
    if (!queues_ || queues_->waiting.empty() || !window_has_room()) {
        return {};
    }
    auto& box = *queues_;
    auto& front = box.waiting.front();
    if (!front.delivery) return {nullptr, front.sequence};
    auto next = std::move(front.delivery);
    box.waiting.pop_front();
    box.waiting_bytes -= next->size();
    --box.waiting_messages;
    box.in_flight.emplace(next.get(), next);
    next->sent_in = link;
    next->handed_at = std::chrono::steady_clock::now();
    next->message_id.store(0, std::memory_order_relaxed);
    return {std::move(next), std::nullopt};
}

bool Outbox::unspill(std::uint64_t sequence, std::shared_ptr<Delivery> delivery) {
    std::lock_guard lock(mutex_);
    if (!queues_ || queues_->waiting.empty()) return false;
    auto& box = *queues_;
    auto& front = box.waiting.front();
    if (front.delivery || front.sequence != sequence) return false;
    const auto size = box.spilled_sizes.front();
    box.spilled_sizes.pop_front();
    ++front.sequence;
    if (--front.count == 0) box.waiting.pop_front();
    if (delivery) {
        // Counted as waiting already; its size is what it was when it spilled.
        box.waiting_bytes = box.waiting_bytes - size + delivery->size();
        box.waiting.push_front(Waiting{std::move(delivery), sequence});
    } else {
        box.waiting_bytes -= size;
        --box.waiting_messages;
    }
    return true;
}

std::shared_ptr<Delivery> Outbox::take(const void* context) {
    std::lock_guard lock(mutex_);
    if (!queues_) return nullptr;
    auto it = queues_->in_flight.find(static_cast<const Delivery*>(context));
    if (it == queues_->in_flight.end()) return nullptr;
    auto delivery = std::move(it->second);
    queues_->in_flight.erase(it);
    return delivery;
}

std::shared_ptr<Delivery> Outbox::find(const void* context) const {
    std::lock_guard lock(mutex_);
    if (!queues_) return nullptr;
    auto it = queues_->in_flight.find(static_cast<const Delivery*>(context));
    return it == queues_->in_flight.end() ? nullptr : it->second;
}

void Outbox::restore(std::shared_ptr<Delivery> delivery) {
    std::lock_guard lock(mutex_);
    auto& box = queues();
    const auto sequence = delivery->sequence();
    box.waiting_bytes += delivery->size();
    ++box.waiting_messages;
    box.waiting.push_back(Waiting{std::move(delivery), sequence});
    spill_behind_last();
}

void Outbox::hold_for_paho(std::size_t count) {
    std::lock_guard lock(mutex_);
    held_by_paho_ += count;
}

bool Outbox::released_by_paho(std::size_t count) {
    std::lock_guard lock(mutex_);
    count = std::min(count, held_by_paho_);
    held_by_paho_ -= count;
    return count > 0;
}

std::shared_ptr<Delivery> Outbox::written_by_paho(int message_id) {
    std::lock_guard lock(mutex_);
    if (queues_) {
        for (const auto& [key, delivery] : queues_->in_flight) {
            if (delivery->message_id.load(std::memory_order_relaxed) == message_id) {
                return delivery->stored ? delivery : nullptr;
            }
        }
    }
    written_unclaimed_.push_back(message_id);
    return nullptr;
}

bool Outbox::claim(Delivery& delivery, int message_id) {
    std::lock_guard lock(mutex_);
    delivery.message_id.store(message_id, std::memory_order_relaxed);
    const auto it = std::find(written_unclaimed_.begin(), written_unclaimed_.end(), message_id);
    if (it == written_unclaimed_.end()) return false;
    written_unclaimed_.erase(it);
    return true;
}

void Outbox::forgotten_by_paho(int message_id) {
    std::lock_guard lock(mutex_);
    std::erase(written_unclaimed_, message_id);
}

void Outbox::forget_all_written() {
    std::lock_guard lock(mutex_);
    written_unclaimed_.clear();
}

std::vector<std::shared_ptr<Delivery>> Outbox::take_all() {
    std::vector<std::shared_ptr<Delivery>> all;
    std::lock_guard lock(mutex_);
    if (!queues_) return all;
    auto& box = *queues_;
    for (auto& [key, delivery] : box.in_flight) all.push_back(std::move(delivery));
    box.in_flight.clear();
    for (auto& waiting : box.waiting) {
        if (waiting.delivery) all.push_back(std::move(waiting.delivery));
    }
    box.waiting.clear();
    box.spilled_sizes.clear();
    box.waiting_messages = 0;
    box.waiting_bytes = 0;
    return all;
}

Outbox::GivenUp Outbox::connection_lost(std::uint32_t lost) {
    GivenUp given_up;
    std::lock_guard lock(mutex_);
    if (!queues_) return given_up;
    auto& box = *queues_;
    const Delivery* oldest = nullptr;
    for (const auto& [key, delivery] : box.in_flight) {
        if (!oldest || delivery->sequence() < oldest->sequence()) oldest = delivery.get();
    }
    // Back among the waiting ones already if Paho failed it before the connection's loss
    // was reported. (Spilled ones were never sent.)
    for (const auto& waiting : box.waiting) {
        if (oldest && waiting.sequence > oldest->sequence()) break;
        if (waiting.delivery && waiting.delivery->sent_in == lost) {
            oldest = waiting.delivery.get();
            break;
        }
    }
    if (!oldest) {
        suspect_drops_ = 0;
        return given_up;
    }
    if (oldest->sequence() == suspect_sequence_) {
        ++suspect_drops_;
    } else {
        suspect_sequence_ = oldest->sequence();
        suspect_drops_ = 1;
    }
    if (suspect_drops_ < limits_.max_publish_attempts) return given_up;
    suspect_drops_ = 0;
    if (auto it = box.in_flight.find(oldest); it != box.in_flight.end()) {
        given_up.delivery = std::move(it->second);
        given_up.held_by_paho = true;
        box.in_flight.erase(it);
    } else {
        auto at = std::find_if(box.waiting.begin(), box.waiting.end(),
                               [&](const Waiting& w) { return w.delivery.get() == oldest; });
        given_up.delivery = at->delivery;
        erase_waiting(at);
    }
    return given_up;
}

bool Outbox::has_waiting() const {
    std::lock_guard lock(mutex_);
    return queues_ && !queues_->waiting.empty();
}

Outbox::Stalled Outbox::handed_before(std::chrono::steady_clock::time_point cutoff) const {
    Stalled stalled;
    std::vector<const Delivery*> old;
    std::lock_guard lock(mutex_);
    if (!queues_) return stalled;
    for (const auto& [key, delivery] : queues_->in_flight) {
        if (delivery->handed_at < cutoff) old.push_back(delivery.get());
    }
    std::sort(old.begin(), old.end(),
              [](const Delivery* a, const Delivery* b) { return a->handed_at < b->handed_at; });
    for (const auto* delivery : old) {
        stalled.messages.emplace_back(delivery->message().get_qos(),
                                      delivery->message_id.load(std::memory_order_relaxed));
    }
    if (!old.empty()) stalled.oldest = old.front()->handed_at;
    return stalled;
}

}  // namespace mqttx::detail
