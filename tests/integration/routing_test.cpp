// Routing and events against a real mosquitto: handle/handle_to/listen/listen_to,
// route lifetimes, overlapping and shared subscriptions, channels, dispatcher threads.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "support/collector.hpp"
#include "support/error_kind.hpp"
#include "support/fake_broker.hpp"
#include "support/mosquitto.hpp"
#include "support/sync.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::test::Collector;
using mqttx::test::error_kind_of;
using mqttx::test::wait_until;

class RoutingTest : public ::testing::Test {
  protected:
    explicit RoutingTest(mqttx::test::BrokerOptions broker_options = {},
                         mqttx::ManagerOptions manager_options = {})
        : broker(std::move(broker_options)), manager(std::move(manager_options)) {}

    std::shared_ptr<mqttx::Session> add(const std::string& name,
                                        mqttx::Protocol protocol = mqttx::Protocol::v311) {
        return manager.add_session(
            mqttx::quick_connect(name, broker.uri()).protocol(protocol).build());
    }
    void connect_all() {
        manager.connect_all();
        manager.wait_for_all_sessions(20s);
    }
    // Publishes `count` QoS 1 messages with payloads "0".."count-1" and waits for each.
    static void publish_numbers(mqttx::Session& session, const std::string& topic, int count) {
        for (int i = 0; i < count; ++i) {
            ASSERT_TRUE(session.publish(topic, std::to_string(i), 1).wait_for(20s));
        }
    }
    static std::vector<std::string> payloads(const std::vector<mqttx::test::Received>& messages) {
        std::vector<std::string> out;
        for (const auto& m : messages) out.push_back(m.payload);
        return out;
    }

    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
};

TEST_F(RoutingTest, HandleCoversEverySessionIncludingLaterOnes) {
    auto early = add("early");
    Collector inbox;
    auto route = manager.handle("fleet/#", inbox.handler(), 1);
    auto late = add("late");
    connect_all();

    early->publish("fleet/x", "hello", 1).wait();
    ASSERT_TRUE(inbox.wait_for(2));
    std::multiset<std::string> sessions;
    for (const auto& m : inbox.messages()) sessions.insert(m.session);
    EXPECT_EQ(sessions, (std::multiset<std::string>{"early", "late"}));
    EXPECT_EQ(route.stats().received, 2u);
    EXPECT_EQ(inbox.messages().front().qos, 1);  // the caller's QoS, not 0
}

TEST_F(RoutingTest, HandleToListensOnOneSessionOnly) {
    auto a = add("a");
    auto b = add("b");
    Collector only_a;
    Collector sentinel;
    auto route = manager.handle_to("a", "one/#", only_a.handler(), 1);
    auto marker = manager.handle_to("b", "one/#", sentinel.handler(), 1);
    connect_all();
    b->publish("one/x", "1", 1).wait();
    ASSERT_TRUE(only_a.wait_for(1));
    ASSERT_TRUE(sentinel.wait_for(1));
    EXPECT_EQ(only_a.size(), 1u);
    EXPECT_EQ(only_a.messages().front().session, "a");
    EXPECT_EQ(error_kind_of([&] { manager.handle_to("nope", "x", only_a.handler()); }),
              ErrorKind::session_not_found);
}

TEST_F(RoutingTest, ListenToDeliversIntoAChannelIterableWithRangeFor) {
    auto sub = add("sub");
    auto pub = add("pub");
    auto [channel, route] = manager.listen_to("sub", "chan/#", 1);
    EXPECT_EQ(channel.capacity(), sub->options().message_channel_size);
    connect_all();
    publish_numbers(*pub, "chan/n", 5);

    std::vector<std::string> got;
    for (const auto& message : channel) {
        got.push_back(message.payload_string());
        EXPECT_EQ(message.topic(), "chan/n");
        if (got.size() == 5) break;
    }
    EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
    EXPECT_FALSE(channel.try_pop().has_value());
    EXPECT_FALSE(channel.pop_for(10ms).has_value());

    route.stop();
    EXPECT_TRUE(channel.closed());
    EXPECT_FALSE(channel.pop().has_value()) << "pop() on a closed, empty channel must return";
}

TEST_F(RoutingTest, ListenCoversEverySession) {
    auto a = add("a");
    auto b = add("b");
    auto listener = manager.listen("all/#", 1);
    connect_all();
    a->publish("all/x", "p", 1).wait();
    std::set<std::string> sessions;
    for (int i = 0; i < 2; ++i) {
        auto message = listener.channel.pop_for(20s);
        ASSERT_TRUE(message.has_value());
        sessions.insert(std::string(message->session()));
    }
    EXPECT_EQ(sessions, (std::set<std::string>{"a", "b"}));
}

