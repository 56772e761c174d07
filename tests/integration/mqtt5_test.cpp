// MQTT 5 through the API, checked on what the other side receives: mosquitto (the
// suite's real broker) where it supports a feature, the FakeBroker (which records every
// packet and sends what mosquitto 2.0 never does) where it does not.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "support/collector.hpp"
#include "support/error_kind.hpp"
#include "support/fake_broker.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::Protocol;
using mqttx::test::Collector;
using mqttx::test::error_kind_of;
using mqttx::test::FakeBroker;
using mqttx::test::wait_until;

mqttx::SessionBuilder v5(const std::string& name, const std::string& broker) {
    return mqttx::quick_connect(name, broker).protocol(Protocol::v5);
}

std::shared_ptr<mqttx::Session> connect(mqttx::SessionManager& manager,
                                        const mqttx::SessionBuilder& builder) {
    auto session = manager.add_session(builder.build());
    manager.connect(session->name());
    manager.wait_for_session(session->name(), 20s);
    return session;
}

// Every property of `id` in `properties`.
std::vector<FakeBroker::Property> all_of(const std::vector<FakeBroker::Property>& properties,
                                         int id) {
    std::vector<FakeBroker::Property> out;
    for (const auto& property : properties) {
        if (property.id == id) out.push_back(property);
    }
    return out;
}

const FakeBroker::Property* find(const std::vector<FakeBroker::Property>& properties, int id) {
    for (const auto& property : properties) {
        if (property.id == id) return &property;
    }
    return nullptr;
}

// ---- session expiry ------------------------------------------------------------------

// A session kept for a while outlives its connection: what was published for it while it
// was away arrives when the same client id comes back without a clean start.
TEST(Mqtt5, SessionExpiryKeepsTheBrokerSessionAfterTheConnectionEnds) {
    mqttx::test::Mosquitto broker;
    Collector inbox;
    {
        mqttx::SessionManager manager;
        auto kept = connect(manager, v5("kept", broker.uri())
                                         .client_id("kept-client")
                                         .clean_session(false)
                                         .session_expiry(1h));
        auto route = kept->subscribe("expiry/kept", 1, inbox.handler());
        kept->close();  // before the route stops: the broker keeps the subscription
        auto publisher = connect(manager, v5("pub", broker.uri()));
        publisher->publish("expiry/kept", "while away", 1).wait();
    }
    mqttx::SessionManager manager;
    // Routed before the connect: the broker sends what it kept at once.
    auto again = connect(manager, v5("kept", broker.uri())
                                      .client_id("kept-client")
                                      .clean_session(false)
                                      .session_expiry(1h)
                                      .subscribe("expiry/kept", 1, inbox.handler()));
    ASSERT_TRUE(again->connect_info().has_value());
    EXPECT_TRUE(again->connect_info()->session_present);
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(inbox.messages()[0].payload, "while away");
}

// An expiry of 0 (MQTT 5's default for a clean session): the broker forgets the session
// with its connection, though the client asked to resume it.
TEST(Mqtt5, ASessionExpiryOfZeroEndsTheSessionWithItsConnection) {
    mqttx::test::Mosquitto broker;
    {
        mqttx::SessionManager manager;
        auto gone = connect(
            manager,
            v5("gone", broker.uri()).client_id("gone").clean_session(false).session_expiry(0s));
        Collector unused;
        auto route = gone->subscribe("expiry/gone", 1, unused.handler());
        gone->close();
    }
    mqttx::SessionManager manager;
    auto again = connect(manager, v5("gone", broker.uri()).client_id("gone").clean_session(false));
    // (Unset, a session without a clean start asks never to expire.)
    ASSERT_TRUE(again->connect_info().has_value());
    EXPECT_FALSE(again->connect_info()->session_present);
}

// ---- CONNECT properties, on the wire -------------------------------------------------

