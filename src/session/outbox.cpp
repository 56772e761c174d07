#include "session/outbox.hpp"

#include <algorithm>

namespace mqttx::detail {

Outbox::Queues& Outbox::queues() {
    if (!queues_) queues_ = std::make_unique<Queues>();
    return *queues_;
}

void Outbox::insert_waiting(std::shared_ptr<Delivery> delivery) {
    auto& waiting = queues().waiting;
    auto later = std::upper_bound(
        waiting.begin(), waiting.end(), delivery->sequence(),
        [](std::uint64_t sequence, const auto& d) { return sequence < d->sequence(); });
    waiting.insert(later, std::move(delivery));
}

Outbox::Admission Outbox::admit(const std::shared_ptr<Delivery>& delivery, bool may_hand_off,
                                const std::atomic<bool>& ready, std::uint32_t link) {
    Admission admission;
    std::lock_guard lock(mutex_);
    auto& box = queues();
    if (may_hand_off && box.waiting.empty() && box.in_flight.size() < limits_.window &&
        ready.load(std::memory_order_acquire)) {
        box.in_flight.emplace(delivery.get(), delivery);  // before Paho may report on it
        delivery->sent_in = link;
        admission.in_flight = true;
        return admission;
    }
    if (box.waiting.size() >= limits_.max_pending) {
        if (limits_.overflow == BufferOverflow::reject) {
            admission.rejected = true;
            return admission;
        }
        admission.dropped = std::move(box.waiting.front());
        box.waiting.pop_front();
    }
    box.waiting.push_back(delivery);
    return admission;
}

std::shared_ptr<Delivery> Outbox::next(std::uint32_t link) {
    std::lock_guard lock(mutex_);
    if (!queues_ || queues_->waiting.empty() || queues_->in_flight.size() >= limits_.window) {
        return nullptr;
    }
    auto next = std::move(queues_->waiting.front());
    queues_->waiting.pop_front();
    queues_->in_flight.emplace(next.get(), next);
    next->sent_in = link;
    return next;
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
    queues().waiting.push_back(std::move(delivery));
}

std::shared_ptr<Delivery> Outbox::stored_in_flight(int message_id) {
    std::lock_guard lock(mutex_);
    if (!queues_) return nullptr;
    for (const auto& [key, delivery] : queues_->in_flight) {
        if (delivery->stored && delivery->message_id.load() == message_id) return delivery;
    }
    return nullptr;
}

std::vector<std::shared_ptr<Delivery>> Outbox::take_all() {
    std::vector<std::shared_ptr<Delivery>> all;
    std::lock_guard lock(mutex_);
    if (!queues_) return all;
    for (auto& [key, delivery] : queues_->in_flight) all.push_back(std::move(delivery));
    queues_->in_flight.clear();
    for (auto& delivery : queues_->waiting) all.push_back(std::move(delivery));
    queues_->waiting.clear();
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
    // was reported.
    for (const auto& delivery : box.waiting) {
        if (oldest && delivery->sequence() > oldest->sequence()) break;
        if (delivery->sent_in == lost) {
            oldest = delivery.get();
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
                               [&](const auto& d) { return d.get() == oldest; });
        given_up.delivery = std::move(*at);
        box.waiting.erase(at);
    }
    return given_up;
}

bool Outbox::has_waiting() const {
    std::lock_guard lock(mutex_);
    return queues_ && !queues_->waiting.empty();
}

}  // namespace mqttx::detail
