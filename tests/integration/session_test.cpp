// Sessions against a real mosquitto that each test starts on a free loopback port.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "support/collector.hpp"
#include "support/error_kind.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"
#include "support/sync.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::test::Collector;
using mqttx::test::error_kind_of;

class SessionTest : public ::testing::Test {
  protected:
    std::shared_ptr<mqttx::Session> add(const std::string& name,
                                        mqttx::Protocol protocol = mqttx::Protocol::v311) {
        return manager.add_session(
            mqttx::quick_connect(name, broker.uri()).protocol(protocol).build());
    }
    void connect_all() {
        manager.connect_all();
        manager.wait_for_all_sessions(20s);
    }

    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;  // declared last: closed before the broker stops
};

// Every byte value, NUL included: payloads are bytes, not text.
std::string binary_payload() {
    std::string payload;
    for (int i = 0; i < 256; ++i) payload.push_back(static_cast<char>(i));
    return payload;
}

class RoundTrip : public SessionTest, public ::testing::WithParamInterface<int> {};

TEST_P(RoundTrip, PayloadArrivesByteForByte) {
    const int qos = GetParam();
    auto subscriber = add("sub");
    auto publisher = add("pub");
    Collector inbox;
    auto route = subscriber->subscribe("rt/#", qos, inbox.handler());
    connect_all();

    const std::string payload = binary_payload();
    publisher->publish("rt/binary", payload, qos).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    const auto received = inbox.messages().front();
    EXPECT_EQ(received.session, "sub");
    EXPECT_EQ(received.topic, "rt/binary");
    EXPECT_EQ(received.payload, payload);
    EXPECT_EQ(received.qos, qos);
    EXPECT_FALSE(received.retained);
    EXPECT_EQ(route.stats().received, 1u);
    EXPECT_EQ(publisher->metrics().messages_sent, 1u);
    EXPECT_EQ(subscriber->metrics().messages_received, 1u);
    EXPECT_EQ(subscriber->metrics().bytes_received, payload.size());
}

INSTANTIATE_TEST_SUITE_P(QoS, RoundTrip, ::testing::Values(0, 1, 2));

TEST_F(SessionTest, Mqtt5PropertiesArriveIntact) {
    auto subscriber = add("sub5", mqttx::Protocol::v5);
    auto publisher = add("pub5", mqttx::Protocol::v5);
    Collector inbox;
    auto route = subscriber->subscribe("props/+", 1, inbox.handler());
    connect_all();

    mqttx::PublishProperties properties;
    properties.user_properties = {{"origin", "site-a"}, {"origin", "site-b"}, {"unit", "°C"}};
    properties.content_type = "application/json";
    properties.message_expiry = 3600s;
    properties.response_topic = "props/reply";
    properties.correlation_data = std::string("\x00\x01\xff", 3);
    properties.payload_is_utf8 = true;
    publisher->publish("props/x", R"({"t":21.5})", 1, false, properties).wait();

    ASSERT_TRUE(inbox.wait_for(1));
    const auto received = inbox.messages().front();
    EXPECT_EQ(received.payload, R"({"t":21.5})");
    EXPECT_EQ(received.properties.user_properties, properties.user_properties);
    EXPECT_EQ(received.properties.content_type, properties.content_type);
    EXPECT_EQ(received.properties.response_topic, properties.response_topic);
    EXPECT_EQ(received.properties.correlation_data, properties.correlation_data);
    EXPECT_EQ(received.properties.payload_is_utf8, properties.payload_is_utf8);
    ASSERT_TRUE(received.properties.message_expiry.has_value());
    // The broker sends the remaining lifetime, which may have lost a second in transit.
    EXPECT_GE(*received.properties.message_expiry, 3599s);
    EXPECT_LE(*received.properties.message_expiry, 3600s);
}