TEST_F(RoutingTest, StoppedRouteNeverRunsItsHandlerAgainWhileMessagesFlow) {
    auto sub = add("sub");
    auto pub = add("pub");
    std::atomic<int> calls{0};
    auto route = sub->subscribe("flow/#", 0, [&](const mqttx::Message&) { ++calls; });
    Collector sentinel;
    auto marker = sub->subscribe("sentinel", 1, sentinel.handler());
    connect_all();

    std::atomic<bool> running{true};
    std::thread flood([&] {
        while (running) {
            try {
                pub->publish("flow/x", "payload", 0);
            } catch (const mqttx::Error&) {
                // buffer full: keep going
            }
        }
    });
    ASSERT_TRUE(wait_until([&] { return calls > 50; }));
    route.stop();
    const int at_stop = calls;
    running = false;
    flood.join();
    mqttx::DeliveryToken done;
    ASSERT_TRUE(wait_until([&] {  // the flood may have filled the publish buffer
        try {
            done = pub->publish("sentinel", "done", 1);
            return true;
        } catch (const mqttx::Error& e) {
            return e.kind() == mqttx::ErrorKind::buffer_full ? false : throw;
        }
    }));
    done.wait();
    ASSERT_TRUE(sentinel.wait_for(1));
    EXPECT_EQ(calls, at_stop) << "the handler ran after stop() returned";
    EXPECT_FALSE(route.active());
}

TEST_F(RoutingTest, OverlappingFiltersDeliverOncePerMatchingRoute) {
    auto sub = add("sub");
    auto pub = add("pub");
    Collector all;
    Collector one_level;
    auto hash = sub->subscribe("ov/#", 1, all.handler());
    auto plus = sub->subscribe("ov/+", 1, one_level.handler());
    connect_all();
    pub->publish("ov/a", "1", 1).wait();
    pub->publish("ov/a/b", "2", 1).wait();
    ASSERT_TRUE(all.wait_for(2));
    ASSERT_TRUE(one_level.wait_for(1));
    EXPECT_EQ(payloads(all.messages()), (std::vector<std::string>{"1", "2"}));
    EXPECT_EQ(payloads(one_level.messages()), (std::vector<std::string>{"1"}));
}

TEST_F(RoutingTest, HandlerThatThrowsIsCountedAndDeliveryGoesOn) {
    auto sub = add("sub");
    auto pub = add("pub");
    Collector after;
    auto thrower = sub->subscribe(
        "boom", 1, [](const mqttx::Message&) { throw std::runtime_error("handler failure"); });
    auto next = sub->subscribe("boom", 1, after.handler());
    connect_all();
    pub->publish("boom", "1", 1).wait();
    pub->publish("boom", "2", 1).wait();
    ASSERT_TRUE(after.wait_for(2));
    EXPECT_EQ(thrower.stats().errors, 2u);
    EXPECT_EQ(thrower.stats().received, 2u);
    EXPECT_EQ(sub->metrics().errors, 2u);
}

TEST_F(RoutingTest, HandlersMayStopTheirOwnAndEachOthersRoutes) {
    auto a = add("a");
    auto b = add("b");
    auto pub = add("pub");
    // A manager-wide route stopped by its own handler, on whichever session runs first.
    std::promise<void> self_stopped;
    std::atomic<bool> once{false};
    mqttx::Route self;
    self = manager.handle(
        "self/#",
        [&](const mqttx::Message&) {
            if (!once.exchange(true)) {
                self.stop();
                self_stopped.set_value();
            }
        },
        1);
    // Two routes (on two dispatcher threads) whose handlers, both running, stop each
    // other's route: neither may wait for the other.
    mqttx::Route on_a;
    mqttx::Route on_b;
    std::atomic<int> entered{0};
    std::atomic<int> crossed{0};
    auto stop_other = [&](mqttx::Route& other) {
        ++entered;
        wait_until([&] { return entered == 2; });  // both handlers are running now
        other.stop();
        ++crossed;
    };
    on_a = a->subscribe("cross", 1, [&](const mqttx::Message&) { stop_other(on_b); });
    on_b = b->subscribe("cross", 1, [&](const mqttx::Message&) { stop_other(on_a); });
    connect_all();
    pub->publish("self/x", "1", 1).wait();
    ASSERT_EQ(self_stopped.get_future().wait_for(20s), std::future_status::ready);
    pub->publish("cross", "1", 1).wait();
    ASSERT_TRUE(wait_until([&] { return crossed == 2; })) << "the handlers deadlocked";
    EXPECT_FALSE(on_a.active());
    EXPECT_FALSE(on_b.active());
    EXPECT_FALSE(self.active());
}