TEST(Mqtt5, ConnectPropertiesGoOutAsSet) {
    FakeBroker broker;
    mqttx::SessionManager manager;
    mqttx::ConnectProperties properties;
    properties.session_expiry = 3600s;
    properties.receive_maximum = 7;
    properties.maximum_packet_size = 4096;
    properties.topic_alias_maximum = 3;
    properties.request_response_information = true;
    properties.request_problem_information = false;
    properties.user_properties = {{"site", "north"}, {"rack", "4"}};
    connect(manager, v5("s", broker.uri()).connect_properties(properties));
    const auto sent = broker.wait_for_packet(1).properties();
    ASSERT_NE(find(sent, 0x11), nullptr);
    EXPECT_EQ(find(sent, 0x11)->number, 3600u);
    ASSERT_NE(find(sent, 0x21), nullptr);
    EXPECT_EQ(find(sent, 0x21)->number, 7u);
    ASSERT_NE(find(sent, 0x27), nullptr);
    EXPECT_EQ(find(sent, 0x27)->number, 4096u);
    ASSERT_NE(find(sent, 0x22), nullptr);
    EXPECT_EQ(find(sent, 0x22)->number, 3u);
    ASSERT_NE(find(sent, 0x19), nullptr);
    EXPECT_EQ(find(sent, 0x19)->number, 1u);
    ASSERT_NE(find(sent, 0x17), nullptr);
    EXPECT_EQ(find(sent, 0x17)->number, 0u);
    const auto users = all_of(sent, 0x26);
    ASSERT_EQ(users.size(), 2u);
    EXPECT_EQ(users[0].text, "site");
    EXPECT_EQ(users[0].value, "north");
    EXPECT_EQ(users[1].text, "rack");
    EXPECT_EQ(users[1].value, "4");
}

TEST(Mqtt5, APersistentSessionAsksForASessionThatNeverExpires) {
    FakeBroker broker;
    mqttx::SessionManager manager;
    connect(manager, v5("p", broker.uri()).client_id("p").persistent());
    const auto sent = broker.wait_for_packet(1).properties();
    ASSERT_NE(find(sent, 0x11), nullptr);
    EXPECT_EQ(find(sent, 0x11)->number, 0x7FFFFFFFu);  // see max_paho_four_byte
}

// A broker's Maximum Packet Size binds it too: mosquitto drops a message for a client
// that would not take it.
TEST(Mqtt5, TheBrokerKeepsToTheClientsMaximumPacketSize) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    mqttx::ConnectProperties small;
    small.maximum_packet_size = 200;
    auto subscriber = connect(manager, v5("sub", broker.uri()).connect_properties(small));
    Collector inbox;
    auto route = subscriber->subscribe("size/#", 1, inbox.handler());
    auto publisher = connect(manager, v5("pub", broker.uri()));
    publisher->publish("size/big", std::string(1000, 'x'), 1).wait();
    publisher->publish("size/small", "fits", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    const auto messages = inbox.messages();
    EXPECT_EQ(messages.front().topic, "size/small");  // the big one never came before it
}

// ---- will properties and delay -------------------------------------------------------

mqttx::Will will_with_properties(std::chrono::seconds delay) {
    mqttx::Will will{.topic = "will/s", .payload = "gone", .qos = 1};
    will.properties.content_type = "text/plain";
    will.properties.user_properties = {{"reason", "test"}};
    will.properties.correlation_data = std::string("\x01\x02", 2);
    will.properties.response_topic = "will/reply";
    will.properties.payload_is_utf8 = true;
    will.properties.message_expiry = 600s;
    will.delay = delay;
    return will;
}

TEST(Mqtt5, TheWillCarriesItsPropertiesWhenTheConnectionBreaks) {
    mqttx::test::Mosquitto broker;
    mqttx::test::FaultProxy proxy(broker.port());
    mqttx::SessionManager manager;
    Collector wills;
    auto watcher = connect(manager, v5("watcher", broker.uri()));
    auto route = watcher->subscribe("will/#", 1, wills.handler());
    connect(manager, v5("s", proxy.uri()).no_reconnect().will(will_with_properties(0s)));
    proxy.reset_all();
    ASSERT_TRUE(wills.wait_for(1));
    const auto will = wills.messages()[0];
    EXPECT_EQ(will.payload, "gone");
    EXPECT_EQ(will.properties.content_type, "text/plain");
    EXPECT_EQ(will.properties.response_topic, "will/reply");
    EXPECT_EQ(will.properties.correlation_data, std::string("\x01\x02", 2));
    EXPECT_EQ(will.properties.payload_is_utf8, true);
    ASSERT_TRUE(will.properties.message_expiry.has_value());
    EXPECT_LE(*will.properties.message_expiry, 600s);
    EXPECT_EQ(will.properties.user_properties, (mqttx::UserProperties{{"reason", "test"}}));
}

