// Request/response (Requester, respond()) against a real mosquitto.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/error_kind.hpp"
#include "support/mosquitto.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::Message;
using mqttx::test::error_kind_of;

constexpr auto deadline = 20s;

// The Error a future fails with, waited for with a generous deadline; nullopt (and a
// test failure) when it is not ready, holds a reply, or throws something else.
std::optional<mqttx::Error> error_of(std::future<Message>& future) {
    if (future.wait_for(deadline) != std::future_status::ready) {
        ADD_FAILURE() << "the future did not complete";
        return std::nullopt;
    }
    try {
        const auto reply = future.get();
        ADD_FAILURE() << "got a reply: " << reply.payload_string();
    } catch (const mqttx::Error& e) {
        return e;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not an mqttx::Error: " << e.what();
    }
    return std::nullopt;
}

class RequestTest : public ::testing::Test {
  protected:
    std::shared_ptr<mqttx::Session> add(const std::string& name,
                                        mqttx::Protocol protocol = mqttx::Protocol::v5) {
        return manager.add_session(
            mqttx::quick_connect(name, broker.uri()).protocol(protocol).build());
    }
    void connect_all() {
        manager.connect_all();
        manager.wait_for_all_sessions(deadline);
    }
    // Answers every request on `filter` with "re:" + its payload.
    static mqttx::Route serve(const std::shared_ptr<mqttx::Session>& responder,
                              const std::string& filter) {
        mqttx::Session* session = responder.get();  // not the shared_ptr: no cycle
        return responder->subscribe(filter, 1, [session](const Message& request) {
            mqttx::respond(*session, request, "re:" + request.payload_string());
        });
    }

    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;  // declared last: closed before the broker stops
};

TEST_F(RequestTest, ConcurrentRequestsEachGetTheirOwnReply) {
    auto server = add("server");
    auto client = add("client");
    auto route = serve(server, "svc/echo");
    connect_all();
    mqttx::Requester requester(client);
    EXPECT_TRUE(requester.reply_topic().starts_with("mqttx/reply/")) << requester.reply_topic();

    constexpr int threads = 5;
    constexpr int per_thread = 10;
    std::vector<std::vector<std::future<Message>>> futures(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                try {
                    futures[t].push_back(
                        requester.request("svc/echo", "req-" + std::to_string(t * per_thread + i)));
                } catch (const std::exception& e) {
                    ADD_FAILURE() << "request() threw: " << e.what();
                }
            }
        });
    }
    for (auto& worker : workers) worker.join();

    std::set<std::string> correlations;
    for (int t = 0; t < threads; ++t) {
        ASSERT_EQ(futures[t].size(), static_cast<std::size_t>(per_thread));
        for (int i = 0; i < per_thread; ++i) {
            auto& future = futures[t][i];
            ASSERT_EQ(future.wait_for(deadline), std::future_status::ready);
            const Message reply = future.get();
            EXPECT_EQ(reply.payload_string(), "re:req-" + std::to_string(t * per_thread + i));
            EXPECT_EQ(reply.topic(), requester.reply_topic());
            EXPECT_EQ(reply.session(), "client");
            ASSERT_TRUE(reply.properties().correlation_data.has_value());
            correlations.insert(*reply.properties().correlation_data);
        }
    }
    EXPECT_EQ(correlations.size(), static_cast<std::size_t>(threads * per_thread));
    EXPECT_EQ(requester.pending(), 0u);
    EXPECT_EQ(requester.unmatched_replies(), 0u);
}

TEST_F(RequestTest, TwoRequestersOnOneSessionNeverShareReplies) {
    auto server = add("server");
    auto client = add("client");
    auto route = serve(server, "svc/echo");
    connect_all();
    mqttx::Requester first(client);
    mqttx::Requester second(client);
    EXPECT_NE(first.reply_topic(), second.reply_topic());

    auto a = first.request("svc/echo", "a");
    auto b = second.request("svc/echo", "b");
    ASSERT_EQ(a.wait_for(deadline), std::future_status::ready);
    ASSERT_EQ(b.wait_for(deadline), std::future_status::ready);
    EXPECT_EQ(a.get().payload_string(), "re:a");
    EXPECT_EQ(b.get().payload_string(), "re:b");
    EXPECT_EQ(first.unmatched_replies(), 0u);
    EXPECT_EQ(second.unmatched_replies(), 0u);
}

TEST_F(RequestTest, GivenReplyTopicIsUsedAndChecked) {
    auto server = add("server");
    auto client = add("client");
    auto route = serve(server, "svc/echo");
    connect_all();
    mqttx::Requester requester(client, "app/replies/client");
    EXPECT_EQ(requester.reply_topic(), "app/replies/client");
    auto future = requester.request("svc/echo", "hi");
    ASSERT_EQ(future.wait_for(deadline), std::future_status::ready);
    const Message reply = future.get();
    EXPECT_EQ(reply.topic(), "app/replies/client");
    EXPECT_EQ(reply.payload_string(), "re:hi");

    EXPECT_EQ(error_kind_of([&] { mqttx::Requester wild(client, "app/+/client"); }),
              ErrorKind::invalid_topic);
    EXPECT_EQ(error_kind_of([&] { mqttx::Requester shared(client, "$share/g/replies"); }),
              ErrorKind::invalid_topic);
}