class SysTopicTest : public RoutingTest {
  protected:
    SysTopicTest() : RoutingTest(mqttx::test::BrokerOptions{false, "sys_interval 1\n", 0}) {}
};

TEST_F(SysTopicTest, HashDoesNotMatchDollarTopics) {
    auto sub = add("sub");
    Collector everything;
    Collector sys;
    auto hash = sub->subscribe("#", 0, everything.handler());
    auto plus = sub->subscribe("+/broker/#", 0, everything.handler());
    auto dollar = sub->subscribe("$SYS/#", 0, sys.handler());
    connect_all();
    ASSERT_TRUE(sys.wait_for(1)) << "mosquitto published no $SYS topic";
    for (const auto& m : sys.messages()) EXPECT_EQ(m.topic.rfind("$SYS/", 0), 0u);
    for (const auto& m : everything.messages()) {
        EXPECT_NE(m.topic.front(), '$') << m.topic << " matched a wildcard-first filter";
    }
}

TEST_F(RoutingTest, SharedSubscriptionGivesEachMessageToExactlyOneMember) {
    auto worker_a = add("worker-a", mqttx::Protocol::v5);
    auto worker_b = add("worker-b", mqttx::Protocol::v5);
    auto pub = add("pub", mqttx::Protocol::v5);
    Collector inbox;
    mqttx::SubscribeOptions shared;
    shared.share_group = "workers";
    auto route_a = worker_a->subscribe("jobs/#", 1, inbox.handler(), shared);
    auto route_b = worker_b->subscribe("jobs/#", 1, inbox.handler(), shared);
    EXPECT_EQ(route_a.filter(), "$share/workers/jobs/#");
    connect_all();
    publish_numbers(*pub, "jobs/run", 20);

    ASSERT_TRUE(inbox.wait_for(20));
    std::map<std::string, int> per_payload;
    std::map<std::string, int> per_session;
    for (const auto& m : inbox.messages()) {
        ++per_payload[m.payload];
        ++per_session[m.session];
    }
    EXPECT_EQ(per_payload.size(), 20u);
    for (const auto& [payload, count] : per_payload) EXPECT_EQ(count, 1) << payload;
    EXPECT_GT(per_session["worker-a"], 0);
    EXPECT_GT(per_session["worker-b"], 0);
}

