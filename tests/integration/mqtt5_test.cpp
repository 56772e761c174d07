// MQTT 5 through the API, checked on what the other side receives: mosquitto (the
// suite's real broker) where it supports a feature, the FakeBroker (which records every
// packet and sends what mosquitto 2.0 never does) where it does not.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
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
    auto options = builder.build();
    // Paho's DISCONNECT waits this long for messages in flight, which the fake broker
    // never acknowledges: short, so that teardown does not wait 2 s.
    options.disconnect_timeout = 300ms;
    auto session = manager.add_session(std::move(options));
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
    // Without a clean start the CONNECT asked never to expire: raising it is allowed.
    auto resuming = v5("r", broker.uri()).client_id("r").clean_session(false).build();
    EXPECT_NO_THROW(mqttx::validate(mqttx::DisconnectOptions{.session_expiry = 3600s}, resuming));
    mqttx::SessionManager v3_manager;
    auto v3 = connect(v3_manager, mqttx::quick_connect("v3", broker.uri()));
    EXPECT_EQ(error_kind_of([&] { v3->close(mqttx::DisconnectOptions{.reason_code = 0x04}); }),
              ErrorKind::configuration);
}

// ---- what the broker says at connect -------------------------------------------------

// mosquitto's limits reach ConnectInfo, and the session keeps to them.
TEST(Mqtt5, MosquittosConnackLimitsAreReportedAndKept) {
    mqttx::test::Mosquitto broker({.extra_config = "max_keepalive 10\n"
                                                   "max_packet_size 2000\n"
                                                   "retain_available false\n"
                                                   "max_qos 1\n"
                                                   "max_topic_alias 5\n"});
    mqttx::SessionManager manager;
    std::mutex mutex;
    std::optional<mqttx::ConnectInfo> from_event;
    auto events = manager.on_event(mqttx::EventType::session_connected, [&](const auto& event) {
        std::lock_guard lock(mutex);
        from_event = std::get<mqttx::ConnectInfo>(event.data);
    });
    auto session = connect(manager, v5("s", broker.uri()).keep_alive(60s));
    const auto info = session->connect_info();
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->broker, broker.uri());
    EXPECT_EQ(info->reason_code, 0);
    ASSERT_TRUE(info->server_keep_alive.has_value());
    EXPECT_EQ(*info->server_keep_alive, 10s);
    EXPECT_EQ(info->maximum_packet_size, 2000u);
    EXPECT_FALSE(info->retain_available);
    EXPECT_EQ(info->maximum_qos, 1);
    EXPECT_EQ(info->topic_alias_maximum, 5u);
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return from_event.has_value();
    }));
    {
        std::lock_guard lock(mutex);
        EXPECT_EQ(from_event->maximum_packet_size, 2000u);
        EXPECT_EQ(from_event->maximum_qos, 1);
    }
    // Each would be a protocol error that closes the connection: refused before it goes.
    EXPECT_EQ(error_kind_of([&] { session->publish("limits/a", "r", 1, true).wait(); }),
              ErrorKind::publish);
    EXPECT_EQ(error_kind_of([&] { session->publish("limits/a", "q", 2).wait(); }),
              ErrorKind::invalid_qos);
    EXPECT_EQ(
        error_kind_of([&] { session->publish("limits/a", std::string(3000, 'x'), 1).wait(); }),
        ErrorKind::payload_too_large);
    Collector inbox;
    auto route = session->subscribe("limits/#", 1, inbox.handler());
    session->publish("limits/a", "fine", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(inbox.messages()[0].payload, "fine");
    EXPECT_TRUE(session->is_connected());
}