TEST_F(SessionTest, PropertiesOnAnMqtt311SessionAreRefused) {
    auto session = add("v311");
    mqttx::PublishProperties properties;
    properties.content_type = "text/plain";
    EXPECT_EQ(error_kind_of([&] { session->publish("a", "b", 0, false, properties); }),
              ErrorKind::configuration);
}

TEST_F(SessionTest, RetainedMessageReachesALateSubscriber) {
    auto publisher = add("pub");
    connect_all();
    publisher->publish("retained/state", "on", 1, true).wait();

    auto late = add("late");
    Collector inbox;
    auto route = late->subscribe("retained/#", 1, inbox.handler());
    manager.connect("late");
    manager.wait_for_session("late", 20s);
    ASSERT_TRUE(inbox.wait_for(1));
    const auto received = inbox.messages().front();
    EXPECT_EQ(received.topic, "retained/state");
    EXPECT_EQ(received.payload, "on");
    EXPECT_TRUE(received.retained);
}

TEST_F(SessionTest, WillIsPublishedWhenTheConnectionIsCutWithoutDisconnect) {
    mqttx::test::FaultProxy proxy(broker.port());
    auto watcher = add("watcher");
    Collector inbox;
    auto route = watcher->subscribe("status/#", 1, inbox.handler());
    auto mortal = manager.add_session(mqttx::quick_connect("mortal", proxy.uri())
                                          .will("status/mortal", "gone", 1, false)
                                          .no_reconnect()
                                          .build());
    connect_all();
    EXPECT_EQ(inbox.size(), 0u);

    proxy.reset_all();  // the broker sees the socket die, with no DISCONNECT before it
    ASSERT_TRUE(inbox.wait_for(1));
    const auto will = inbox.messages().front();
    EXPECT_EQ(will.topic, "status/mortal");
    EXPECT_EQ(will.payload, "gone");
    EXPECT_EQ(will.qos, 1);
    ASSERT_TRUE(mqttx::test::wait_until(
        [&] { return mortal->state() == mqttx::SessionState::disconnected; }));
}

TEST_F(SessionTest, NoWillAfterAnOrderlyClose) {
    auto watcher = add("watcher");
    Collector inbox;
    auto route = watcher->subscribe("status/#", 1, inbox.handler());
    add("sentinel");
    auto polite = manager.add_session(mqttx::quick_connect("polite", broker.uri())
                                          .will("status/polite", "gone", 1, false)
                                          .build());
    connect_all();
    manager.remove_session("polite");
    manager.publish_to("sentinel", "status/sentinel", "still here", 1);
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(inbox.messages().front().topic, "status/sentinel");
}

// mosquitto lets a client have 20 QoS 2 messages awaiting PUBREL and, over MQTT 3.1.1,
// acknowledges but drops the rest; Paho alone would send the whole burst at once.
TEST_F(SessionTest, Qos2BurstLargerThanTheBrokersInFlightLimitArrivesWhole) {
    auto sub = add("sub");
    auto pub = add("pub");
    Collector inbox;
    auto route = sub->subscribe("burst", 2, inbox.handler());
    connect_all();
    constexpr int count = 2000;
    std::vector<mqttx::DeliveryToken> tokens;
    for (int i = 0; i < count; ++i) tokens.push_back(pub->publish("burst", std::to_string(i), 2));
    for (auto& token : tokens) ASSERT_TRUE(token.wait_for(60s));
    ASSERT_TRUE(inbox.wait_for(count, 60s)) << "received " << inbox.size() << " of " << count;
    EXPECT_EQ(inbox.distinct_payloads(), static_cast<std::size_t>(count));
}

