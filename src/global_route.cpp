#include "global_route.hpp"

#include <algorithm>

#include "session/session_core.hpp"

namespace mqttx::detail {

GlobalRoute::GlobalRoute(std::string filter, int qos, MessageHandler handler,
                         SubscribeOptions options, std::weak_ptr<GlobalRoutes> owner)
    : filter_(std::move(filter)),
      qos_(qos),
      handler_(std::move(handler)),
      options_(std::move(options)),
      owner_(std::move(owner)) {}

void GlobalRoute::apply_to(const std::shared_ptr<SessionCore>& session) {
    std::lock_guard applying(apply_mutex_);
    {
        std::lock_guard lock(mutex_);
        if (stopped_ || !applied_.insert(session.get()).second) return;
    }
    std::shared_ptr<RouteEntry> entry;
    try {
        entry = session->subscribe(filter_, qos_, handler_, options_);
    } catch (...) {
        std::lock_guard lock(mutex_);
        applied_.erase(session.get());
        throw;
    }
    std::lock_guard lock(mutex_);
    entries_.emplace_back(session.get(), std::move(entry));
}

void GlobalRoute::stop() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
    }
    // Waits for an apply_to() in progress, so no entry appears after this, but is not
    // held while the entries stop (their handlers may call stop() too).
    { std::lock_guard applying(apply_mutex_); }
    std::vector<std::shared_ptr<RouteEntry>> entries;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [session, entry] : entries_) entries.push_back(entry);
    }
    if (auto owner = owner_.lock()) owner->remove(this);
    for (auto& entry : entries) entry->stop();
}

void GlobalRoute::forget(const SessionCore* session) noexcept {
    std::lock_guard lock(mutex_);
    applied_.erase(session);
    std::erase_if(entries_, [session](const auto& applied) { return applied.first == session; });
}

bool GlobalRoute::active() const noexcept {
    std::lock_guard lock(mutex_);
    return !stopped_;
}

RouteStats GlobalRoute::stats() const noexcept {
    RouteStats total;
    std::lock_guard lock(mutex_);
    for (const auto& [session, entry] : entries_) {
        const auto s = entry->stats();
        total.received += s.received;
        total.dropped += s.dropped;
        total.bytes += s.bytes;
        total.errors += s.errors;
        total.last_message = std::max(total.last_message, s.last_message);
    }
    return total;
}

void GlobalRoutes::add(const std::shared_ptr<GlobalRoute>& route) {
    std::lock_guard lock(mutex_);
    routes_.push_back(route);
}

void GlobalRoutes::remove(const GlobalRoute* route) noexcept {
    std::lock_guard lock(mutex_);
    std::erase_if(routes_, [route](const auto& r) { return r.get() == route; });
}

void GlobalRoutes::forget(const SessionCore* session) noexcept {
    for (const auto& route : snapshot()) route->forget(session);
}

std::vector<std::shared_ptr<GlobalRoute>> GlobalRoutes::snapshot() const {
    std::lock_guard lock(mutex_);
    return routes_;
}

}  // namespace mqttx::detail