TEST_F(RoutingTest, NoLocalKeepsOwnPublishesAway) {
    auto self = add("self", mqttx::Protocol::v5);
    auto other = add("other", mqttx::Protocol::v5);
    Collector inbox;
    mqttx::SubscribeOptions options;
    options.no_local = true;
    auto route = self->subscribe("echo/#", 1, inbox.handler(), options);
    connect_all();
    self->publish("echo/self", "mine", 1).wait();
    other->publish("echo/other", "theirs", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(payloads(inbox.messages()), std::vector<std::string>{"theirs"});
}

TEST_F(RoutingTest, RetainHandlingDoNotSendSkipsRetainedMessages) {
    auto pub = add("pub", mqttx::Protocol::v5);
    auto sub = add("sub", mqttx::Protocol::v5);
    connect_all();
    pub->publish("kept/state", "old", 1, true).wait();

    Collector plain;
    Collector skipping;
    mqttx::SubscribeOptions skip;
    skip.retain_handling = mqttx::RetainHandling::do_not_send;
    auto without = sub->subscribe("kept/#", 1, skipping.handler(), skip);
    auto with = pub->subscribe("kept/#", 1, plain.handler());
    ASSERT_TRUE(plain.wait_for(1));  // the retained message exists and is sent normally
    EXPECT_TRUE(plain.messages().front().retained);
    pub->publish("kept/state", "new", 1, false).wait();
    ASSERT_TRUE(skipping.wait_for(1));
    EXPECT_EQ(payloads(skipping.messages()), std::vector<std::string>{"new"});
}

TEST_F(RoutingTest, RetainAsPublishedKeepsTheRetainFlag) {
    auto pub = add("pub", mqttx::Protocol::v5);
    auto sub = add("sub", mqttx::Protocol::v5);
    Collector normal;
    Collector as_published;
    mqttx::SubscribeOptions keep;
    keep.retain_as_published = true;
    auto a = sub->subscribe("flag/#", 1, normal.handler());
    auto b = pub->subscribe("flag/#", 1, as_published.handler(), keep);
    connect_all();
    pub->publish("flag/x", "live", 1, true).wait();
    ASSERT_TRUE(normal.wait_for(1));
    ASSERT_TRUE(as_published.wait_for(1));
    // MQTT 5 3.3.1.3: a live message to an existing subscription goes out with retain 0
    // unless the subscription asked for retain as published.
    EXPECT_FALSE(normal.messages().front().retained);
    EXPECT_TRUE(as_published.messages().front().retained);
}

TEST_F(RoutingTest, Mqtt5OnlyOptionsOnAnMqtt311SessionAreRefused) {
    auto old = add("old");
    auto modern = add("modern", mqttx::Protocol::v5);
    mqttx::SubscribeOptions options;
    options.no_local = true;
    auto ignore = [](const mqttx::Message&) {};
    EXPECT_EQ(error_kind_of([&] { old->subscribe("x", 0, ignore, options); }),
              ErrorKind::configuration);
    // A manager-wide route that one session cannot take is not registered at all.
    EXPECT_EQ(error_kind_of([&] { manager.handle("y", ignore, 0, options); }),
              ErrorKind::configuration);
    EXPECT_EQ(modern->metrics().active_subscriptions, 0u);
    EXPECT_EQ(old->metrics().active_subscriptions, 0u);

    manager.remove_session("old");
    auto route = manager.handle("y", ignore, 0, options);
    EXPECT_EQ(modern->metrics().active_subscriptions, 1u);
    // ...and a session that cannot take an existing one is not added.
    EXPECT_EQ(error_kind_of([&] { add("newcomer"); }), ErrorKind::configuration);
    EXPECT_EQ(manager.list_sessions(), std::vector<std::string>{"modern"});
}

struct OverflowCase {
    mqttx::Overflow overflow;
    std::vector<std::string> kept;
    std::uint64_t dropped;
    friend void PrintTo(const OverflowCase& c, std::ostream* os) {
        *os << "overflow policy " << static_cast<int>(c.overflow);
    }
};

class ChannelOverflow : public RoutingTest, public ::testing::WithParamInterface<OverflowCase> {};

TEST_P(ChannelOverflow, DropsExactlyWhatThePolicySays) {
    const auto& c = GetParam();
    auto sub = add("sub");
    auto pub = add("pub");
    auto [channel, route] =
        manager.listen_to("sub", "of/#", 1, mqttx::ChannelOptions{5, c.overflow, 20ms});
    connect_all();
    publish_numbers(*pub, "of/n", 20);
    // Every message either sits in the channel or was dropped.
    ASSERT_TRUE(
        wait_until([&, &channel = channel] { return channel.size() + channel.dropped() == 20; }));
    EXPECT_EQ(channel.dropped(), c.dropped);
    EXPECT_EQ(route.stats().dropped, c.dropped);
    std::vector<std::string> kept;
    while (auto message = channel.try_pop()) kept.push_back(message->payload_string());
    EXPECT_EQ(kept, c.kept);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, ChannelOverflow,
    ::testing::Values(OverflowCase{mqttx::Overflow::drop_newest, {"0", "1", "2", "3", "4"}, 15},
                      OverflowCase{
                          mqttx::Overflow::drop_oldest, {"15", "16", "17", "18", "19"}, 15},
                      // Nobody drains: each of the 15 extra waits 20 ms, then is dropped.
                      OverflowCase{mqttx::Overflow::block, {"0", "1", "2", "3", "4"}, 15}));

TEST_F(RoutingTest, BlockingChannelLosesNothingWhenDrained) {
    auto sub = add("sub");
    auto pub = add("pub");
    auto [channel, route] =
        manager.listen_to("sub", "blk/#", 1, mqttx::ChannelOptions{2, mqttx::Overflow::block, 20s});
    connect_all();
    std::vector<std::string> got;
    std::thread consumer([&, &channel = channel] {
        while (got.size() < 50) {
            auto message = channel.pop_for(20s);
            if (!message) return;
            got.push_back(message->payload_string());
        }
    });
    publish_numbers(*pub, "blk/n", 50);
    consumer.join();
    ASSERT_EQ(got.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i], std::to_string(i));
    EXPECT_EQ(channel.dropped(), 0u);
}