// What mosquitto 2.0 never sends, from the fake broker.
TEST(Mqtt5, EveryConnackPropertyReachesConnectInfo) {
    FakeBroker broker;
    broker.set_connack(
        FakeBroker::string_property(0x12, "assigned-7") +
        FakeBroker::string_property(0x1A, "reply/base") +
        FakeBroker::string_property(0x1C, "tcp://127.0.0.1:2") +
        FakeBroker::string_property(0x1F, "welcome") +
        FakeBroker::pair_property(0x26, "region", "eu") +
        FakeBroker::integer_property(0x11, 120, 4) + FakeBroker::integer_property(0x21, 2, 2) +
        FakeBroker::integer_property(0x28, 0, 1) + FakeBroker::integer_property(0x29, 0, 1) +
        FakeBroker::integer_property(0x2A, 0, 1));
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()));
    const auto info = session->connect_info();
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->assigned_client_id, "assigned-7");
    EXPECT_EQ(info->response_information, "reply/base");
    EXPECT_EQ(info->server_reference, "tcp://127.0.0.1:2");
    EXPECT_EQ(info->reason_string, "welcome");
    EXPECT_EQ(info->user_properties, (mqttx::UserProperties{{"region", "eu"}}));
    ASSERT_TRUE(info->session_expiry.has_value());
    EXPECT_EQ(*info->session_expiry, 120s);
    EXPECT_EQ(info->receive_maximum, 2u);
    EXPECT_FALSE(info->wildcard_subscription_available);
    EXPECT_FALSE(info->subscription_identifiers_available);
    EXPECT_FALSE(info->shared_subscription_available);
    EXPECT_TRUE(info->retain_available);  // not sent: MQTT's default
    EXPECT_EQ(info->maximum_qos, 2);
    // What the broker said it lacks is refused, not sent to close the connection.
    Collector unused;
    for (const auto& [filter, options] :
         std::vector<std::pair<std::string, mqttx::SubscribeOptions>>{
             {"plain", {.subscription_id = 3}}, {"wild/#", {}}, {"plain", {.share_group = "g"}}}) {
        try {
            session->subscribe(filter, 0, unused.handler(), options);
            ADD_FAILURE() << filter << ": accepted";
        } catch (const mqttx::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::subscription) << e.what();
            EXPECT_NE(std::string(e.what()).find("does not support"), std::string::npos)
                << e.what();
        }
    }
    EXPECT_TRUE(broker.packets(8).empty());
    EXPECT_TRUE(session->is_connected());
}

// The broker's Receive Maximum bounds the publish window: the fake broker acknowledges
// nothing, so with a maximum of 3 the window (one below it, leaving Paho its place
// more) never opens past 2. publish() hands a message to Paho at once while the window
// has room: with the configured window (20) all 6 would be in flight when the calls
// return. (Paho also keeps to the maximum on the wire, so the count of PUBLISH packets
// alone would not show the window.)
TEST(Mqtt5, TheBrokersReceiveMaximumBoundsThePublishWindow) {
    FakeBroker broker;
    broker.set_connack(FakeBroker::integer_property(0x21, 3, 2));
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()));
    std::vector<mqttx::DeliveryToken> tokens;
    for (int i = 0; i < 6; ++i) tokens.push_back(session->publish("window/t", "m", 1));
    EXPECT_EQ(session->metrics().in_flight, 2u);
    broker.wait_for_packet(3, 1);  // the second
    EXPECT_EQ(broker.packets(3).size(), 2u);
    EXPECT_EQ(session->metrics().in_flight, 2u);
}

// The broker's Server Keep Alive replaces the client's: the fake broker asks for 2 s
// where the session asked for 60, and a PINGREQ comes long before 60 s would bring one.
TEST(Mqtt5, TheServersKeepAliveIsObeyed) {
    FakeBroker broker;
    broker.set_connack(FakeBroker::integer_property(0x13, 2, 2));
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()).keep_alive(60s));
    ASSERT_TRUE(session->connect_info()->server_keep_alive.has_value());
    EXPECT_EQ(*session->connect_info()->server_keep_alive, 2s);
    EXPECT_NO_THROW(broker.wait_for_packet(12, 0, 20s));
    // Paho keeps a connection's keep-alive: the session connected again, asking for 1 s
    // (half the broker's, see paho_keep_alive()). Bytes 8-9 of a CONNECT's body.
    const auto again = broker.wait_for_packet(1, 1).body;
    ASSERT_GE(again.size(), 10u);
    EXPECT_EQ(static_cast<unsigned char>(again[8]) * 256 + static_cast<unsigned char>(again[9]), 1);
    EXPECT_TRUE(session->is_connected());
}

