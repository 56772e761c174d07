// A persistent session's saved state (subscriptions, times) against a real mosquitto,
// with file and Redis storage: one run saves it, the next reads it and, with
// restore_subscriptions(), receives what the broker kept for those subscriptions.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>

#include "support/collector.hpp"
#include "support/mosquitto.hpp"
#include "support/redis.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::test::Collector;

enum class Backend { file, redis };

// MQTT 5 too: a v5 session restoring two subscriptions at connect used to crash (issue 18).
class SessionStateTest : public ::testing::TestWithParam<std::tuple<Backend, mqttx::Protocol>> {
  protected:
    ~SessionStateTest() override { mqttx::test::remove_tree(dir_); }

    // The same persistent session each run: same client id, same storage.
    mqttx::SessionBuilder persistent_session() {
        auto builder = mqttx::quick_connect("keeper", broker_.uri())
                           .client_id("state-keeper")
                           .protocol(std::get<mqttx::Protocol>(GetParam()))
                           .persistent();
        if (std::get<Backend>(GetParam()) == Backend::file) {
            builder.file_storage(dir_);
        } else {
            if (!redis_) redis_ = std::make_unique<mqttx::test::RedisServer>();
            builder.redis_storage(redis_->address());
        }
        return builder;
    }

    // One run that makes `filters` (QoS 1, "alerts/#" QoS 2) and ends with a close.
    void run_and_close(const std::vector<std::string>& filters,
                       const std::vector<std::string>& unsubscribe = {}) {
        mqttx::SessionManager manager;
        auto session = manager.add_session(persistent_session().build());
        manager.connect_all();
        manager.wait_for_session("keeper", 20s);
        std::vector<mqttx::Route> routes;
        for (const auto& filter : filters) {
            routes.push_back(session->subscribe(filter, filter == "alerts/#" ? 2 : 1,
                                                [](const mqttx::Message&) {}));
        }
        for (const auto& filter : unsubscribe) session->unsubscribe(filter);
        manager.close();  // closed first: the routes end without unsubscribing
    }

    void publish_while_away(const std::vector<std::pair<std::string, std::string>>& messages) {
        mqttx::SessionManager manager;
        auto sender = manager.add_session(mqttx::quick_connect("sender", broker_.uri()).build());
        manager.connect_all();
        manager.wait_for_session("sender", 20s);
        for (const auto& [topic, payload] : messages) {
            ASSERT_TRUE(sender->publish(topic, payload, 1).wait_for(20s)) << topic;
        }
    }

    mqttx::test::Mosquitto broker_;
    std::string dir_ = mqttx::test::make_temp_dir("mqttx-state-");
    std::unique_ptr<mqttx::test::RedisServer> redis_;
};

const mqttx::StoredSubscription* find(const mqttx::StoredSessionState& state,
                                      const std::string& filter) {
    auto it = std::find_if(state.subscriptions.begin(), state.subscriptions.end(),
                           [&](const auto& s) { return s.filter == filter; });
    return it == state.subscriptions.end() ? nullptr : &*it;
}

TEST_P(SessionStateTest, AFirstRunHasNoStoredState) {
    mqttx::SessionManager manager;
    auto session = manager.add_session(persistent_session().build());
    EXPECT_FALSE(session->stored_state().has_value());
}

TEST_P(SessionStateTest, TheNextRunReadsSubscriptionsClientIdAndTimes) {
    const auto before = std::chrono::system_clock::now();
    run_and_close({"alerts/#", "sensors/+/temp", "gone/+"}, {"gone/+"});

    mqttx::SessionManager manager;
    auto session = manager.add_session(persistent_session().build());
    const auto& state = session->stored_state();
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(state->version, mqttx::StoredSessionState::current_version);
    EXPECT_EQ(state->client_id, "state-keeper");
    EXPECT_EQ(state->session, "keeper");
    ASSERT_EQ(state->subscriptions.size(), 2u) << "the unsubscribed filter must be gone";
    ASSERT_NE(find(*state, "alerts/#"), nullptr);
    EXPECT_EQ(find(*state, "alerts/#")->qos, 2);
    ASSERT_NE(find(*state, "sensors/+/temp"), nullptr);
    EXPECT_EQ(find(*state, "sensors/+/temp")->qos, 1);
    // Millisecond resolution in storage.
    EXPECT_GE(state->last_connected, before - 1ms);
    EXPECT_GE(state->last_disconnected, state->last_connected);
    EXPECT_LE(state->last_disconnected, std::chrono::system_clock::now());
}

