// A session's lifecycle as its handlers see it: events in the order the state changed,
// and a reason for every disconnect.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "support/fake_broker.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::EventType;
using mqttx::SessionState;
using mqttx::test::wait_until;

// Every event of one session, in the order handlers got them.
class EventLog {
  public:
    EventLog(mqttx::SessionManager& manager, std::string session)
        : session_(std::move(session)),
          subscription_(manager.on_any_event([this](const mqttx::Event& event) {
              if (event.session != session_) return;
              std::lock_guard lock(mutex_);
              events_.push_back(event);
          })) {}

    std::vector<mqttx::Event> events() const {
        std::lock_guard lock(mutex_);
        return events_;
    }
    template <class Data>
    std::vector<Data> all(EventType type) const {
        std::vector<Data> found;
        for (const auto& event : events()) {
            if (event.type == type) found.push_back(std::get<Data>(event.data));
        }
        return found;
    }

  private:
    const std::string session_;
    mutable std::mutex mutex_;
    std::vector<mqttx::Event> events_;
    mqttx::EventSubscription subscription_;
};

// The state each event says the session is in, checked against the chain of state
// changes: a handler must never see "connected" after the change that ended it.
void expect_consistent(const std::vector<mqttx::Event>& events) {
    SessionState state = SessionState::disconnected;
    int changes = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& event = events[i];
        const auto where = "event " + std::to_string(i) + " (" + to_string(event.type) + ")";
        switch (event.type) {
            case EventType::session_state_changed: {
                const auto change = std::get<mqttx::StateChange>(event.data);
                ASSERT_EQ(change.old_state, state) << where;
                ASSERT_NE(change.new_state, change.old_state) << where;
                state = change.new_state;
                ++changes;
                break;
            }
            case EventType::session_connected:
                // Announced with the change to connected, which comes next.
                ASSERT_NE(state, SessionState::connected) << where;
                ASSERT_LT(i + 1, events.size()) << where;
                ASSERT_EQ(events[i + 1].type, EventType::session_state_changed) << where;
                ASSERT_EQ(std::get<mqttx::StateChange>(events[i + 1].data).new_state,
                          SessionState::connected)
                    << where;
                break;
            case EventType::session_disconnected:
                // Announced with the change away from connected, which comes next.
                ASSERT_EQ(state, SessionState::connected) << where;
                ASSERT_LT(i + 1, events.size()) << where;
                ASSERT_EQ(events[i + 1].type, EventType::session_state_changed) << where;
                break;
            case EventType::session_ready:
                ASSERT_EQ(state, SessionState::connected) << where;
                break;
            case EventType::session_reconnecting:
                ASSERT_EQ(state, SessionState::reconnecting) << where;
                break;
            default:
                break;
        }
    }
    EXPECT_GT(changes, 0);
}

// Connections reset under the session while the application disconnects it the moment
// it is connected, and connects it again, from another thread: the races between
// Paho's callbacks and the application's calls that once let `connected` arrive after
// `disconnected`.
TEST(Lifecycle, EventsFollowTheStateChangesUnderRepeatedResets) {
    mqttx::test::Mosquitto broker;
    mqttx::test::FaultProxy proxy(broker.port());
    mqttx::SessionManager manager;
    EventLog log(manager, "flappy");
    auto options = mqttx::quick_connect("flappy", proxy.uri())
                       .auto_reconnect({5ms, 20ms, 2.0, 0.0})
                       .subscribe("lifecycle/#", 1, [](const auto&) {})
                       .build();
    // A reset can swallow the DISCONNECT; the application's thread then waits this long
    // (and a second more).
    options.disconnect_timeout = 100ms;
    auto session = manager.add_session(options);
    manager.connect("flappy");
    manager.wait_for_session("flappy", 20s);

    std::atomic<bool> stop{false};
    std::thread application([&] {
        while (!stop.load()) {
            // Spins, to disconnect while Paho's thread is still announcing the connect.
            while (!stop.load() && session->state() != SessionState::connected) {
                std::this_thread::yield();
            }
            manager.disconnect_all();
            manager.connect("flappy");
        }
    });
    // Until the races have happened often enough.
    const bool raced = wait_until(
        [&] {
            proxy.reset_all();
            return log.all<mqttx::ConnectInfo>(EventType::session_connected).size() >= 30 &&
                   log.all<mqttx::DisconnectInfo>(EventType::session_disconnected).size() >= 30;
        },
        60s);
    stop = true;
    application.join();
    manager.connect("flappy");
    manager.wait_for_session("flappy", 20s);
    // The last state change has reached the handlers.
    ASSERT_TRUE(wait_until([&] {
        const auto events = log.events();
        for (auto it = events.rbegin(); it != events.rend(); ++it) {
            if (it->type == EventType::session_state_changed)
                return std::get<mqttx::StateChange>(it->data).new_state == session->state();
        }
        return false;
    }));
    const auto events = log.events();
    expect_consistent(events);
    EXPECT_TRUE(raced) << "fewer than 30 connects and disconnects in 60 s";
}