class TwoDispatchers : public RoutingTest {
  protected:
    static mqttx::ManagerOptions two_threads() {
        mqttx::ManagerOptions options;
        options.dispatcher_threads = 2;
        return options;
    }
    TwoDispatchers() : RoutingTest({}, two_threads()) {}
};

TEST_F(TwoDispatchers, SlowHandlerOnOneSessionDoesNotStallAnother) {
    auto slow = add("slow");  // dispatcher thread 0
    auto fast = add("fast");  // dispatcher thread 1
    auto pub = add("pub");
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> slow_entered{false};
    Collector slow_inbox;
    auto blocker = slow->subscribe("work", 1, [&, released](const mqttx::Message& m) {
        slow_entered = true;
        released.wait();
        slow_inbox.add(m);
    });
    Collector fast_inbox;
    auto quick = fast->subscribe("work", 1, fast_inbox.handler());
    connect_all();

    publish_numbers(*pub, "work", 3);
    ASSERT_TRUE(fast_inbox.wait_for(3)) << "the fast session waited for the slow one";
    // The slow session's first message may reach its worker a moment after the fast
    // session's third: wait for it rather than expect it.
    EXPECT_TRUE(mqttx::test::eventually([&] { return slow_entered.load(); }));
    EXPECT_EQ(slow_inbox.size(), 0u);
    release.set_value();
    ASSERT_TRUE(slow_inbox.wait_for(3));
    EXPECT_EQ(payloads(slow_inbox.messages()), (std::vector<std::string>{"0", "1", "2"}));
}

TEST_F(RoutingTest, EventHandlerMayReenterTheManager) {
    std::promise<void> child_ready;
    std::atomic<bool> spawned{false};
    Collector child_inbox;  // declared before the route that feeds it, so it outlives it
    std::shared_ptr<mqttx::Session> child;
    mqttx::Route child_route;
    auto on_ready = manager.on_event(mqttx::EventType::session_ready, [&](const mqttx::Event& e) {
        if (e.session == "parent" && !spawned.exchange(true)) {
            child = manager.add_session(mqttx::quick_connect("child", broker.uri()).build());
            child_route = child->subscribe("family/#", 1, child_inbox.handler());
            manager.connect("child");
        } else if (e.session == "child") {
            child_ready.set_value();
        }
    });
    auto on_added = manager.on_event(mqttx::EventType::session_added, [&](const mqttx::Event& e) {
        if (e.session == "ephemeral") manager.remove_session("ephemeral");
    });
    add("parent");
    add("ephemeral");
    manager.connect("parent");
    ASSERT_EQ(child_ready.get_future().wait_for(20s), std::future_status::ready);
    ASSERT_TRUE(wait_until([&] {
        const auto names = manager.list_sessions();
        return std::find(names.begin(), names.end(), "ephemeral") == names.end();
    }));
    manager.publish_to("parent", "family/hello", "hi", 1).wait();
    ASSERT_TRUE(child_inbox.wait_for(1));
}

// mosquitto 2.0's acl_file only filters delivery; its dynamic-security plugin refuses
// a SUBSCRIBE in the SUBACK. Anonymous clients may subscribe to allowed/# only.
class AclTest : public RoutingTest {
  protected:
    static mqttx::test::BrokerOptions with_acl() {
        static const std::string dir = mqttx::test::make_temp_dir("mqttx-acl");
        std::ofstream(dir + "/dynsec.json") << R"({
  "defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true,
                       "subscribe": false, "unsubscribe": true},
  "clients": [],
  "groups": [{"groupname": "anonymous", "roles": [{"rolename": "reader"}], "clients": []}],
  "roles": [{"rolename": "reader", "acls": [{"acltype": "subscribePattern",
             "topic": "allowed/#", "priority": 0, "allow": true}]}],
  "anonymousGroup": "anonymous"
})";
        return {false,
                "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\n"
                "plugin_opt_config_file " +
                    dir + "/dynsec.json\n",
                0};
    }
    AclTest() : RoutingTest(with_acl()) {}
};