TEST_P(SessionStateTest, RestoredSubscriptionsReceiveWhatTheBrokerKept) {
    run_and_close({"alerts/#", "sensors/+/temp"});
    publish_while_away({{"alerts/fire", "a1"}, {"sensors/7/temp", "21.5"}, {"other/x", "no"}});

    Collector restored;
    Collector configured;
    mqttx::SessionManager manager;
    // "alerts/#" is configured again by the program; only the other one is restored.
    auto session = manager.add_session(persistent_session()
                                           .subscribe("alerts/#", 2, configured.handler())
                                           .restore_subscriptions(restored.handler())
                                           .build());
    manager.connect_all();
    ASSERT_TRUE(restored.wait_for(1, 20s));
    ASSERT_TRUE(configured.wait_for(1, 20s));
    manager.wait_for_session("keeper", 20s);
    EXPECT_EQ(restored.messages().at(0).topic, "sensors/7/temp");
    EXPECT_EQ(restored.messages().at(0).payload, "21.5");
    EXPECT_EQ(configured.messages().at(0).topic, "alerts/fire");
    EXPECT_EQ(configured.messages().at(0).payload, "a1");
    EXPECT_EQ(session->metrics().active_subscriptions, 2u);

    // Live traffic keeps flowing to the restored route.
    ASSERT_TRUE(session->publish("sensors/8/temp", "19", 1).wait_for(20s));
    ASSERT_TRUE(restored.wait_for(2, 20s));
    EXPECT_EQ(restored.messages().at(1).topic, "sensors/8/temp");
    EXPECT_EQ(restored.size(), 2u);
    EXPECT_EQ(configured.size(), 1u);
}

TEST_P(SessionStateTest, WithoutRestoreTheSubscriptionsAreReportedAndKept) {
    run_and_close({"sensors/+/temp"});
    publish_while_away({{"sensors/1/temp", "20"}});
    {
        mqttx::SessionManager manager;
        auto session = manager.add_session(persistent_session().build());
        ASSERT_TRUE(session->stored_state().has_value());
        EXPECT_EQ(session->stored_state()->subscriptions.size(), 1u);
        manager.connect_all();
        manager.wait_for_session("keeper", 20s);
        EXPECT_EQ(session->metrics().active_subscriptions, 0u);
    }
    // The broker still has the subscription, so the state still says so.
    mqttx::SessionManager manager;
    auto session = manager.add_session(persistent_session().build());
    ASSERT_TRUE(session->stored_state().has_value());
    ASSERT_EQ(session->stored_state()->subscriptions.size(), 1u);
    EXPECT_EQ(session->stored_state()->subscriptions[0].filter, "sensors/+/temp");
    // Until it is unsubscribed.
    manager.connect_all();
    manager.wait_for_session("keeper", 20s);
    session->unsubscribe("sensors/+/temp");
    manager.close();
    mqttx::SessionManager last;
    EXPECT_TRUE(
        last.add_session(persistent_session().build())->stored_state()->subscriptions.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Backends, SessionStateTest,
    ::testing::Combine(::testing::Values(Backend::file, Backend::redis),
                       ::testing::Values(mqttx::Protocol::v311, mqttx::Protocol::v5)),
    [](const auto& info) {
        return std::string(std::get<Backend>(info.param) == Backend::file ? "file" : "redis") +
               (std::get<mqttx::Protocol>(info.param) == mqttx::Protocol::v5 ? "_v5" : "_v311");
    });

TEST(SessionStateFile, AnUnusableRecordIsReportedAndTheSessionStillRuns) {
    mqttx::test::Mosquitto broker;
    const auto dir = mqttx::test::make_temp_dir("mqttx-state-");
    {
        auto storage = mqttx::make_file_storage(dir);
        storage->open("state-bad");
        storage->put(mqttx::session_state_key, R"({"version":1,"client_id":7})");
    }
    {
        Collector inbox;
        mqttx::SessionManager manager;
        auto session = manager.add_session(mqttx::quick_connect("bad", broker.uri())
                                               .client_id("state-bad")
                                               .persistent()
                                               .file_storage(dir)
                                               .restore_subscriptions(inbox.handler())
                                               .build());
        EXPECT_FALSE(session->stored_state().has_value());
        auto route = session->subscribe("t", 1, inbox.handler());
        manager.connect_all();
        manager.wait_for_session("bad", 20s);
        ASSERT_TRUE(session->publish("t", "ok", 1).wait_for(20s));
        ASSERT_TRUE(inbox.wait_for(1));
        EXPECT_EQ(inbox.messages().at(0).payload, "ok");
    }
    // The session wrote a good record over the bad one.
    mqttx::SessionManager manager;
    auto session = manager.add_session(mqttx::quick_connect("bad", broker.uri())
                                           .client_id("state-bad")
                                           .persistent()
                                           .file_storage(dir)
                                           .build());
    ASSERT_TRUE(session->stored_state().has_value());
    EXPECT_EQ(session->stored_state()->client_id, "state-bad");
    mqttx::test::remove_tree(dir);
}

}  // namespace