// Topic aliases the broker uses towards the client (ConnectProperties::topic_alias_maximum)
// are resolved: a handler sees the topic, not an empty one.
TEST(Mqtt5, IncomingTopicAliasesAreResolved) {
    FakeBroker broker;
    mqttx::SessionManager manager;
    mqttx::ConnectProperties properties;
    properties.topic_alias_maximum = 4;
    auto session = connect(manager, v5("s", broker.uri()).connect_properties(properties));
    Collector inbox;
    auto route = session->subscribe("in/#", 0, inbox.handler());
    ASSERT_TRUE(broker.wait_for_subscribe("in/#"));
    const auto alias = FakeBroker::integer_property(0x23, 1, 2);
    ASSERT_EQ(broker.send_publish_v5("in/a", "first", alias), 1u);
    ASSERT_EQ(broker.send_publish_v5("", "second", alias), 1u);
    ASSERT_TRUE(inbox.wait_for(2));
    for (const auto& message : inbox.messages())
        EXPECT_EQ(message.topic, "in/a") << message.payload;
}

// ---- subscriptions -------------------------------------------------------------------

TEST(Mqtt5, SubscriptionIdsTellWhichSubscriptionsMatched) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()));
    std::mutex mutex;
    std::map<std::string, std::set<std::uint32_t>> ids;  // per topic, over every copy
    std::atomic<int> received{0};
    auto record = [&](const mqttx::Message& message) {
        {
            std::lock_guard lock(mutex);
            for (auto id : message.subscription_ids()) ids[std::string(message.topic())].insert(id);
        }
        ++received;
    };
    auto wide = session->subscribe("ids/#", 1, record, {.subscription_id = 7});
    auto narrow = session->subscribe("ids/exact", 1, record, {.subscription_id = 268'435'455});
    session->publish("ids/exact", "both", 1).wait();
    session->publish("ids/other", "wide", 1).wait();
    // ids/exact reaches both routes of the session; each copy carries the broker's ids.
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return ids["ids/exact"].size() == 2 && ids["ids/other"].size() == 1;
    }));
    std::lock_guard lock(mutex);
    EXPECT_EQ(ids["ids/exact"], (std::set<std::uint32_t>{7, 268'435'455}));
    EXPECT_EQ(ids["ids/other"], (std::set<std::uint32_t>{7}));
}

TEST(Mqtt5, SubscribeAndUnsubscribeCarryTheirProperties) {
    FakeBroker broker;
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()));
    Collector unused;
    auto route = session->subscribe("props/#", 1, unused.handler(),
                                    {.subscription_id = 42, .user_properties = {{"why", "test"}}});
    const auto subscribe = broker.wait_for_packet(8).properties();
    ASSERT_NE(find(subscribe, 0x0B), nullptr);
    EXPECT_EQ(find(subscribe, 0x0B)->number, 42u);
    ASSERT_EQ(all_of(subscribe, 0x26).size(), 1u);
    EXPECT_EQ(all_of(subscribe, 0x26)[0].value, "test");
    EXPECT_EQ(session->unsubscribe("props/#", {{"bye", "now"}}), 0);
    const auto unsubscribe = broker.wait_for_packet(10).properties();
    ASSERT_EQ(all_of(unsubscribe, 0x26).size(), 1u);
    EXPECT_EQ(all_of(unsubscribe, 0x26)[0].text, "bye");
}

// The ids and user properties of a subscription go out again when it is restored.
TEST(Mqtt5, ARestoredSubscriptionKeepsItsId) {
    FakeBroker broker;
    mqttx::test::FaultProxy proxy(broker.port());
    mqttx::SessionManager manager;
    Collector unused;
    auto session = connect(
        manager,
        v5("s", proxy.uri()).subscribe("again/#", 1, unused.handler(), {.subscription_id = 9}));
    broker.wait_for_packet(8);
    proxy.reset_all();
    const auto again = broker.wait_for_packet(8, 1).properties();
    ASSERT_NE(find(again, 0x0B), nullptr);
    EXPECT_EQ(find(again, 0x0B)->number, 9u);
}

TEST(Mqtt5, AGrantedQosBelowTheAskedOneIsReported) {
    mqttx::test::Mosquitto broker({.extra_config = "max_qos 1\n"});
    mqttx::SessionManager manager;
    std::mutex mutex;
    std::vector<std::string> errors;
    auto events = manager.on_event(mqttx::EventType::error, [&](const auto& event) {
        std::lock_guard lock(mutex);
        errors.push_back(std::get<mqttx::ErrorInfo>(event.data).message);
    });
    auto session = connect(manager, v5("s", broker.uri()));
    Collector inbox;
    auto route = session->subscribe("granted/#", 2, inbox.handler());
    EXPECT_EQ(route.granted_qos(), 1);
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return !errors.empty();
    }));
    std::lock_guard lock(mutex);
    EXPECT_NE(errors[0].find("granted QoS 1"), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("granted/#"), std::string::npos) << errors[0];
}