TEST_F(RequestTest, RepliesWithUnknownOrNoCorrelationDataAreCountedAndIgnored) {
    auto server = add("server");
    auto client = add("client");
    auto route = serve(server, "svc/echo");
    connect_all();
    mqttx::Requester requester(client);

    server->publish(requester.reply_topic(), "no correlation data", 1).wait();
    mqttx::PublishProperties stray;
    stray.correlation_data = "not-ours-1";
    server->publish(requester.reply_topic(), "unknown correlation data", 1, false, stray).wait();

    auto future = requester.request("svc/echo", "still served");
    ASSERT_EQ(future.wait_for(deadline), std::future_status::ready);
    EXPECT_EQ(future.get().payload_string(), "re:still served");
    EXPECT_TRUE(mqttx::test::wait_until([&] { return requester.unmatched_replies() == 2; }))
        << requester.unmatched_replies();
    EXPECT_EQ(requester.pending(), 0u);
}

TEST_F(RequestTest, NoResponderTimesOut) {
    auto client = add("client");
    connect_all();
    mqttx::Requester requester(client);

    const auto start = std::chrono::steady_clock::now();
    auto future = requester.request("svc/nobody", "anyone?", {.timeout = 300ms});
    auto error = error_of(future);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), ErrorKind::timeout);
    EXPECT_TRUE(mqttx::is_timeout(*error));
    EXPECT_EQ(error->topic(), "svc/nobody");
    EXPECT_EQ(error->session(), "client");
    EXPECT_NE(std::string(error->what()).find("300 ms"), std::string::npos) << error->what();
    EXPECT_GE(elapsed, 300ms);
    EXPECT_EQ(requester.pending(), 0u);
}

TEST_F(RequestTest, RequestWhileOfflineIsAnsweredAfterConnect) {
    auto server = add("server");
    auto client = add("client");
    auto route = serve(server, "svc/echo");
    manager.connect("server");
    manager.wait_for_session("server", deadline);

    // The client is not connected yet: the reply subscription is made on connect, before
    // the buffered request goes out.
    mqttx::Requester requester(client);
    auto future = requester.request("svc/echo", "queued", {.timeout = deadline});
    EXPECT_EQ(requester.pending(), 1u);
    manager.connect("client");
    ASSERT_EQ(future.wait_for(deadline + 5s), std::future_status::ready);
    EXPECT_EQ(future.get().payload_string(), "re:queued");
}

TEST_F(RequestTest, RefusedPublishThrowsAtOnceAndLeavesNothingPending) {
    auto client = add("client");
    connect_all();
    mqttx::Requester requester(client);

    EXPECT_EQ(error_kind_of([&] { requester.request("svc/+/wild", "x"); }),
              ErrorKind::invalid_topic);
    EXPECT_EQ(error_kind_of([&] { requester.request("svc/echo", "x", {.qos = 3}); }),
              ErrorKind::invalid_qos);
    EXPECT_EQ(error_kind_of([&] { requester.request("svc/echo", "x", {.timeout = 0ms}); }),
              ErrorKind::configuration);
    EXPECT_EQ(requester.pending(), 0u);
}

TEST_F(RequestTest, Mqtt311SessionIsRefused) {
    auto session = add("v311", mqttx::Protocol::v311);
    EXPECT_EQ(error_kind_of([&] { mqttx::Requester requester(session); }),
              ErrorKind::configuration);
    EXPECT_EQ(error_kind_of([&] { mqttx::Requester requester(nullptr); }),
              ErrorKind::configuration);
}

TEST_F(RequestTest, RespondNeedsAResponseTopic) {
    auto server = add("server");
    const auto plain = Message::make("svc/echo", "no reply wanted");
    EXPECT_EQ(error_kind_of([&] { mqttx::respond(*server, plain, "reply"); }),
              ErrorKind::configuration);
}

TEST_F(RequestTest, DestroyingTheRequesterFailsWhatIsPending) {
    auto client = add("client");
    connect_all();
    std::future<Message> future;
    {
        mqttx::Requester requester(client);
        future = requester.request("svc/nobody", "anyone?", {.timeout = 60s});
        EXPECT_EQ(requester.pending(), 1u);
    }
    // Failed by the destructor itself, not by the timeout.
    ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
    auto error = error_of(future);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), ErrorKind::session_closed);
    EXPECT_EQ(error->topic(), "svc/nobody");
}

TEST_F(RequestTest, ClosingTheManagerFailsWhatIsPending) {
    auto client = add("client");
    connect_all();
    mqttx::Requester requester(client);
    auto future = requester.request("svc/nobody", "anyone?", {.timeout = 60s});
    manager.close();
    auto error = error_of(future);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), ErrorKind::session_closed);
    EXPECT_EQ(requester.pending(), 0u);
    EXPECT_EQ(error_kind_of([&] { requester.request("svc/nobody", "again"); }),
              ErrorKind::session_closed);
}

}  // namespace
