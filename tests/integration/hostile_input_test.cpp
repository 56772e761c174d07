// Regression tests for input that used to break a session, a wait or a forwarder: a
// message the broker will not take, publishes that break MQTT's wire rules, client ids
// with wildcards, token waits on Paho's own thread, timeouts too long for the clock,
// user code throwing what is not a std::exception, and channels outliving the manager.
// Each test starts its own mosquitto on a free loopback port.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <string>
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
using mqttx::Protocol;
using mqttx::test::Collector;
using mqttx::test::error_kind_of;
using mqttx::test::FaultProxy;
using mqttx::test::Gate;
using mqttx::test::Mosquitto;
using mqttx::test::wait_until;

// Runs `f` when the scope ends, failed assertions included.
class ScopeExit {
  public:
    explicit ScopeExit(std::function<void()> f) : f_(std::move(f)) {}
    ~ScopeExit() { f_(); }
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;

  private:
    std::function<void()> f_;
};

const mqttx::ReconnectPolicy quick_reconnect{50ms, 200ms, 2.0, 0.2};

std::shared_ptr<mqttx::Session> add(mqttx::SessionManager& manager, const std::string& name,
                                    const Mosquitto& broker, Protocol protocol = Protocol::v311) {
    return manager.add_session(mqttx::quick_connect(name, broker.uri()).protocol(protocol).build());
}

void connect_all(mqttx::SessionManager& manager) {
    manager.connect_all();
    manager.wait_for_all_sessions(20s);
}