TEST(Mqtt5, TheGrantedQosIsOnTheRoute) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    auto session = manager.add_session(v5("s", broker.uri()).build());
    Collector inbox;
    auto route = session->subscribe("g/#", 2, inbox.handler());
    EXPECT_EQ(route.granted_qos(), -1);  // not connected: the broker has not answered
    manager.connect("s");
    manager.wait_for_session("s", 20s);
    EXPECT_EQ(route.granted_qos(), 2);
    auto second = session->subscribe("g/#", 1, inbox.handler());  // shares the filter
    EXPECT_EQ(second.granted_qos(), 2);
    route.stop();
    EXPECT_EQ(route.granted_qos(), -1);
}

TEST(Mqtt5, UnsubscribeReturnsTheBrokersReasonCode) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()));
    Collector inbox;
    auto route = session->subscribe("u/#", 1, inbox.handler());
    EXPECT_EQ(session->unsubscribe("u/#"), 0x00);
    EXPECT_FALSE(route.active());
    EXPECT_EQ(session->unsubscribe("never/subscribed"), 0x11);  // no subscription existed
    EXPECT_EQ(error_kind_of([&] {
                  session->unsubscribe("u/#", {{"bad", std::string("\0", 1)}});
              }),
              ErrorKind::configuration);
}

// ---- acknowledgements ----------------------------------------------------------------

// A broker that refuses a publish says why in its PUBACK (0x80 and up): the token fails
// with that code. (Codes below 0x80, e.g. 0x10, Paho C 1.3.12 reports as 0: not
// available, see docs/mqtt5.md.)
TEST(Mqtt5, ARefusedPublishFailsWithTheBrokersReasonCode) {
    const auto dir = mqttx::test::make_temp_dir("mqttx-mqtt5-acl");
    std::ofstream(dir + "/dynsec.json") << R"({
  "defaultACLAccess": {"publishClientSend": false, "publishClientReceive": true,
                       "subscribe": true, "unsubscribe": true},
  "clients": [],
  "groups": [{"groupname": "anonymous", "roles": [{"rolename": "writer"}], "clients": []}],
  "roles": [{"rolename": "writer", "acls": [{"acltype": "publishClientSend",
             "topic": "open/#", "priority": 0, "allow": true}]}],
  "anonymousGroup": "anonymous"
})";
    mqttx::test::Mosquitto broker(
        {.extra_config = "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\n"
                         "plugin_opt_config_file " +
                         dir + "/dynsec.json\n"});
    mqttx::SessionManager manager;
    auto session = connect(manager, v5("s", broker.uri()));
    for (int qos : {1, 2}) {
        try {
            session->publish("closed/x", "no", qos).wait();
            ADD_FAILURE() << "QoS " << qos << ": the refused publish completed";
        } catch (const mqttx::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::publish) << e.what();
            EXPECT_EQ(e.reason_code(), 0x87) << e.what();  // not authorized
        }
    }
    EXPECT_NO_THROW(session->publish("open/x", "yes", 1).wait());
    // A request whose publish the broker refuses fails with that, not with a timeout.
    mqttx::Requester requester(session);
    auto reply = requester.request("closed/service", "?", {.timeout = 60s});
    ASSERT_EQ(reply.wait_for(20s), std::future_status::ready);
    try {
        reply.get();
        ADD_FAILURE() << "a refused request got a reply";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::publish) << e.what();
        EXPECT_EQ(e.reason_code(), 0x87) << e.what();
    }
    EXPECT_EQ(requester.pending(), 0u);
    std::filesystem::remove_all(dir);
}

// ---- topic aliases -------------------------------------------------------------------