TEST_F(SessionTest, HundredSessionsConnectAtOnceAndAllPublish) {
    auto collector_session = add("collector");
    Collector inbox;
    auto route = collector_session->subscribe("fleet/#", 1, inbox.handler());
    std::vector<std::shared_ptr<mqttx::Session>> fleet;
    for (int i = 0; i < 100; ++i) fleet.push_back(add("device-" + std::to_string(i)));

    manager.connect_all();
    manager.wait_for_all_sessions(60s);
    for (const auto& [name, state] : manager.get_all_sessions_status()) {
        EXPECT_EQ(state, mqttx::SessionState::connected) << name;
    }

    for (const auto& session : fleet) session->publish("fleet/" + session->name(), "up", 1);
    ASSERT_TRUE(inbox.wait_for(100, 30s)) << "got " << inbox.size();
    std::set<std::string> topics;
    for (const auto& message : inbox.messages()) topics.insert(message.topic);
    EXPECT_EQ(topics.size(), 100u);
}

TEST_F(SessionTest, WaitForSessionOnADownBrokerTimesOutNamingIt) {
    const int nothing_listens = mqttx::test::free_port();
    manager.add_session(
        mqttx::quick_connect("orphan", "tcp://127.0.0.1:" + std::to_string(nothing_listens))
            .auto_reconnect({100ms, 500ms, 2.0, 0.2})
            .build());
    add("healthy");
    mqttx::test::Gate failed;
    auto on_error = manager.on_event(mqttx::EventType::error, [&](const mqttx::Event& e) {
        if (e.session == "orphan") failed.open();
    });
    manager.connect_all();
    ASSERT_TRUE(failed.wait()) << "no connect failure reported";
    const std::string port = std::to_string(nothing_listens);
    try {
        manager.wait_for_session("orphan", 1500ms);
        FAIL() << "wait_for_session returned for a session whose broker is down";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::timeout);
        EXPECT_TRUE(mqttx::is_timeout(e));
        EXPECT_EQ(e.session(), "orphan");
        EXPECT_NE(std::string(e.what()).find("orphan"), std::string::npos);
        // Why it is not ready, not only that it is not: the last connect's failure.
        EXPECT_NE(std::string(e.what()).find("last_connect_error="), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(port), std::string::npos) << e.what();
    }
    try {
        manager.wait_for_all_sessions(1500ms);
        FAIL() << "wait_for_all_sessions returned with a session down";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::timeout);
        const std::string what = e.what();
        EXPECT_NE(what.find("orphan (reconnecting, last connect: "), std::string::npos) << what;
        EXPECT_NE(what.find(port), std::string::npos) << what;
        EXPECT_EQ(what.find("healthy"), std::string::npos) << what;
    }
    EXPECT_EQ(manager.get_session("orphan")->state(), mqttx::SessionState::reconnecting);
}

TEST_F(SessionTest, UnknownSessionIsRefused) {
    EXPECT_EQ(error_kind_of([&] { manager.get_session("nope"); }), ErrorKind::session_not_found);
    EXPECT_EQ(error_kind_of([&] { manager.publish_to("nope", "a", "b"); }),
              ErrorKind::session_not_found);
    EXPECT_EQ(error_kind_of([&] { manager.remove_session("nope"); }), ErrorKind::session_not_found);
    EXPECT_EQ(error_kind_of([&] { manager.connect("nope"); }), ErrorKind::session_not_found);
    EXPECT_EQ(error_kind_of([&] { manager.wait_for_session("nope", 10ms); }),
              ErrorKind::session_not_found);
}

TEST_F(SessionTest, DuplicateSessionNameIsRefused) {
    add("twin");
    EXPECT_EQ(error_kind_of([&] { add("twin"); }), ErrorKind::duplicate_session);
    EXPECT_EQ(manager.list_sessions(), std::vector<std::string>{"twin"});
}

