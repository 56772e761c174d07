#include "paho_waker.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "session/session_core.hpp"

namespace mqttx::detail {

std::string PahoWaker::wake_topic(const std::string& client_id) {
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016zx", std::hash<std::string>{}(client_id));
    return std::string("mqttx/wake/") + hash;
}

void PahoWaker::add(std::weak_ptr<SessionCore> session) {
    std::lock_guard lock(mutex_);
    // Swept when the list has doubled since the last sweep: adding 10,000 sessions stays
    // linear.
    if (sessions_.size() >= 2 * swept_size_) {
        std::erase_if(sessions_, [](const auto& weak) { return weak.expired(); });
        swept_size_ = std::max<std::size_t>(sessions_.size(), 16);
    }
    sessions_.push_back(std::move(session));
}

void PahoWaker::connect_started(const SessionCore* session) {
    if (!enabled_) return;
    {
        std::lock_guard lock(mutex_);
        last_started_ = Clock::now();
        connecting_[session] = last_started_;
        if (ticking_) return;
        ticking_ = true;
    }
    if (!scheduler_.post([this] { tick(); })) {
        std::lock_guard lock(mutex_);
        ticking_ = false;
    }
}

void PahoWaker::connect_finished(const SessionCore* session) {
    std::lock_guard lock(mutex_);
    connecting_.erase(session);
}

std::shared_ptr<SessionCore> PahoWaker::pick_waker() {
    auto usable = [this](const std::shared_ptr<SessionCore>& s) {
        return s && s->state() == SessionState::connected && !connecting_.contains(s.get());
    };
    if (auto current = waker_.lock(); usable(current)) return current;
    for (const auto& weak : sessions_) {
        if (auto candidate = weak.lock(); usable(candidate)) {
            waker_ = candidate;
            return candidate;
        }
    }
    return nullptr;
}

// Runs on the scheduler thread; calls Paho without holding mutex_.
void PahoWaker::tick() {
    std::shared_ptr<SessionCore> waker;
    auto next = interval;
    {
        std::lock_guard lock(mutex_);
        const auto now = Clock::now();
        // Not at every tick: with thousands of sessions connecting, a pass over all of
        // them each millisecond would take the CPU their connects need.
        if (now - last_swept_ >= sweep_interval) {
            std::erase_if(connecting_,
                          [now](const auto& entry) { return now - entry.second > give_up_after; });
            last_swept_ = now;
        }
        if (connecting_.empty()) {
            ticking_ = false;
            return;
        }
        if (now - last_started_ < fast_phase) next = fast_interval;
        waker = pick_waker();
    }
    if (waker) waker->poke_broker();
    if (!scheduler_.post_after(next, [this] { tick(); })) {
        std::lock_guard lock(mutex_);
        ticking_ = false;
    }
}

}  // namespace mqttx::detail