// After its first message on a connection, a topic goes out as its alias alone.
TEST(Mqtt5, TopicAliasesReplaceTheTopicAfterItsFirstMessage) {
    FakeBroker broker;
    broker.set_connack(FakeBroker::integer_property(0x22, 10, 2));
    mqttx::SessionManager manager;
    mqttx::PerformanceOptions performance;
    performance.topic_aliases = 1;
    auto session = connect(manager, v5("s", broker.uri()).performance(performance));
    for (const char* topic : {"alias/a", "alias/a", "alias/b", "alias/a"}) {
        session->publish(topic, "x", 0).wait();
    }
    session->publish("alias/a", "x", 1);  // QoS 1 always carries its topic
    broker.wait_for_packet(3, 4);
    const auto published = broker.packets(3);
    ASSERT_EQ(published.size(), 5u);
    auto alias_of = [](const FakeBroker::Packet& packet) {
        const auto properties = packet.properties();
        const auto property = find(properties, 0x23);
        return property ? static_cast<int>(property->number) : 0;
    };
    EXPECT_EQ(published[0].topic(), "alias/a");
    EXPECT_EQ(alias_of(published[0]), 1);
    EXPECT_EQ(published[1].topic(), "");
    EXPECT_EQ(alias_of(published[1]), 1);
    EXPECT_EQ(published[2].topic(), "alias/b");  // one alias only: the rest go as they are
    EXPECT_EQ(alias_of(published[2]), 0);
    EXPECT_EQ(published[3].topic(), "");
    EXPECT_EQ(alias_of(published[3]), 1);
    EXPECT_EQ(published[4].topic(), "alias/a");
    EXPECT_EQ(alias_of(published[4]), 0);
}

// A real broker maps the aliases back: every message arrives under its own topic, also
// after a reconnect (where every alias is forgotten and assigned anew).
TEST(Mqtt5, MessagesSentWithAliasesArriveUnderTheirTopics) {
    mqttx::test::Mosquitto broker;
    mqttx::test::FaultProxy proxy(broker.port());
    mqttx::SessionManager manager;
    Collector inbox;
    auto subscriber = connect(manager, v5("sub", broker.uri()));
    auto route = subscriber->subscribe("aliased/#", 0, inbox.handler());
    mqttx::PerformanceOptions performance;
    performance.topic_aliases = 2;
    auto publisher = connect(manager, v5("pub", proxy.uri()).performance(performance));
    const std::vector<std::string> topics = {"aliased/one", "aliased/two", "aliased/three"};
    auto send_round = [&](int round) {
        for (int i = 0; i < 30; ++i) {
            publisher->publish(topics[i % 3], std::to_string(round) + "/" + std::to_string(i), 0)
                .wait();
        }
    };
    send_round(0);
    ASSERT_TRUE(inbox.wait_for(30));
    proxy.reset_all();
    // Connected again (not the old connection, not yet noticed as lost).
    ASSERT_TRUE(wait_until(
        [&] { return publisher->metrics().reconnects >= 1 && publisher->is_connected(); }));
    send_round(1);
    ASSERT_TRUE(inbox.wait_for(60));
    for (const auto& message : inbox.messages()) {
        const int i = std::stoi(message.payload.substr(message.payload.find('/') + 1));
        EXPECT_EQ(message.topic, topics[i % 3]) << message.payload;
    }
}

// ---- the manager's shortcuts ---------------------------------------------------------

TEST(Mqtt5, TheManagersShortcutsTakeTheSessionsProperties) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    auto a = connect(manager, v5("a", broker.uri()));
    auto b = connect(manager, v5("b", broker.uri()));
    Collector inbox;
    auto route = manager.subscribe_to("a", "short/#", 1, inbox.handler(), {.no_local = true});
    mqttx::PublishProperties properties;
    properties.content_type = "text/plain";
    manager.publish_to("a", "short/own", "dropped by no_local", 1, false, properties).wait();
    manager.publish_to("b", "short/one", "1", 1, false, properties).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    const auto tokens = manager.publish_to_all("short/all", "2", 1, false, properties);
    for (const auto& token : tokens) token.wait();
    ASSERT_TRUE(inbox.wait_for(2));  // from b; a's own is not sent back
    const auto messages = inbox.messages();
    EXPECT_EQ(messages[0].payload, "1");
    EXPECT_EQ(messages[0].properties.content_type, "text/plain");
    EXPECT_EQ(messages[1].payload, "2");
    EXPECT_EQ(messages[1].properties.content_type, "text/plain");
    auto v3 = manager.add_session(mqttx::quick_connect("v3", broker.uri()).build());
    EXPECT_EQ(
        error_kind_of([&] { manager.publish_to_all("short/all", "3", 1, false, properties); }),
        ErrorKind::configuration);
}

}  // namespace