// Counts the session_disconnected events of `session` in `drops` while the result lives.
auto count_drops(mqttx::SessionManager& manager, std::string session, std::atomic<int>& drops) {
    return manager.on_event(mqttx::EventType::session_disconnected,
                            [&drops, session = std::move(session)](const mqttx::Event& e) {
                                if (e.session == session) ++drops;
                            });
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Success when the token completes within `deadline`; else says why (still pending, or
// the error it failed with).
::testing::AssertionResult delivered(const mqttx::DeliveryToken& token,
                                     std::chrono::milliseconds deadline = 30s) {
    try {
        if (token.wait_for(deadline)) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure()
               << "not delivered within " << deadline.count() << " ms";
    } catch (const mqttx::Error& e) {
        return ::testing::AssertionFailure() << "delivery failed: " << e.what();
    }
}

// ---- the poison guard -----------------------------------------------------------------

// mosquitto closes the connection of a client that sends a packet larger than its
// max_packet_size; over MQTT 3.1.1 it has no way to tell the client the limit. Resent
// after every reconnect, such a message used to cut the session off forever.
struct PoisonCase {
    int attempts;
    bool clean_session;
    Protocol protocol;
    // Who closes the connection on the message: mosquitto (over its max_packet_size;
    // MQTT 5 sessions learn that limit and refuse at the call) or the fault proxy.
    bool proxy_refuses;
};

class PoisonPublish : public ::testing::TestWithParam<PoisonCase> {};

TEST_P(PoisonPublish, IsGivenUpAfterMaxPublishAttemptsAndTheOutboxMovesOn) {
    const auto [attempts, clean_session, protocol, proxy_refuses] = GetParam();
    Mosquitto broker({.extra_config = proxy_refuses ? "" : "max_packet_size 1000\n"});
    FaultProxy proxy(broker.port());
    if (proxy_refuses) proxy.set_poison("poison/big");
    mqttx::SessionManager manager;
    mqttx::PerformanceOptions performance;
    performance.max_publish_attempts = attempts;
    auto builder = mqttx::quick_connect("pub", proxy.uri());
    builder.protocol(protocol).auto_reconnect(quick_reconnect).performance(performance);
    if (!clean_session) builder.client_id("poison-pub").persistent();
    auto publisher = manager.add_session(builder.build());
    auto subscriber = add(manager, "sub", broker);
    Collector inbox;
    auto route = subscriber->subscribe("poison/#", 1, inbox.handler());
    // The publisher's own subscription must outlive the clean start a persistent
    // session makes to drop the poison.
    Collector own_inbox;
    auto own_route = publisher->subscribe("echo/#", 1, own_inbox.handler());
    std::atomic<int> drops{0};
    auto events = count_drops(manager, "pub", drops);
    connect_all(manager);

    auto poison = publisher->publish("poison/big", std::string(2000, 'p'), 1);
    auto next = publisher->publish("poison/next", "next", 1);  // queued behind it
    try {
        const bool acknowledged = poison.wait_for(60s);
        FAIL() << (acknowledged ? "the broker acknowledged a packet over its max_packet_size"
                                : "the message was not given up within 60 s");
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::publish) << e.what();
        EXPECT_TRUE(contains(e.message(), "given up")) << e.what();
        EXPECT_EQ(e.session(), "pub");
        EXPECT_EQ(e.topic(), "poison/big");
    }
    EXPECT_EQ(publisher->metrics().poison_publishes, 1u);

    ASSERT_TRUE(delivered(next)) << "the message queued behind the poison";
    ASSERT_TRUE(delivered(publisher->publish("poison/after", "after", 1)));
    ASSERT_TRUE(inbox.wait_for(2, 30s)) << "received " << inbox.size();
    const auto received = inbox.messages();
    ASSERT_EQ(received.size(), 2u);
    EXPECT_EQ(received[0].payload, "next");
    EXPECT_EQ(received[1].payload, "after");

    ASSERT_TRUE(delivered(subscriber->publish("echo/1", "echo", 1)));
    ASSERT_TRUE(own_inbox.wait_for(1, 30s)) << "the publisher's subscription was lost";

    // The broker closed the connection once per attempt (Paho may see a drop right after
    // CONNACK as a failed connect), and not again once the message was given up.
    ASSERT_TRUE(wait_until([&] { return drops.load() >= attempts; }));
    EXPECT_EQ(drops.load(), attempts);
    EXPECT_EQ(publisher->metrics().poison_publishes, 1u);
    EXPECT_EQ(manager.metrics().poison_publishes, 1u);
    EXPECT_TRUE(publisher->is_connected());
}

INSTANTIATE_TEST_SUITE_P(Cases, PoisonPublish,
                         ::testing::Values(PoisonCase{3, true, Protocol::v311, false},
                                           PoisonCase{1, true, Protocol::v311, false},
                                           PoisonCase{3, false, Protocol::v311, false},
                                           PoisonCase{3, true, Protocol::v5, true},
                                           PoisonCase{3, false, Protocol::v5, true}),
                         [](const auto& info) {
                             const auto& c = info.param;
                             return "x" + std::to_string(c.attempts) +
                                    (c.clean_session ? "_clean" : "_persistent") +
                                    (c.protocol == Protocol::v5 ? "_v5" : "_v311");
                         });

// ---- the broker's Maximum Packet Size (MQTT 5) ------------------------------------------

TEST(HostileInput, Mqtt5PublishOverTheBrokersMaximumPacketSizeIsRefusedAtTheCall) {
    Mosquitto broker({.extra_config = "max_packet_size 1000\n"});
    mqttx::SessionManager manager;
    auto publisher = add(manager, "pub5", broker, Protocol::v5);
    auto subscriber = add(manager, "sub5", broker, Protocol::v5);
    Collector inbox;
    auto route = subscriber->subscribe("big/#", 1, inbox.handler());
    connect_all(manager);

    // A QoS 1 PUBLISH to "big/x" without properties: fixed header 1 + remaining length 2
    // + topic 2+5 + packet id 2 + property length 1 = 13 bytes before the payload.
    const std::string topic = "big/x";
    try {
        publisher->publish(topic, std::string(2000, 'x'), 1);
        FAIL() << "a 2000-byte payload was accepted under a 1000-byte Maximum Packet Size";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::payload_too_large) << e.what();
        EXPECT_TRUE(contains(e.message(), "Maximum Packet Size")) << e.what();
        EXPECT_EQ(e.topic(), topic);
    }
    EXPECT_EQ(error_kind_of([&] { publisher->publish(topic, std::string(988, 'x'), 1); }),
              ErrorKind::payload_too_large)
        << "a 1001-byte packet was accepted";

    // A packet of exactly the limit, and a small one, go through end to end.
    const std::string largest(987, 'y');
    ASSERT_TRUE(delivered(publisher->publish(topic, largest, 1)));
    ASSERT_TRUE(delivered(publisher->publish(topic, "small", 1)));
    ASSERT_TRUE(inbox.wait_for(2));
    const auto received = inbox.messages();
    EXPECT_EQ(received[0].payload, largest);
    EXPECT_EQ(received[1].payload, "small");
    EXPECT_EQ(publisher->metrics().messages_sent, 2u) << "a refused publish was counted as sent";
    EXPECT_EQ(publisher->metrics().reconnects, 0u);
    EXPECT_TRUE(publisher->is_connected());
}