TEST_F(AclTest, RefusedSubscriptionFailsAndLeavesNothingBehind) {
    std::vector<mqttx::Route> kept;
    Collector inbox;
    for (auto protocol : {mqttx::Protocol::v311, mqttx::Protocol::v5}) {
        const std::string name = protocol == mqttx::Protocol::v5 ? "v5" : "v311";
        auto session = add(name, protocol);
        manager.connect(name);
        manager.wait_for_session(name, 20s);
        kept.push_back(session->subscribe("allowed/#", 1, inbox.handler()));
        try {
            auto denied = session->subscribe("denied/#", 1, inbox.handler());
            ADD_FAILURE() << name << ": the broker's refusal was not reported";
        } catch (const mqttx::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::subscription) << e.what();
            EXPECT_EQ(e.topic(), "denied/#");
        }
        EXPECT_EQ(session->metrics().active_subscriptions, 1u) << name;
    }
    EXPECT_EQ(error_kind_of([&] {
                  manager.handle(
                      "denied/x", [](const mqttx::Message&) {}, 1);
              }),
              ErrorKind::subscription);
    EXPECT_EQ(manager.get_session("v5")->metrics().active_subscriptions, 1u);
}

TEST_F(AclTest, RefusedSubscriptionRestoredAtConnectStillEndsReady) {
    auto session = add("late");
    Collector inbox;
    std::atomic<int> subscription_errors{0};
    auto errors = manager.on_event(mqttx::EventType::error, [&](const mqttx::Event& e) {
        if (std::get<mqttx::ErrorInfo>(e.data).kind == ErrorKind::subscription) {
            ++subscription_errors;
        }
    });
    // Registered while offline: made (and refused) at connect.
    auto denied = session->subscribe("denied/#", 1, inbox.handler());
    manager.connect("late");
    manager.wait_for_session("late", 20s);  // ready although the broker refused it
    ASSERT_TRUE(wait_until([&] { return subscription_errors > 0; }));
}

class InlineHandlers : public RoutingTest {
  protected:
    static mqttx::ManagerOptions inline_options() {
        mqttx::ManagerOptions options;
        options.inline_handlers = true;
        return options;
    }
    InlineHandlers() : RoutingTest({}, inline_options()) {}
};

TEST_F(InlineHandlers, ManagerCallsThatWaitForTheBrokerAreRefusedInline) {
    auto sub = add("sub");
    auto pub = add("pub");
    std::promise<ErrorKind> refused;
    auto route = sub->subscribe("inline/#", 1, [&](const mqttx::Message&) {
        try {
            manager.remove_session("pub");
            refused.set_value(ErrorKind::internal);
        } catch (const mqttx::Error& e) {
            refused.set_value(e.kind());
        }
    });
    connect_all();
    pub->publish("inline/x", "1", 1).wait();
    auto result = refused.get_future();
    ASSERT_EQ(result.wait_for(20s), std::future_status::ready);
    EXPECT_EQ(result.get(), ErrorKind::configuration);
    EXPECT_EQ(manager.list_sessions().size(), 2u);
}

