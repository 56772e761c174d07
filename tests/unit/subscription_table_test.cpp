#include "session/subscription_table.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mqttx::detail {
namespace {

using Removal = SubscriptionTable::Removal;

std::vector<std::string> filters(const std::vector<SubscriptionTable::Wanted>& wanted) {
    std::vector<std::string> out;
    for (const auto& w : wanted) out.push_back(w.filter);
    return out;
}

TEST(SubscriptionTable, RoutesShareOneBrokerSubscriptionPerFilter) {
    SubscriptionTable table;
    auto first = table.add_route("a/#", 1, {});
    EXPECT_TRUE(first.subscribe);
    EXPECT_EQ(first.qos, 1);
    EXPECT_FALSE(table.add_route("a/#", 1, {}).subscribe) << "same QoS: nothing to send";
    EXPECT_FALSE(table.add_route("a/#", 0, {}).subscribe) << "lower QoS: nothing to send";
    auto higher = table.add_route("a/#", 2, {});
    EXPECT_TRUE(higher.subscribe) << "a higher QoS subscribes again";
    EXPECT_EQ(higher.qos, 2);
    EXPECT_EQ(table.size(), 1u);

    EXPECT_EQ(table.remove_routes("a/#", 1), Removal::kept);
    EXPECT_EQ(table.remove_routes("a/#", 2), Removal::kept);
    EXPECT_EQ(table.remove_routes("a/#", 1), Removal::last);
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.remove_routes("a/#", 1), Removal::unknown);
}

TEST(SubscriptionTable, TheFirstRouteSetsTheOptions) {
    SubscriptionTable table;
    SubscribeOptions no_local;
    no_local.no_local = true;
    table.add_route("x", 0, no_local);
    auto second = table.add_route("x", 1, {});
    EXPECT_TRUE(second.options.no_local);
}

TEST(SubscriptionTable, UnacknowledgedFiltersAreMadeAtConnect) {
    SubscriptionTable table;
    table.add_route("a", 1, {});
    table.add_route("b", 2, {});
    EXPECT_EQ(filters(table.unacknowledged()), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(table.granted("a"), -1);
    table.acknowledge("a", 0);  // a downgrade from 1
    table.acknowledge("unknown", 1);
    EXPECT_EQ(filters(table.unacknowledged()), (std::vector<std::string>{"b"}));
    EXPECT_EQ(table.granted("a"), 0);
    EXPECT_EQ(table.asked_qos("a"), 1);
    EXPECT_EQ(table.granted("unknown"), -1);
    table.session_lost();
    EXPECT_EQ(filters(table.unacknowledged()), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(table.granted("a"), -1);  // not granted in the new session yet
    table.acknowledge("a", 1);
    table.add_route("a", 2, {});  // a higher QoS: the broker must hear it again
    EXPECT_EQ(filters(table.unacknowledged()), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(table.granted("a"), -1);
}

TEST(SubscriptionTable, OwedUnsubscribesAreCancelledByANewRouteAndTakenOnce) {
    SubscriptionTable table;
    table.unsubscribe_later("a");
    table.unsubscribe_later("b");
    table.add_route("a", 0, {});
    EXPECT_EQ(table.take_pending_unsubscribes(), (std::vector<std::string>{"b"}));
    EXPECT_TRUE(table.take_pending_unsubscribes().empty());
    table.unsubscribe_later("c");
    table.session_lost();  // the broker has no session to unsubscribe from
    EXPECT_TRUE(table.take_pending_unsubscribes().empty());
}

TEST(SubscriptionTable, StoresSharedFiltersApartAndCarriedOnesNoFilterHolds) {
    SubscriptionTable table;
    SubscribeOptions shared;
    shared.share_group = "g";
    table.add_route(SubscriptionTable::broker_filter("s/#", "g"), 1, shared);
    table.add_route("plain", 0, {});
    table.carry({{"s/#", 2, shared}, {"old/+", 1, {}}, {"gone", 0, {}}});
    table.forget_carried("gone");
    const auto stored = table.to_store();
    ASSERT_EQ(stored.size(), 3u);
    EXPECT_EQ(stored[0].filter, "s/#");
    EXPECT_EQ(stored[0].options.share_group, "g");
    EXPECT_EQ(stored[0].qos, 1) << "the live filter wins over the carried copy";
    EXPECT_EQ(stored[1].filter, "plain");
    EXPECT_EQ(stored[2].filter, "old/+");

    table.clear();
    EXPECT_EQ(table.size(), 0u);
    EXPECT_EQ(table.to_store().size(), 2u) << "carried ones stay: the broker keeps them";
}

}  // namespace
}  // namespace mqttx::detail
