#include "session/subscription_table.hpp"

#include <algorithm>
#include <utility>

namespace mqttx::detail {

std::string SubscriptionTable::broker_filter(std::string_view filter,
                                             const std::string& share_group) {
    std::string full;
    if (!share_group.empty()) full = "$share/" + share_group + "/";
    full += filter;
    return full;
}

SubscriptionTable::Added SubscriptionTable::add_route(const std::string& filter, int qos,
                                                      const SubscribeOptions& options) {
    Added added;
    auto& state = filters_[filter];
    ++state.routes;
    if (state.routes == 1) state.options = options;
    if (state.routes == 1 || qos > state.qos) {
        state.qos = std::max(state.qos, qos);
        state.acknowledged = false;
        state.granted = -1;
        added.subscribe = true;
    }
    added.qos = state.qos;
    added.options = state.options;
    pending_unsubscribes_.erase(filter);
    return added;
}

SubscriptionTable::Removal SubscriptionTable::remove_routes(std::string_view filter, int count) {
    auto it = filters_.find(filter);
    if (it == filters_.end()) return Removal::unknown;
    it->second.routes -= count;
    if (it->second.routes > 0) return Removal::kept;
    filters_.erase(it);
    return Removal::last;
}

void SubscriptionTable::acknowledge(std::string_view filter, int granted) {
    if (auto it = filters_.find(filter); it != filters_.end()) {
        it->second.acknowledged = true;
        it->second.granted = granted;
    }
}

int SubscriptionTable::granted(std::string_view filter) const {
    const auto it = filters_.find(filter);
    return it != filters_.end() && it->second.acknowledged ? it->second.granted : -1;
}

int SubscriptionTable::asked_qos(std::string_view filter) const {
    const auto it = filters_.find(filter);
    return it != filters_.end() ? it->second.qos : -1;
}

void SubscriptionTable::session_lost() {
    for (auto& [filter, state] : filters_) {
        state.acknowledged = false;
        state.granted = -1;
    }
    pending_unsubscribes_.clear();
}

std::vector<SubscriptionTable::Wanted> SubscriptionTable::unacknowledged() const {
    std::vector<Wanted> wanted;
    for (const auto& [filter, state] : filters_) {
        if (!state.acknowledged) wanted.push_back({filter, state.qos, state.options});
    }
    return wanted;
}

void SubscriptionTable::unsubscribe_later(std::string filter) {
    pending_unsubscribes_.insert(std::move(filter));
}

std::vector<std::string> SubscriptionTable::take_pending_unsubscribes() {
    std::vector<std::string> taken(pending_unsubscribes_.begin(), pending_unsubscribes_.end());
    pending_unsubscribes_.clear();
    return taken;
}

void SubscriptionTable::carry(std::vector<StoredSubscription> subscriptions) {
    carried_ = std::move(subscriptions);
}

void SubscriptionTable::forget_carried(std::string_view filter) {
    std::erase_if(carried_, [&](const auto& s) {
        return broker_filter(s.filter, s.options.share_group) == filter;
    });
}

std::vector<StoredSubscription> SubscriptionTable::to_store() const {
    std::vector<StoredSubscription> stored;
    for (const auto& [filter, state] : filters_) {
        // The key of a shared subscription is "$share/<group>/<filter>".
        const auto& group = state.options.share_group;
        stored.push_back(
            {group.empty() ? filter : filter.substr(group.size() + 8), state.qos, state.options});
    }
    for (const auto& subscription : carried_) {
        if (!filters_.contains(
                broker_filter(subscription.filter, subscription.options.share_group))) {
            stored.push_back(subscription);
        }
    }
    return stored;
}

void SubscriptionTable::clear() {
    filters_.clear();
    pending_unsubscribes_.clear();
}

}  // namespace mqttx::detail