TEST_F(SessionTest, BadTopicsQosAndPayloadsAreRefused) {
    mqttx::PerformanceOptions performance;
    performance.buffer_kb = 1;
    auto session = manager.add_session(
        mqttx::quick_connect("strict", broker.uri()).performance(performance).build());
    connect_all();
    auto handler = [](const mqttx::Message&) {};
    EXPECT_EQ(error_kind_of([&] { session->publish("a/+", "x"); }), ErrorKind::invalid_topic);
    EXPECT_EQ(error_kind_of([&] { session->publish("", "x"); }), ErrorKind::invalid_topic);
    EXPECT_EQ(error_kind_of([&] { session->publish("a", "x", 3); }), ErrorKind::invalid_qos);
    EXPECT_EQ(error_kind_of([&] { session->publish("a", "x", -1); }), ErrorKind::invalid_qos);
    EXPECT_EQ(error_kind_of([&] { session->publish("a", std::string(1025, 'x')); }),
              ErrorKind::payload_too_large);
    EXPECT_EQ(error_kind_of([&] { session->subscribe("a/#/b", 0, handler); }),
              ErrorKind::invalid_topic);
    EXPECT_EQ(error_kind_of([&] { session->subscribe("a", 3, handler); }), ErrorKind::invalid_qos);
    EXPECT_EQ(error_kind_of([&] { session->subscribe("a", 0, nullptr); }),
              ErrorKind::configuration);
    EXPECT_EQ(session->metrics().active_subscriptions, 0u) << "a refused route left a subscription";
    EXPECT_NO_THROW(session->publish("a", std::string(1024, 'x')).wait());
}

TEST_F(SessionTest, RemoveSessionWhileAnotherThreadPublishes) {
    auto session = add("doomed");
    connect_all();
    std::atomic<int> published{0};
    std::atomic<bool> saw_closed{false};
    std::atomic<bool> other_error{false};
    std::thread publisher([&] {
        while (!saw_closed) {
            try {
                session->publish("doomed/x", "payload", 1);
                ++published;
            } catch (const mqttx::Error& e) {
                if (e.kind() == ErrorKind::session_closed) {
                    saw_closed = true;
                } else if (e.kind() != ErrorKind::buffer_full) {
                    other_error = true;
                    saw_closed = true;
                }
            }
        }
    });
    ASSERT_TRUE(mqttx::test::wait_until([&] { return published > 100; }));
    manager.remove_session("doomed");
    publisher.join();
    EXPECT_TRUE(saw_closed);
    EXPECT_FALSE(other_error);
    EXPECT_EQ(session->state(), mqttx::SessionState::closed);
    EXPECT_EQ(error_kind_of([&] { session->subscribe("a", 0, [](const mqttx::Message&) {}); }),
              ErrorKind::session_closed);
    EXPECT_TRUE(manager.list_sessions().empty());
}

TEST_F(SessionTest, StoppedRouteReceivesNothingWhileItsTwinKeepsReceiving) {
    auto subscriber = add("sub");
    auto publisher = add("pub");
    Collector first;
    Collector second;
    auto route_a = subscriber->subscribe("twin/topic", 1, first.handler());
    auto route_b = subscriber->subscribe("twin/topic", 1, second.handler());
    connect_all();

    publisher->publish("twin/topic", "1", 1).wait();
    ASSERT_TRUE(first.wait_for(1));
    ASSERT_TRUE(second.wait_for(1));

    route_a.stop();
    EXPECT_FALSE(route_a.active());
    EXPECT_EQ(subscriber->metrics().active_subscriptions, 1u);  // still needed by route_b
    publisher->publish("twin/topic", "2", 1).wait();
    ASSERT_TRUE(second.wait_for(2));
    EXPECT_EQ(first.size(), 1u);

    route_b.stop();
    EXPECT_EQ(subscriber->metrics().active_subscriptions, 0u);
}

TEST_F(SessionTest, UnsubscribeStopsDelivery) {
    auto subscriber = add("sub");
    auto publisher = add("pub");
    Collector gone;
    Collector sentinel;
    auto route = subscriber->subscribe("unsub/a", 1, gone.handler());
    auto keep = subscriber->subscribe("unsub/b", 1, sentinel.handler());
    connect_all();
    subscriber->unsubscribe("unsub/a");
    EXPECT_FALSE(route.active());
    publisher->publish("unsub/a", "should not arrive", 1).wait();
    publisher->publish("unsub/b", "sentinel", 1).wait();
    ASSERT_TRUE(sentinel.wait_for(1));
    EXPECT_EQ(gone.size(), 0u);
}

