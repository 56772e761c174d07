// The core, routing, reconnect and forwarder scenarios against aedes, a second broker
// implementation (MQTT 3.1.1; aedes 0.51 keeps sessions in memory). Every other test
// runs against mosquitto, whose habits could hide the library's assumptions.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "support/aedes.hpp"
#include "support/collector.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::test::Aedes;
using mqttx::test::Collector;
using mqttx::test::wait_until;

class AedesTest : public ::testing::Test {
  protected:
    std::shared_ptr<mqttx::Session> add(const std::string& name, const std::string& uri,
                                        bool persistent = false) {
        auto builder = mqttx::quick_connect(name, uri).auto_reconnect({20ms, 200ms, 2.0, 0.0});
        if (persistent) builder.client_id("aedes-" + name).persistent();
        return manager.add_session(builder.build());
    }
    void connect_all() {
        manager.connect_all();
        manager.wait_for_all_sessions(20s);
    }

    Aedes broker;
    Collector inbox;  // before the manager: its routes use it
    mqttx::SessionManager manager;
};

TEST_F(AedesTest, EveryQosArrivesIntact) {
    auto subscriber = add("sub", broker.uri());
    auto publisher = add("pub", broker.uri());
    auto route = subscriber->subscribe("core/#", 2, inbox.handler());
    connect_all();
    const std::string binary("a\0b\xff", 4);
    for (int qos = 0; qos <= 2; ++qos) {
        ASSERT_TRUE(publisher->publish("core/" + std::to_string(qos), binary, qos).wait_for(20s))
            << "QoS " << qos;
    }
    ASSERT_TRUE(inbox.wait_for(3));
    auto got = inbox.messages();
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.topic < b.topic; });
    for (int qos = 0; qos <= 2; ++qos) {
        EXPECT_EQ(got[qos].topic, "core/" + std::to_string(qos));
        EXPECT_EQ(got[qos].payload, binary);
        EXPECT_EQ(got[qos].qos, qos);
    }
}

TEST_F(AedesTest, RoutesGetWhatTheirFiltersMatch) {
    auto session = add("router", broker.uri());
    Collector plus;
    Collector hash;
    auto plus_route = session->subscribe("room/+/temp", 1, plus.handler());
    auto hash_route = session->subscribe("room/#", 1, hash.handler());
    connect_all();
    for (const auto* topic : {"room/a/temp", "room/b/humidity", "room/c/temp", "hall/a/temp"}) {
        ASSERT_TRUE(session->publish(topic, topic, 1).wait_for(20s));
    }
    ASSERT_TRUE(plus.wait_for(2));
    ASSERT_TRUE(hash.wait_for(3));
    // The last publish (hall/...) matched no route; once hash has all of room/..., the
    // broker has sent everything before it.
    std::vector<std::string> plus_topics;
    for (const auto& m : plus.messages()) plus_topics.push_back(m.topic);
    std::sort(plus_topics.begin(), plus_topics.end());
    EXPECT_EQ(plus_topics, (std::vector<std::string>{"room/a/temp", "room/c/temp"}));
    EXPECT_EQ(hash.size(), 3u);
}

// aedes keeps sessions in memory: after a restart the broker knows none, and the
// session must subscribe again before it counts as ready.
TEST_F(AedesTest, ABrokerRestartEndsWithTheSubscriptionBack) {
    auto session = add("restarted", broker.uri());
    auto route = session->subscribe("restart/#", 1, inbox.handler());
    connect_all();
    broker.kill();
    ASSERT_TRUE(wait_until([&] { return !session->is_connected(); }));
    broker.start();
    manager.wait_for_session("restarted", 20s);
    ASSERT_TRUE(session->publish("restart/after", "back", 1).wait_for(20s));
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(inbox.messages().front().payload, "back");
    EXPECT_GE(session->metrics().reconnects, 1u);
}

// A persistent session that reconnects to a running aedes finds its session there
// (session present), with the QoS 1 messages queued for it meanwhile.
TEST_F(AedesTest, APersistentSessionGetsWhatWasQueuedWhileItWasAway) {
    mqttx::test::FaultProxy proxy(broker.port());
    auto away = add("away", proxy.uri(), true);
    auto route = away->subscribe("queued/#", 1, inbox.handler());
    auto publisher = add("pub", broker.uri());
    connect_all();
    proxy.set_refusing(true);
    proxy.reset_all();
    ASSERT_TRUE(wait_until([&] { return !away->is_connected(); }));
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(publisher->publish("queued/m", std::to_string(i), 1).wait_for(20s));
    }
    proxy.set_refusing(false);
    manager.wait_for_session("away", 20s);
    ASSERT_TRUE(inbox.wait_for(5));
    std::vector<std::string> payloads;
    for (const auto& m : inbox.messages()) payloads.push_back(m.payload);
    EXPECT_EQ(payloads, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

TEST_F(AedesTest, AForwarderMovesMessagesBetweenTwoAedesBrokers) {
    Aedes cloud;
    auto site_session = add("site", broker.uri());
    auto uplink = add("uplink", cloud.uri());
    auto watcher = add("watcher", cloud.uri());
    auto route = watcher->subscribe("storage/#", 1, inbox.handler());
    connect_all();
    auto& forwarder =
        manager.forwarders().add(mqttx::ForwarderBuilder("bridge")
                                     .source("site", {"sensors/+/temperature"})
                                     .target("uplink")
                                     .map_topic("sensors/+/temperature", "storage/{1}/temp")
                                     .build());
    auto sensor = add("sensor", broker.uri());
    connect_all();
    ASSERT_TRUE(sensor->publish("sensors/kitchen/temperature", "21.5", 1).wait_for(20s));
    ASSERT_TRUE(sensor->publish("sensors/attic/temperature", "17.0", 1).wait_for(20s));
    ASSERT_TRUE(inbox.wait_for(2));
    ASSERT_TRUE(wait_until([&] { return forwarder.metrics().acknowledged == 2; }));
    auto got = inbox.messages();
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.topic < b.topic; });
    EXPECT_EQ(got[0].topic, "storage/attic/temp");
    EXPECT_EQ(got[0].payload, "17.0");
    EXPECT_EQ(got[1].topic, "storage/kitchen/temp");
    EXPECT_EQ(got[1].payload, "21.5");
}

}  // namespace