// A session "s" of `manager` on `broker`, connected and ready.
void connect_one(mqttx::SessionManager& manager, mqttx::SessionBuilder builder) {
    manager.add_session(builder.build());
    manager.connect("s");
    manager.wait_for_session("s", 20s);
}

// The first disconnect event in `log`, once there is one (empty if none in 20 s).
mqttx::DisconnectInfo first_disconnect(const EventLog& log) {
    mqttx::DisconnectInfo found;
    EXPECT_TRUE(wait_until([&] {
        const auto all = log.all<mqttx::DisconnectInfo>(EventType::session_disconnected);
        if (all.empty()) return false;
        found = all.front();
        return true;
    })) << "no session_disconnected event";
    return found;
}

TEST(Lifecycle, ALostConnectionNamesTheBrokerAndHowLongItHeld) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    EventLog log(manager, "s");
    connect_one(manager, mqttx::quick_connect("s", broker.uri()));
    broker.kill();
    const auto info = first_disconnect(log);
    EXPECT_EQ(info.cause, mqttx::DisconnectCause::connection_lost);
    EXPECT_EQ(info.broker, broker.uri());
    EXPECT_NE(info.reason.find(broker.uri()), std::string::npos) << info.reason;
    EXPECT_NE(info.reason.find("dropped"), std::string::npos) << info.reason;
    EXPECT_EQ(info.reason_code, 0);
}

TEST(Lifecycle, TheApplicationsDisconnectSaysSo) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
    EventLog log(manager, "s");
    connect_one(manager, mqttx::quick_connect("s", broker.uri()));
    manager.disconnect_all();
    const auto info = first_disconnect(log);
    EXPECT_EQ(info.cause, mqttx::DisconnectCause::application);
    EXPECT_EQ(info.broker, broker.uri());
    EXPECT_NE(info.reason.find("by the application"), std::string::npos) << info.reason;
}

// mosquitto 2.0.11 closes a connection without a DISCONNECT (even on a session takeover),
// so the fake broker sends one.
TEST(Lifecycle, TheBrokersDisconnectGivesItsReasonCodeStringAndServerReference) {
    mqttx::test::FakeBroker broker;
    mqttx::SessionManager manager;
    EventLog log(manager, "s");
    connect_one(
        manager,
        mqttx::quick_connect("s", broker.uri()).protocol(mqttx::Protocol::v5).no_reconnect());
    ASSERT_EQ(broker.send_disconnect(0x8B, "maintenance at 02:00", "tcp://127.0.0.1:1"), 1u);
    const auto info = first_disconnect(log);
    EXPECT_EQ(info.cause, mqttx::DisconnectCause::broker_disconnect);
    EXPECT_EQ(info.reason_code, 0x8B);
    EXPECT_EQ(info.reason_string, "maintenance at 02:00");
    EXPECT_EQ(info.server_reference, "tcp://127.0.0.1:1");
    EXPECT_EQ(info.broker, broker.uri());
    for (const char* part : {"0x8B", "maintenance at 02:00", "tcp://127.0.0.1:1"}) {
        EXPECT_NE(info.reason.find(part), std::string::npos) << info.reason;
    }
    EXPECT_NE(info.reason.find(broker.uri()), std::string::npos) << info.reason;
}

// ---- connect failures in words -------------------------------------------------------

// The first error event of session "s" once it has failed to connect.
mqttx::ErrorInfo first_connect_error(mqttx::SessionManager& manager, const EventLog& log) {
    mqttx::ErrorInfo found;
    EXPECT_TRUE(wait_until([&] {
        const auto errors = log.all<mqttx::ErrorInfo>(EventType::error);
        if (errors.empty()) return false;
        found = errors.front();
        return true;
    }));
    manager.disconnect_all();
    return found;
}