// ---- wire rules checked by publish() -----------------------------------------------------

TEST(HostileInput, PublishBreakingTheWireRulesIsRefusedAtTheCallAndTheSessionStaysUp) {
    struct Case {
        std::string what;
        std::string topic;
        mqttx::PublishProperties properties;
        ErrorKind kind;
        std::string field;  // named in the message (configuration errors)
    };
    std::vector<Case> cases;
    cases.push_back({"control character in the topic", "a\x01", {}, ErrorKind::invalid_topic, ""});
    cases.push_back({"ill-formed UTF-8 in the topic", "a/\xff", {}, ErrorKind::invalid_topic, ""});
    {
        mqttx::PublishProperties p;
        p.user_properties = {{"k", "\xff"}};
        cases.push_back({"user property value not UTF-8", "ok", p, ErrorKind::configuration,
                         "user_properties[0].value"});
    }
    {
        mqttx::PublishProperties p;
        p.user_properties = {{"fine", "v"}, {std::string("k\0y", 3), "v"}};
        cases.push_back({"user property key with a NUL", "ok", p, ErrorKind::configuration,
                         "user_properties[1].key"});
    }
    {
        mqttx::PublishProperties p;
        p.content_type = std::string("\xc3\x28");
        cases.push_back(
            {"content type not UTF-8", "ok", p, ErrorKind::configuration, "content_type"});
    }
    {
        mqttx::PublishProperties p;
        p.response_topic = "reply/+";
        cases.push_back({"response topic with a wildcard", "ok", p, ErrorKind::configuration,
                         "response_topic"});
    }
    {
        mqttx::PublishProperties p;
        p.correlation_data = std::string(70000, 'c');
        cases.push_back({"correlation data over 65535 bytes", "ok", p, ErrorKind::configuration,
                         "correlation_data"});
    }
    {
        mqttx::PublishProperties p;
        p.message_expiry = -1s;
        cases.push_back(
            {"negative message expiry", "ok", p, ErrorKind::configuration, "message_expiry"});
    }

    Mosquitto broker;
    mqttx::SessionManager manager;
    auto publisher = add(manager, "pub5", broker, Protocol::v5);
    auto subscriber = add(manager, "sub5", broker, Protocol::v5);
    Collector inbox;
    auto route = subscriber->subscribe("#", 1, inbox.handler());
    connect_all(manager);

    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        try {
            if (c.properties.empty()) {
                publisher->publish(c.topic, "payload", 1);
            } else {
                publisher->publish(c.topic, "payload", 1, false, c.properties);
            }
            ADD_FAILURE() << "accepted";
        } catch (const mqttx::Error& e) {
            EXPECT_EQ(e.kind(), c.kind) << e.what();
            if (!c.field.empty()) {
                EXPECT_TRUE(contains(e.message(), c.field)) << e.what();
            }
        }
    }

    // Nothing reached the wire, and the broker had no reason to close the connection: a
    // normal publish after them is the first and only message the subscriber gets.
    mqttx::PublishProperties fine;
    fine.user_properties = {{"k", "v"}};
    fine.response_topic = "reply/x";
    ASSERT_TRUE(delivered(publisher->publish("ok", "sentinel", 1, false, fine)));
    ASSERT_TRUE(inbox.wait_for(1));
    const auto received = inbox.messages();
    ASSERT_EQ(received.size(), 1u);
    EXPECT_EQ(received[0].topic, "ok");
    EXPECT_EQ(received[0].payload, "sentinel");
    EXPECT_TRUE(publisher->is_connected());
    EXPECT_EQ(publisher->metrics().reconnects, 0u);
    EXPECT_EQ(publisher->metrics().messages_sent, 1u);
}

// ---- client ids with wildcards ---------------------------------------------------------