// The broker holds a delayed will back for at least its delay.
TEST(Mqtt5, ADelayedWillComesNoSoonerThanItsDelay) {
    mqttx::test::Mosquitto broker;
    mqttx::test::FaultProxy proxy(broker.port());
    mqttx::SessionManager manager;
    Collector wills;
    auto watcher = connect(manager, v5("watcher", broker.uri()));
    auto route = watcher->subscribe("will/#", 1, wills.handler());
    // The session must outlive the delay at the broker, or the will goes with it.
    connect(manager,
            v5("s", proxy.uri()).no_reconnect().session_expiry(60s).will(will_with_properties(2s)));
    const auto broken = std::chrono::steady_clock::now();
    proxy.reset_all();
    ASSERT_TRUE(wills.wait_for(1));
    EXPECT_GE(std::chrono::steady_clock::now() - broken, 1900ms);
}

TEST(Mqtt5, WillPropertiesGoOutInTheConnect) {
    FakeBroker broker;
    mqttx::SessionManager manager;
    connect(manager, v5("s", broker.uri()).will(will_with_properties(30s)));
    const auto will = broker.wait_for_packet(1).will_properties();
    ASSERT_NE(find(will, 0x18), nullptr);
    EXPECT_EQ(find(will, 0x18)->number, 30u);  // Will Delay Interval
    ASSERT_NE(find(will, 0x03), nullptr);
    EXPECT_EQ(find(will, 0x03)->text, "text/plain");
}

// ---- the client's DISCONNECT ---------------------------------------------------------

// 0x04 "disconnect with will message": the broker publishes the will though the client
// said goodbye.
TEST(Mqtt5, ADisconnectWithWillMessageMakesTheBrokerPublishTheWill) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    Collector wills;
    auto watcher = connect(manager, v5("watcher", broker.uri()));
    auto route = watcher->subscribe("will/#", 1, wills.handler());
    auto leaving = connect(manager, v5("s", broker.uri()).will(will_with_properties(0s)));
    leaving->close(mqttx::DisconnectOptions{.reason_code = 0x04});
    ASSERT_TRUE(wills.wait_for(1));
    EXPECT_EQ(wills.messages()[0].payload, "gone");
}

TEST(Mqtt5, APlainCloseDiscardsTheWill) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    Collector inbox;
    auto watcher = connect(manager, v5("watcher", broker.uri()));
    auto route = watcher->subscribe("will/#", 1, inbox.handler());
    auto leaving = connect(manager, v5("s", broker.uri()).will(will_with_properties(0s)));
    leaving->close();
    // A marker published after the close arrives; the will, had it come, before it.
    watcher->publish("will/marker", "after", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(inbox.messages()[0].payload, "after");
}

TEST(Mqtt5, TheDisconnectCarriesItsReasonAndProperties) {
    FakeBroker broker;
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()).session_expiry(60s));
    session->close(mqttx::DisconnectOptions{.reason_code = 0x80,
                                            .session_expiry = 0s,
                                            .reason_string = "shutting down",
                                            .user_properties = {{"k", "v"}}});
    const auto disconnect = broker.wait_for_packet(14);
    ASSERT_GE(disconnect.body.size(), 1u);
    EXPECT_EQ(static_cast<unsigned char>(disconnect.body[0]), 0x80);
    const auto sent = disconnect.properties();
    ASSERT_NE(find(sent, 0x11), nullptr);
    EXPECT_EQ(find(sent, 0x11)->number, 0u);
    ASSERT_NE(find(sent, 0x1F), nullptr);
    EXPECT_EQ(find(sent, 0x1F)->text, "shutting down");
    ASSERT_EQ(all_of(sent, 0x26).size(), 1u);
}

TEST(Mqtt5, BadDisconnectOptionsAreRefusedAndTheSessionStaysOpen) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()));
    // 0x8E is the broker's ("session taken over"); a session that connected with an
    // expiry of 0 may not raise it at DISCONNECT.
    for (const auto& bad : {mqttx::DisconnectOptions{.reason_code = 0x8E},
                            mqttx::DisconnectOptions{.session_expiry = 60s}}) {
        try {
            session->close(bad);
            FAIL() << "accepted";
        } catch (const mqttx::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::configuration);
            EXPECT_TRUE(
                std::string(e.what()).find(bad.reason_code ? "reason_code" : "session_expiry") !=
                std::string::npos)
                << e.what();
        }
    }
    EXPECT_TRUE(session->is_connected());
    mqttx::SessionManager v3_manager;
    auto v3 = connect(v3_manager, mqttx::quick_connect("v3", broker.uri()));
    EXPECT_EQ(error_kind_of([&] { v3->close(mqttx::DisconnectOptions{.reason_code = 0x04}); }),
              ErrorKind::configuration);
}

}  // namespace