TEST(ConnectFailureWords, AClosedPortIsAConnectionRefused) {
    const int port = mqttx::test::free_port();
    mqttx::SessionManager manager;
    EventLog log(manager, "s");
    manager.add_session(
        mqttx::quick_connect("s", "tcp://127.0.0.1:" + std::to_string(port)).build());
    manager.connect("s");
    const auto error = first_connect_error(manager, log);
    EXPECT_EQ(error.kind, mqttx::ErrorKind::connection);
    EXPECT_NE(error.message.find("connection refused by 127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << error.message;
}

TEST(ConnectFailureWords, ABrokerThatNeverAnswersIsATimeout) {
    mqttx::test::Mosquitto broker;
    mqttx::test::FaultProxy proxy(broker.port());
    proxy.set_stalled(true);  // accepts the TCP connection, never passes CONNECT on
    mqttx::SessionManager manager;
    EventLog log(manager, "s");
    auto options = mqttx::quick_connect("s", proxy.uri()).build();
    options.connect_timeout = 1s;
    manager.add_session(options);
    manager.connect("s");
    const auto error = first_connect_error(manager, log);
    EXPECT_EQ(error.kind, mqttx::ErrorKind::timeout);
    EXPECT_NE(error.message.find("no answer from 127.0.0.1:" + std::to_string(proxy.port()) +
                                 " within the connect timeout (1000 ms)"),
              std::string::npos)
        << error.message;
}

class BrokerRefusal : public ::testing::TestWithParam<mqttx::Protocol> {};

TEST_P(BrokerRefusal, NamesTheConnackCode) {
    mqttx::test::Mosquitto broker({.extra_config = "allow_anonymous false\n"});
    mqttx::SessionManager manager;
    EventLog log(manager, "s");
    manager.add_session(mqttx::quick_connect("s", broker.uri()).protocol(GetParam()).build());
    manager.connect("s");
    const auto error = first_connect_error(manager, log);
    EXPECT_EQ(error.kind, mqttx::ErrorKind::authentication) << error.message;
    EXPECT_NE(error.message.find("the broker at " + broker.host_port() + " refused"),
              std::string::npos)
        << error.message;
    const std::string code = GetParam() == mqttx::Protocol::v5
                                 ? "CONNACK reason code 0x87 (Not authorized)"
                                 : "CONNACK code 5 (not authorised)";
    EXPECT_NE(error.message.find(code), std::string::npos) << error.message;
}

INSTANTIATE_TEST_SUITE_P(Protocols, BrokerRefusal,
                         ::testing::Values(mqttx::Protocol::v311, mqttx::Protocol::v5),
                         [](const auto& info) {
                             return info.param == mqttx::Protocol::v5 ? std::string("v5")
                                                                      : std::string("v311");
                         });

// ---- a publish window that never drains ------------------------------------------------

// The fake broker never acknowledges a publish: the window stalls as it does with a
// broker that answers QoS 2 wrongly (RabbitMQ 3.10).
TEST(StalledWindow, IsReportedWithTheBrokerQosAndPacketIds) {
    mqttx::test::FakeBroker broker;
    mqttx::SessionManager manager;
    EventLog log(manager, "s");
    auto options = mqttx::quick_connect("s", broker.uri()).build();
    options.performance.in_flight_stall_after = 1s;
    auto session = manager.add_session(options);
    manager.connect("s");
    manager.wait_for_session("s", 20s);
    std::vector<mqttx::DeliveryToken> tokens;
    for (int i = 0; i < 3; ++i) tokens.push_back(session->publish("stalled", "x", 2));
    ASSERT_TRUE(wait_until(
        [&] { return !log.all<mqttx::WindowStalled>(EventType::window_stalled).empty(); }));
    const auto stall = log.all<mqttx::WindowStalled>(EventType::window_stalled).front();
    EXPECT_EQ(stall.broker, broker.uri());
    EXPECT_GE(stall.waited, 1s);
    ASSERT_EQ(stall.messages.size(), 3u);
    std::set<int> ids;
    for (const auto& message : stall.messages) {
        EXPECT_EQ(message.qos, 2);
        EXPECT_GT(message.packet_id, 0);
        ids.insert(message.packet_id);
    }
    EXPECT_EQ(ids.size(), 3u);
    const auto metrics = session->metrics();
    EXPECT_TRUE(metrics.window_stalled);
    EXPECT_EQ(metrics.window_stalls, 1u);
    EXPECT_EQ(manager.metrics().sessions_stalled, 1u);
    EXPECT_NE(manager.prometheus_text().find("mqtt_session_window_stalled{session=\"s\"} 1"),
              std::string::npos);
}

// mosquitto's max_qos: an MQTT 5 broker's CONNACK says "Maximum QoS 1".
TEST(BrokerMaximumQos, APublishAboveItFailsAtOnceNamingTheLimit) {
    mqttx::test::Mosquitto broker({.extra_config = "max_qos 1\n"});
    mqttx::SessionManager manager;
    auto session = manager.add_session(
        mqttx::quick_connect("s", broker.uri()).protocol(mqttx::Protocol::v5).build());
    manager.connect("s");
    manager.wait_for_session("s", 20s);
    auto refused = session->publish("limited", "x", 2);
    try {
        refused.wait_for(20s);
        ADD_FAILURE() << "a QoS 2 publish above the broker's Maximum QoS was accepted";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), mqttx::ErrorKind::invalid_qos);
        EXPECT_NE(std::string(e.what()).find("Maximum QoS of 1"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(session->publish("limited", "x", 1).wait_for(20s));
    EXPECT_TRUE(session->is_connected());
}

}  // namespace