TEST_F(InlineHandlers, HandlersRunOnPahosThreadAndMayNotSubscribe) {
    auto sub = add("sub");
    auto pub = add("pub");
    Collector inbox;
    std::atomic<int> refused{0};
    auto route = sub->subscribe("inline/#", 1, [&](const mqttx::Message& m) {
        try {
            sub->subscribe("more", 0, [](const mqttx::Message&) {});
        } catch (const mqttx::Error& e) {
            if (e.kind() == ErrorKind::configuration) ++refused;
        }
        inbox.add(m);
    });
    connect_all();
    pub->publish("inline/x", "fast", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(refused, 1);
}

mqttx::SubscribeOptions on_receive_thread() {
    mqttx::SubscribeOptions options;
    options.handler_thread = mqttx::HandlerThread::receive_thread;
    return options;
}

TEST_F(RoutingTest, ReceiveThreadRouteIsNotHeldUpByABusyDispatcher) {
    auto sub = add("sub");
    auto pub = add("pub");
    mqttx::test::Gate release;
    std::atomic<int> slow_entered{0};
    Collector slow_inbox;
    auto slow = sub->subscribe("rt/#", 1, [&](const mqttx::Message& m) {
        ++slow_entered;
        release.wait();
        slow_inbox.add(m);
    });
    Collector quick_inbox;
    auto quick = sub->subscribe("rt/#", 1, quick_inbox.handler(), on_receive_thread());
    connect_all();

    publish_numbers(*pub, "rt/n", 5);
    // The same session's dispatcher route is stuck in its first message meanwhile.
    const bool all_quick = quick_inbox.wait_for(5);
    EXPECT_EQ(slow_inbox.size(), 0u);
    EXPECT_LE(slow_entered, 1);
    release.open();
    ASSERT_TRUE(all_quick) << "the receive-thread route waited for the dispatcher";
    EXPECT_EQ(payloads(quick_inbox.messages()),
              (std::vector<std::string>{"0", "1", "2", "3", "4"}));
    ASSERT_TRUE(slow_inbox.wait_for(5));
    EXPECT_EQ(payloads(slow_inbox.messages()), (std::vector<std::string>{"0", "1", "2", "3", "4"}));
    EXPECT_EQ(quick.stats().received, 5u);
}

TEST_F(RoutingTest, ReceiveThreadRouteRunsOnPahosThreadAndMayNotSubscribe) {
    auto sub = add("sub");
    auto pub = add("pub");
    Collector inbox;
    std::atomic<int> refused{0};
    std::thread::id quick_thread;
    std::thread::id dispatcher_thread;
    mqttx::test::Gate both_ran;
    std::atomic<int> ran{0};
    auto quick = sub->subscribe(
        "rt/#", 1,
        [&](const mqttx::Message& m) {
            try {
                sub->subscribe("more", 0, [](const mqttx::Message&) {});
            } catch (const mqttx::Error& e) {
                if (e.kind() == ErrorKind::configuration) ++refused;
            }
            quick_thread = std::this_thread::get_id();
            inbox.add(m);
            if (++ran == 2) both_ran.open();
        },
        on_receive_thread());
    auto normal = sub->subscribe("rt/#", 1, [&](const mqttx::Message&) {
        dispatcher_thread = std::this_thread::get_id();
        if (++ran == 2) both_ran.open();
    });
    connect_all();
    pub->publish("rt/x", "fast", 1).wait();
    ASSERT_TRUE(both_ran.wait());
    EXPECT_EQ(refused, 1);
    EXPECT_NE(quick_thread, dispatcher_thread);
    EXPECT_NE(quick_thread, std::this_thread::get_id());
    // Routes on the same filter share one broker subscription, whatever their thread.
    normal.stop();
    pub->publish("rt/x", "again", 1).wait();
    ASSERT_TRUE(inbox.wait_for(2));
    EXPECT_EQ(inbox.messages().back().payload, "again");
}

TEST_F(RoutingTest, ChannelOnTheReceiveThreadMayDropButNotBlock) {
    auto sub = add("sub");
    auto pub = add("pub");
    EXPECT_EQ(error_kind_of([&] {
                  manager.listen_to("sub", "rtc/#", 1,
                                    mqttx::ChannelOptions{10, mqttx::Overflow::block},
                                    on_receive_thread());
              }),
              ErrorKind::configuration);
    EXPECT_EQ(error_kind_of([&] {
                  manager.listen("rtc/#", 1, mqttx::ChannelOptions{10, mqttx::Overflow::block},
                                 on_receive_thread());
              }),
              ErrorKind::configuration);

    auto [channel, route] = manager.listen_to(
        "sub", "rtc/#", 1, mqttx::ChannelOptions{10, mqttx::Overflow::drop_oldest},
        on_receive_thread());
    connect_all();
    publish_numbers(*pub, "rtc/n", 3);
    std::vector<std::string> got;
    while (got.size() < 3) {
        auto message = channel.pop_for(20s);
        ASSERT_TRUE(message.has_value());
        got.push_back(message->payload_string());
    }
    EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2"}));
}

TEST_F(InlineHandlers, ChannelThatBlocksIsRefused) {
    add("sub");
    EXPECT_EQ(
        error_kind_of([&] {
            manager.listen_to("sub", "c/#", 1, mqttx::ChannelOptions{10, mqttx::Overflow::block});
        }),
        ErrorKind::configuration);
}

// A route on a shared subscription, however it was made, matches by the inner filter and
// gets each message with the topic it was published on (not "$share/...").
class SharedRouteTest : public RoutingTest,
                        public ::testing::WithParamInterface<mqttx::Protocol> {};

TEST_P(SharedRouteTest, RoutesOnSharedSubscriptionsReceiveTheRealTopic) {
    auto sub = add("sub", GetParam());
    auto pub = add("pub", GetParam());
    connect_all();
    mqttx::SubscribeOptions group_b;
    group_b.share_group = "grp-b";
    mqttx::SubscribeOptions group_c;
    group_c.share_group = "grp-c";
    // The filter written out, SubscribeOptions on one session, and on every session.
    Collector direct;
    auto literal = sub->subscribe("$share/grp-a/direct/#", 1, direct.handler());
    Collector via_option;
    auto optioned = sub->subscribe("opt/+", 1, via_option.handler(), group_b);
    EXPECT_EQ(optioned.filter(), "$share/grp-b/opt/+");
    Collector everywhere;
    auto handled = manager.handle("hand/#", everywhere.handler(), 1, group_b);
    auto [channel, listened] = manager.listen("chan/+/z", 1, {}, group_c);

    pub->publish("direct/a/b", "1", 1).wait();
    pub->publish("opt/x", "2", 1).wait();
    pub->publish("hand/y", "3", 1).wait();
    pub->publish("chan/q/z", "4", 1).wait();

    ASSERT_TRUE(direct.wait_for(1));
    EXPECT_EQ(direct.messages()[0].topic, "direct/a/b");
    EXPECT_EQ(direct.messages()[0].payload, "1");
    ASSERT_TRUE(via_option.wait_for(1));
    EXPECT_EQ(via_option.messages()[0].topic, "opt/x");
    EXPECT_EQ(via_option.messages()[0].payload, "2");
    // "sub" and "pub" are both in grp-b for hand/#: one of them gets it.
    ASSERT_TRUE(everywhere.wait_for(1));
    EXPECT_EQ(everywhere.messages()[0].topic, "hand/y");
    EXPECT_EQ(everywhere.messages()[0].payload, "3");
    auto message = channel.pop_for(20s);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->topic(), "chan/q/z");
    EXPECT_EQ(message->payload_string(), "4");

    // A second round through the same routes: each message once, none from round one.
    pub->publish("direct/c", "5", 1).wait();
    pub->publish("opt/w", "6", 1).wait();
    pub->publish("hand/v/u", "7", 1).wait();
    pub->publish("chan/r/z", "8", 1).wait();
    ASSERT_TRUE(direct.wait_for(2));
    ASSERT_TRUE(via_option.wait_for(2));
    ASSERT_TRUE(everywhere.wait_for(2));
    message = channel.pop_for(20s);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->topic(), "chan/r/z");
    EXPECT_EQ(message->payload_string(), "8");
    EXPECT_EQ(direct.messages()[1].topic, "direct/c");
    EXPECT_EQ(via_option.messages()[1].topic, "opt/w");
    std::set<std::string> hand_topics;
    for (const auto& m : everywhere.messages()) hand_topics.insert(m.topic + " " + m.payload);
    EXPECT_EQ(hand_topics, (std::set<std::string>{"hand/y 3", "hand/v/u 7"}));
    EXPECT_EQ(literal.stats().received, 2u);
    EXPECT_EQ(optioned.stats().received, 2u);
    EXPECT_EQ(handled.stats().received, 2u);
}