// PahoWaker once had a connected session draw broker replies by unsubscribing from a
// wake topic named after its client id: invalid for an id holding '#' or '+', and
// mosquitto closed that session's connection. The waker now talks to no broker at all.
class WildcardClientId : public ::testing::TestWithParam<std::string> {};

TEST_P(WildcardClientId, SessionIsNotDisconnectedWhileOthersConnect) {
    const std::string client_id = GetParam();
    Mosquitto broker({.extra_config = "log_type debug\n"});  // logs each UNSUBSCRIBE
    mqttx::SessionManager manager;
    // No reconnect: a drop would leave it down.
    auto a = manager.add_session(
        mqttx::quick_connect("a", broker.uri()).client_id(client_id).no_reconnect().build());
    Collector inbox;
    auto route = a->subscribe("wild/inbox", 1, inbox.handler());
    std::atomic<int> a_drops{0};
    auto events = count_drops(manager, "a", a_drops);
    manager.connect("a");
    manager.wait_for_session("a", 20s);

    constexpr int others = 5;
    for (int i = 0; i < others; ++i) {
        const std::string name = "b" + std::to_string(i);
        add(manager, name, broker);
        manager.connect(name);
        manager.wait_for_session(name, 20s);
    }
    EXPECT_FALSE(contains(broker.log(), "Received UNSUBSCRIBE")) << broker.log();

    auto last = manager.get_session("b" + std::to_string(others - 1));
    ASSERT_TRUE(delivered(last->publish("wild/inbox", "hello", 1)));
    ASSERT_TRUE(inbox.wait_for(1)) << broker.log();
    EXPECT_EQ(inbox.messages().front().payload, "hello");
    EXPECT_TRUE(a->is_connected());
    EXPECT_EQ(a->metrics().reconnects, 0u);
    EXPECT_EQ(a_drops.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Ids, WildcardClientId, ::testing::Values("dev#1", "a+b"),
                         [](const auto& info) {
                             return info.param == "dev#1" ? std::string("hash")
                                                          : std::string("plus");
                         });

// ---- token waits on Paho's receive thread ----------------------------------------------

// The acknowledgement of a publish arrives on Paho's receive thread: a handler running
// there that waited for it would wait forever, and every session with it.
class InlineTokenWait : public ::testing::TestWithParam<bool> {};  // manager-wide?

TEST_P(InlineTokenWait, IsRefusedAtOnceWhilePollingWorks) {
    const bool manager_wide = GetParam();
    Mosquitto broker;
    mqttx::ManagerOptions manager_options;
    manager_options.inline_handlers = manager_wide;
    mqttx::SessionManager manager(manager_options);
    auto responder = add(manager, "responder", broker);
    auto watcher = add(manager, "watcher", broker);
    auto requester = add(manager, "requester", broker);

    struct Outcome {
        Gate done;
        std::atomic<int> calls{0};
        std::optional<ErrorKind> wait_kind;
        std::string wait_message;
        std::optional<ErrorKind> wait_for_kind;
        bool poll_threw = false;
        bool polled = true;
        mqttx::DeliveryToken token;
    } outcome;
    mqttx::SubscribeOptions on_receive_thread;
    if (!manager_wide) on_receive_thread.handler_thread = mqttx::HandlerThread::receive_thread;
    auto request_route = responder->subscribe(
        "inline/request", 1,
        [&](const mqttx::Message&) {
            if (outcome.calls++ > 0) return;
            auto token = responder->publish("inline/reply", "reply", 1);
            try {
                token.wait();
            } catch (const mqttx::Error& e) {
                outcome.wait_kind = e.kind();
                outcome.wait_message = e.message();
            } catch (...) {
                outcome.wait_kind = ErrorKind::internal;
            }
            try {
                token.wait_for(5s);
            } catch (const mqttx::Error& e) {
                outcome.wait_for_kind = e.kind();
            } catch (...) {
                outcome.wait_for_kind = ErrorKind::internal;
            }
            try {
                outcome.polled = token.wait_for(0ms);
            } catch (...) {
                outcome.poll_threw = true;
            }
            outcome.token = token;
            outcome.done.open();
        },
        on_receive_thread);
    Collector replies;
    auto reply_route = watcher->subscribe("inline/reply", 1, replies.handler());
    connect_all(manager);

    ASSERT_TRUE(delivered(requester->publish("inline/request", "please", 1)));
    ASSERT_TRUE(outcome.done.wait(20s)) << "the handler's token wait hung";
    ASSERT_TRUE(outcome.wait_kind.has_value()) << "wait() returned on the receive thread";
    EXPECT_EQ(*outcome.wait_kind, ErrorKind::configuration) << outcome.wait_message;
    EXPECT_TRUE(contains(outcome.wait_message, "deadlock")) << outcome.wait_message;
    ASSERT_TRUE(outcome.wait_for_kind.has_value()) << "wait_for(5s) returned on the receive thread";
    EXPECT_EQ(*outcome.wait_for_kind, ErrorKind::configuration);
    EXPECT_FALSE(outcome.poll_threw) << "wait_for(0ms) threw";
    EXPECT_FALSE(outcome.polled) << "acknowledged while its receive thread was busy?";

    // The publish itself went through once the handler returned.
    ASSERT_TRUE(delivered(outcome.token));
    ASSERT_TRUE(replies.wait_for(1));
    EXPECT_EQ(replies.messages().front().payload, "reply");
    EXPECT_EQ(outcome.calls.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Where, InlineTokenWait, ::testing::Values(false, true),
                         [](const auto& info) {
                             return info.param ? std::string("ManagerInlineHandlers")
                                               : std::string("RouteOnReceiveThread");
                         });

// ---- timeouts too long for the clock -----------------------------------------------------

// steady_clock's now() plus milliseconds::max() (or 300 years) overflows into the past:
// such a wait used to end at once. Each wait starts while the broker is down, so it can
// only succeed by waiting.
TEST(HostileInput, WaitsWithTimeoutsTooLongForTheClockWaitUntilDone) {
    Mosquitto broker;
    broker.stop();
    mqttx::SessionManager manager;
    auto session = manager.add_session(
        mqttx::quick_connect("late", broker.uri()).auto_reconnect(quick_reconnect).build());
    manager.connect("late");
    auto first = session->publish("late/1", "1", 1);  // into the offline buffer
    auto second = session->publish("late/2", "2", 1);
    ASSERT_FALSE(session->is_connected());
    ASSERT_FALSE(first.is_complete());

    struct Outcome {
        Gate done;
        bool result = false;
        std::string error;
    };
    Outcome ready;
    Outcome first_wait;
    Outcome second_wait;
    auto run = [](Outcome& outcome, std::function<bool()> f) {
        return std::jthread([&outcome, f = std::move(f)] {
            try {
                outcome.result = f();
            } catch (const std::exception& e) {
                outcome.error = e.what();
            }
            outcome.done.open();
        });
    };
    auto t1 = run(ready, [&] {
        manager.wait_for_session("late", std::chrono::milliseconds::max());
        return true;
    });
    auto t2 = run(first_wait, [&] { return first.wait_for(std::chrono::milliseconds::max()); });
    auto t3 = run(second_wait, [&] { return second.wait_for(std::chrono::hours(24 * 365 * 300)); });
    // Whatever happens below, closing the manager ends the waits before the threads join.
    ScopeExit end_waits([&] { manager.close(); });

    EXPECT_FALSE(ready.done.is_open()) << ready.error;  // the broker is still down
    broker.start();
    ASSERT_TRUE(ready.done.wait(60s));
    ASSERT_TRUE(first_wait.done.wait(60s));
    ASSERT_TRUE(second_wait.done.wait(60s));
    EXPECT_TRUE(ready.error.empty()) << ready.error;
    EXPECT_TRUE(first_wait.error.empty()) << first_wait.error;
    EXPECT_TRUE(second_wait.error.empty()) << second_wait.error;
    EXPECT_TRUE(first_wait.result) << "wait_for(milliseconds::max()) gave up";
    EXPECT_TRUE(second_wait.result) << "wait_for(300 years) gave up";
    EXPECT_TRUE(first.is_complete());
    EXPECT_TRUE(second.is_complete());
}

TEST(HostileInput, WriteTimeoutOfMillisecondsMaxIsAcceptedAndSubscribeSucceeds) {
    Mosquitto broker;
    mqttx::SessionManager manager;
    auto patient = manager.add_session(mqttx::quick_connect("patient", broker.uri())
                                           .timeouts(10s, std::chrono::milliseconds::max())
                                           .build());
    EXPECT_EQ(patient->options().write_timeout, std::chrono::milliseconds::max());
    auto publisher = add(manager, "pub", broker);
    connect_all(manager);

    // Connected: subscribe() waits for the SUBACK, bounded by write_timeout.
    Collector inbox;
    mqttx::Route route;
    try {
        route = patient->subscribe("patient/#", 1, inbox.handler());
    } catch (const mqttx::Error& e) {
        FAIL() << "subscribe failed: " << e.what();
    }
    EXPECT_TRUE(route.active());
    EXPECT_EQ(patient->metrics().active_subscriptions, 1u);
    ASSERT_TRUE(delivered(publisher->publish("patient/x", "arrived", 1)));
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(inbox.messages().front().payload, "arrived");
}

// ---- forwarders and user code that throws anything -------------------------------------

TEST(HostileInput, ForwarderDropsAMessageWhosePredicateOrTransformThrowsANonStdException) {
    Mosquitto broker;
    mqttx::SessionManager manager;
    auto source = add(manager, "source", broker, Protocol::v5);
    auto target = add(manager, "target", broker, Protocol::v5);
    auto watcher = add(manager, "watcher", broker, Protocol::v5);
    auto sensor = add(manager, "sensor", broker, Protocol::v5);
    Collector inbox;
    auto route = watcher->subscribe("out/#", 1, inbox.handler());
    connect_all(manager);
    auto& forwarder = manager.forwarders().add(mqttx::ForwarderBuilder("throwing")
                                                   .source("source", {"in/#"})
                                                   .target("target")
                                                   .prefix("out/")
                                                   .filter([](const mqttx::Message& m) {
                                                       if (m.payload() == "evil") throw 42;
                                                       return true;
                                                   })
                                                   .transform([](std::string_view payload) {
                                                       if (payload == "bad") {
                                                           throw std::string("not an exception");
                                                       }
                                                       return std::string(payload) + "!";
                                                   })
                                                   .build());

    ASSERT_TRUE(delivered(sensor->publish("in/a", "evil", 1)));
    ASSERT_TRUE(delivered(sensor->publish("in/b", "bad", 1)));
    ASSERT_TRUE(delivered(sensor->publish("in/c", "good", 1)));
    ASSERT_TRUE(inbox.wait_for(1));
    ASSERT_TRUE(wait_until([&] { return forwarder.metrics().received == 3; }));
    ASSERT_TRUE(wait_until([&] { return forwarder.metrics().acknowledged == 1; }));
    const auto received = inbox.messages();
    ASSERT_EQ(received.size(), 1u);
    EXPECT_EQ(received[0].topic, "out/in/c");
    EXPECT_EQ(received[0].payload, "good!");
    const auto m = forwarder.metrics();
    EXPECT_TRUE(m.running);
    EXPECT_EQ(m.dropped, 2u);
    EXPECT_EQ(m.dropped_transform, 2u);
    EXPECT_EQ(m.dropped_target, 0u);
    EXPECT_EQ(m.forwarded, 1u);
    EXPECT_EQ(m.filtered, 0u);
}

// ---- listen() channels and the manager's close() ---------------------------------------

TEST(HostileInput, ManagerCloseEndsAListenChannelWhileItsRouteIsAlive) {
    Mosquitto broker;
    mqttx::SessionManager manager;
    auto session = add(manager, "listener", broker);
    connect_all(manager);
    auto listener = manager.listen("a/#", 1);

    std::atomic<int> consumed{0};
    Gate finished;
    std::thread consumer([&] {
        for (const auto& message : listener.channel) {
            if (message.topic() == "a/1") ++consumed;
        }
        finished.open();
    });
    // The consumer must not outlive the test, whatever fails: closing the channel
    // ends its loop.
    ScopeExit join([&] {
        if (!finished.is_open()) listener.channel.close();
        consumer.join();
    });

    ASSERT_TRUE(delivered(session->publish("a/1", "x", 1)));
    ASSERT_TRUE(wait_until([&] { return consumed.load() == 1; }));
    manager.close();
    EXPECT_TRUE(finished.wait(20s)) << "the consumer still waits on a closed manager's channel";
    EXPECT_TRUE(listener.channel.closed());
    EXPECT_EQ(consumed.load(), 1);
}

}  // namespace
