// SubscriptionTable: the broker subscriptions a session wants, one per filter however
// many routes share it ("$share/<group>/<filter>" for a shared one), with what the
// broker has acknowledged in the current connection; the UNSUBSCRIBEs owed to a
// persistent session's broker since it went offline; and the saved subscriptions of a
// previous run that no route took, which the broker keeps until they are unsubscribed.
//
// Bookkeeping only: it sends nothing. Not thread-safe: the session guards it.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mqttx/storage.hpp"
#include "mqttx/subscribe_options.hpp"

namespace mqttx::detail {

class SubscriptionTable {
  public:
    struct Filter {
        int qos = 0;
        int routes = 0;
        bool acknowledged = false;  // the broker has it in the current session
        int granted = -1;           // the QoS it granted, while acknowledged
        SubscribeOptions options;   // of the first route on the filter
    };

    // One route more on `filter`. A SUBSCRIBE is due for its first route, or when it
    // asks for a higher QoS than the broker granted so far: `subscribe` says so, with
    // the QoS and options to send.
    struct Added {
        bool subscribe = false;
        int qos = 0;
        SubscribeOptions options;
    };
    Added add_route(const std::string& filter, int qos, const SubscribeOptions& options);

    // `count` routes of `filter` gone. `last`: that was every route, the filter is gone
    // (the broker subscription may go); `kept`: routes remain; `unknown`: no such filter.
    enum class Removal { kept, last, unknown };
    Removal remove_routes(std::string_view filter, int count);

    // The broker granted `filter` in the current session (at QoS `granted`; -1: unknown).
    void acknowledge(std::string_view filter, int granted);
    // The QoS the broker granted `filter` in the current session; -1 when not known.
    int granted(std::string_view filter) const;
    // The QoS asked for `filter` (the highest of its routes); -1 for no such filter.
    int asked_qos(std::string_view filter) const;
    // A connect without the broker's session: nothing is acknowledged any more, and
    // nothing is left to unsubscribe from.
    void session_lost();
    // The filters the broker does not have yet, to subscribe at connect.
    struct Wanted {
        std::string filter;
        int qos = 0;
        SubscribeOptions options;
    };
    std::vector<Wanted> unacknowledged() const;

    // An UNSUBSCRIBE that could not be sent now: owed to the broker at the next connect
    // (until a route subscribes to the filter again).
    void unsubscribe_later(std::string filter);
    std::vector<std::string> take_pending_unsubscribes();

    // Saved subscriptions of the last run that no route took.
    void carry(std::vector<StoredSubscription> subscriptions);
    void forget_carried(std::string_view filter);

    // What the session state saves: every filter (its own filter and group apart), then
    // the carried ones that no filter holds.
    std::vector<StoredSubscription> to_store() const;

    std::size_t size() const noexcept { return filters_.size(); }
    // Forgets the filters and the owed UNSUBSCRIBEs (at close; the carried ones stay).
    void clear();

    // The filter the broker knows a subscription by.
    static std::string broker_filter(std::string_view filter, const std::string& share_group);

  private:
    std::map<std::string, Filter, std::less<>> filters_;
    std::set<std::string, std::less<>> pending_unsubscribes_;
    std::vector<StoredSubscription> carried_;
};

}  // namespace mqttx::detail