INSTANTIATE_TEST_SUITE_P(Protocols, SharedRouteTest,
                         ::testing::Values(mqttx::Protocol::v311, mqttx::Protocol::v5),
                         [](const auto& info) {
                             return info.param == mqttx::Protocol::v5 ? "v5" : "v311";
                         });

// A broken or hostile server may send a PUBLISH whose topic no client could publish on.
// The session drops it before any route sees it, and counts it.
TEST(HostileServerTest, PublishWithAnInvalidTopicIsDroppedBeforeRouting) {
    mqttx::test::FakeBroker fake;  // outlives the manager, which disconnects from it
    mqttx::SessionManager manager;
    auto session = manager.add_session(
        mqttx::quick_connect("victim", fake.uri()).protocol(mqttx::Protocol::v311).build());
    Collector inbox;
    auto route = session->subscribe("x/#", 0, inbox.handler());
    manager.connect_all();
    manager.wait_for_all_sessions(20s);
    ASSERT_TRUE(fake.wait_for_subscribe("x/#"));

    // Each matches x/# byte for byte, so only the check keeps it from the route.
    const std::vector<std::string> invalid{"x/+", "x/#", std::string("x/\xFF\x00", 4),
                                           "x/a\x01"
                                           "b"};
    for (const auto& topic : invalid) ASSERT_EQ(fake.send_publish(topic, "bad:" + topic), 1u);
    ASSERT_EQ(fake.send_publish("x/ok", "good"), 1u);

    // Messages arrive in order on one connection: once x/ok is through, so are the rest.
    ASSERT_TRUE(inbox.wait_for(1));
    const auto got = inbox.messages();
    ASSERT_EQ(got.size(), 1u) << "also received topic " << got.back().topic;
    EXPECT_EQ(got[0].topic, "x/ok");
    EXPECT_EQ(got[0].payload, "good");
    const auto metrics = session->metrics();
    EXPECT_EQ(metrics.invalid_received, 4u);
    EXPECT_EQ(metrics.messages_received, 1u);
    EXPECT_EQ(metrics.reconnects, 0u);
    EXPECT_EQ(route.stats().received, 1u);
}

}  // namespace