// Two subscriptions each, so that the restore after the restart sends several
// SUBSCRIBEs: with MQTT 5 that used to crash the process (issue 18). The MQTT 5 option
// no_local must survive the restore: the subscriber's own publish stays away.
class Restart : public SessionTest, public ::testing::WithParamInterface<mqttx::Protocol> {};

TEST_P(Restart, SubscriptionsComeBackAfterABrokerRestart) {
    const bool v5 = GetParam() == mqttx::Protocol::v5;
    const mqttx::ReconnectPolicy quick{50ms, 500ms, 2.0, 0.2};
    auto subscriber = manager.add_session(mqttx::quick_connect("sub", broker.uri())
                                              .protocol(GetParam())
                                              .auto_reconnect(quick)
                                              .build());
    auto publisher = manager.add_session(mqttx::quick_connect("pub", broker.uri())
                                             .protocol(GetParam())
                                             .auto_reconnect(quick)
                                             .build());
    Collector inbox;
    Collector others;
    mqttx::SubscribeOptions not_own;
    not_own.no_local = v5;
    auto route = subscriber->subscribe("restart/#", 1, inbox.handler());
    auto second = subscriber->subscribe("other/+", 1, others.handler(), not_own);
    connect_all();
    publisher->publish("restart/before", "1", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));

    broker.stop();
    // Both must have noticed: a session that has not yet seen its socket die still
    // counts as ready, and a QoS 1 message written to the dead socket would be lost
    // with the clean session (see the reconnect issue).
    ASSERT_TRUE(mqttx::test::wait_until(
        [&] { return !subscriber->is_connected() && !publisher->is_connected(); }));
    broker.start();
    manager.wait_for_all_sessions(30s);
    ASSERT_TRUE(publisher->publish("restart/after", "2", 1).wait_for(20s));
    ASSERT_TRUE(inbox.wait_for(2));
    EXPECT_EQ(inbox.messages().back().payload, "2");
    if (v5) {
        ASSERT_TRUE(subscriber->publish("other/own", "own", 1).wait_for(20s));
    }
    ASSERT_TRUE(publisher->publish("other/theirs", "theirs", 1).wait_for(20s));
    ASSERT_TRUE(others.wait_for(1));
    // Published after "other/own" on the same connection, so it arrives after it would.
    ASSERT_TRUE(subscriber->publish("restart/sentinel", "3", 1).wait_for(20s));
    ASSERT_TRUE(inbox.wait_for(3));
    EXPECT_EQ(others.messages().front().payload, "theirs");
    EXPECT_EQ(others.size(), 1u) << "no_local was lost in the restore";
    EXPECT_GE(subscriber->metrics().reconnects, 1u);
}

INSTANTIATE_TEST_SUITE_P(Protocols, Restart,
                         ::testing::Values(mqttx::Protocol::v311, mqttx::Protocol::v5),
                         [](const auto& info) {
                             return info.param == mqttx::Protocol::v5 ? "v5" : "v311";
                         });

// Issue 18: two subscriptions made before connecting, over MQTT 5, crashed at connect.
TEST_F(SessionTest, Mqtt5SessionWithSeveralSubscriptionsAtConnectReceivesOnEach) {
    Collector a;
    Collector b;
    Collector c;
    mqttx::SubscribeOptions keep_retain;
    keep_retain.retain_as_published = true;
    manager.add_session(mqttx::quick_connect("multi", broker.uri())
                            .protocol(mqttx::Protocol::v5)
                            .subscribe("m/a", 1, a.handler())
                            .subscribe("m/b", 2, b.handler())
                            .build());
    auto session = manager.get_session("multi");
    auto route = session->subscribe("m/c", 0, c.handler(), keep_retain);
    auto publisher = add("pub5", mqttx::Protocol::v5);
    connect_all();
    ASSERT_TRUE(publisher->publish("m/a", "1", 1).wait_for(20s));
    ASSERT_TRUE(publisher->publish("m/b", "2", 2).wait_for(20s));
    ASSERT_TRUE(publisher->publish("m/c", "3", 1, true).wait_for(20s));
    ASSERT_TRUE(a.wait_for(1));
    ASSERT_TRUE(b.wait_for(1));
    ASSERT_TRUE(c.wait_for(1));
    EXPECT_EQ(a.messages().front().payload, "1");
    EXPECT_EQ(b.messages().front().qos, 2);
    EXPECT_TRUE(c.messages().front().retained) << "retain_as_published was lost";
}

TEST_F(SessionTest, ConnectEventsArriveInOrder) {
    std::mutex mutex;
    std::vector<mqttx::EventType> seen;
    auto subscription = manager.on_any_event([&](const mqttx::Event& event) {
        if (event.session != "watched") return;
        std::lock_guard lock(mutex);
        seen.push_back(event.type);
    });
    add("watched");
    manager.connect("watched");
    manager.wait_for_session("watched", 20s);
    ASSERT_TRUE(mqttx::test::wait_until([&] {
        std::lock_guard lock(mutex);
        return std::find(seen.begin(), seen.end(), mqttx::EventType::session_ready) != seen.end();
    }));
    std::lock_guard lock(mutex);
    using T = mqttx::EventType;
    const std::vector<T> expected{T::session_added,         T::session_state_changed,
                                  T::session_connecting,    T::session_connected,
                                  T::session_state_changed, T::session_ready};
    EXPECT_EQ(seen, expected);
}

// What a logger writes: level and text of each line.
class CapturingSink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    // Lines at `level` whose text holds `needle`.
    int count(spdlog::level::level_enum level, const std::string& needle) {
        std::lock_guard lock(mutex_);
        int n = 0;
        for (const auto& [at, text] : lines_)
            n += at == level && text.find(needle) != std::string::npos;
        return n;
    }

  protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        lines_.emplace_back(message.level,
                            std::string(message.payload.data(), message.payload.size()));
    }
    void flush_() override {}

  private:
    std::vector<std::pair<spdlog::level::level_enum, std::string>> lines_;
};

TEST(ConnectFailures, ARepeatedFailureIsLoggedOnceAndTheConnectSaysHowManyFailed) {
    const int port = mqttx::test::free_port();  // nothing listens yet
    auto sink = std::make_shared<CapturingSink>();
    auto logger = std::make_shared<spdlog::logger>("connect-failures", sink);
    logger->set_level(spdlog::level::debug);
    mqttx::SessionManager manager;
    std::atomic<int> errors{0};
    auto events = manager.on_event(mqttx::EventType::error, [&](const mqttx::Event& e) {
        if (e.session == "flaky") ++errors;
    });
    auto session =
        manager.add_session(mqttx::quick_connect("flaky", "tcp://127.0.0.1:" + std::to_string(port))
                                .auto_reconnect({20ms, 50ms, 2.0, 0.0})
                                .logger(logger)
                                .build());
    manager.connect_all();
    // Every failure is still an error event (and counted); the log has one warning.
    ASSERT_TRUE(mqttx::test::wait_until([&] { return errors.load() >= 5; }));
    EXPECT_EQ(sink->count(spdlog::level::warn, "connect failed"), 1);
    EXPECT_GE(sink->count(spdlog::level::debug, "failed_attempts="), 4);

    mqttx::test::BrokerOptions on_that_port;
    on_that_port.port = port;
    mqttx::test::Mosquitto broker(on_that_port);
    manager.wait_for_session("flaky", 20s);
    EXPECT_EQ(sink->count(spdlog::level::info, "failed attempt(s)"), 1);
    EXPECT_EQ(sink->count(spdlog::level::warn, "connect failed"), 1);
    EXPECT_GE(session->metrics().errors, 5u);
}

}  // namespace
