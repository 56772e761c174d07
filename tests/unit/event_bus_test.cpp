#include "event_bus.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mqttx/events.hpp"

namespace mqttx::detail {
namespace {

Event make_event(EventType type, std::string session = "s1") {
    return Event{type, std::move(session), std::monostate{}, std::chrono::system_clock::now()};
}

// Records the events a handler saw.
struct Recorder {
    std::mutex mutex;
    std::vector<EventType> types;

    EventHandler handler() {
        return [this](const Event& event) {
            std::lock_guard lock(mutex);
            types.push_back(event.type);
        };
    }
    std::vector<EventType> seen() {
        std::lock_guard lock(mutex);
        return types;
    }
};

class EventBusTest : public ::testing::Test {
  protected:
    EventSubscription subscribe(std::optional<EventType> type, EventHandler handler) {
        return {bus_, bus_->add(type, std::move(handler))};
    }

    std::shared_ptr<EventBus> bus_ = std::make_shared<EventBus>();
};

TEST_F(EventBusTest, DeliverWithoutHandlers) {
    EXPECT_EQ(bus_->deliver(make_event(EventType::error)), 0);
}

TEST_F(EventBusTest, TypedGetsOnlyItsTypeOnAnyGetsAll) {
    Recorder connected;
    Recorder any;
    auto a = subscribe(EventType::session_connected, connected.handler());
    auto b = subscribe(std::nullopt, any.handler());
    const std::vector<EventType> sent{EventType::session_connecting, EventType::session_connected,
                                      EventType::error, EventType::session_connected};
    for (auto type : sent) EXPECT_EQ(bus_->deliver(make_event(type)), 0);
    EXPECT_EQ(connected.seen(),
              (std::vector<EventType>{EventType::session_connected, EventType::session_connected}));
    EXPECT_EQ(any.seen(), sent);
}

TEST_F(EventBusTest, HandlerReceivesTheEvent) {
    Event got{};
    auto sub =
        subscribe(EventType::session_reconnecting, [&got](const Event& event) { got = event; });
    Event sent = make_event(EventType::session_reconnecting, "north");
    sent.data = ReconnectInfo{3, std::chrono::milliseconds(250)};
    bus_->deliver(sent);
    EXPECT_EQ(got.type, EventType::session_reconnecting);
    EXPECT_EQ(got.session, "north");
    ASSERT_TRUE(std::holds_alternative<ReconnectInfo>(got.data));
    EXPECT_EQ(std::get<ReconnectInfo>(got.data).attempt, 3);
    EXPECT_EQ(std::get<ReconnectInfo>(got.data).delay, std::chrono::milliseconds(250));
    EXPECT_EQ(got.timestamp, sent.timestamp);
}

TEST_F(EventBusTest, HandlersRunInRegistrationOrder) {
    std::vector<int> order;
    auto a = subscribe(std::nullopt, [&order](const Event&) { order.push_back(1); });
    auto b = subscribe(EventType::error, [&order](const Event&) { order.push_back(2); });
    auto c = subscribe(std::nullopt, [&order](const Event&) { order.push_back(3); });
    bus_->deliver(make_event(EventType::error));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_F(EventBusTest, DestroyingSubscriptionStopsDelivery) {
    Recorder recorder;
    {
        auto sub = subscribe(std::nullopt, recorder.handler());
        bus_->deliver(make_event(EventType::session_added));
    }
    bus_->deliver(make_event(EventType::session_removed));
    EXPECT_EQ(recorder.seen(), (std::vector<EventType>{EventType::session_added}));
}

TEST_F(EventBusTest, UnsubscribeStopsDeliveryAndIsIdempotent) {
    Recorder recorder;
    Recorder other;
    auto sub = subscribe(std::nullopt, recorder.handler());
    auto keep = subscribe(std::nullopt, other.handler());
    bus_->deliver(make_event(EventType::session_added));
    sub.unsubscribe();
    sub.unsubscribe();
    bus_->deliver(make_event(EventType::session_removed));
    EXPECT_EQ(recorder.seen(), (std::vector<EventType>{EventType::session_added}));
    // Removing one registration leaves the others.
    EXPECT_EQ(other.seen(),
              (std::vector<EventType>{EventType::session_added, EventType::session_removed}));
}

TEST_F(EventBusTest, MoveAssignmentRemovesTheOverwrittenHandler) {
    Recorder first;
    Recorder second;
    auto sub = subscribe(std::nullopt, first.handler());
    sub = subscribe(std::nullopt, second.handler());  // drops `first`
    bus_->deliver(make_event(EventType::error));
    EXPECT_TRUE(first.seen().empty());
    EXPECT_EQ(second.seen(), (std::vector<EventType>{EventType::error}));
    sub = EventSubscription{};  // drops `second`
    bus_->deliver(make_event(EventType::error));
    EXPECT_EQ(second.seen(), (std::vector<EventType>{EventType::error}));
}

TEST_F(EventBusTest, MoveConstructionTransfersOwnership) {
    Recorder recorder;
    auto sub = subscribe(std::nullopt, recorder.handler());
    {
        EventSubscription moved(std::move(sub));
        sub.unsubscribe();  // the moved-from one owns nothing
        bus_->deliver(make_event(EventType::session_ready));
    }
    bus_->deliver(make_event(EventType::session_ready));
    EXPECT_EQ(recorder.seen(), (std::vector<EventType>{EventType::session_ready}));
}

TEST_F(EventBusTest, SelfMoveAssignmentKeepsSubscription) {
    Recorder recorder;
    auto sub = subscribe(std::nullopt, recorder.handler());
    auto& alias = sub;
    sub = std::move(alias);
    bus_->deliver(make_event(EventType::error));
    EXPECT_EQ(recorder.seen(), (std::vector<EventType>{EventType::error}));
}

TEST_F(EventBusTest, HandlerMayRemoveItselfDuringDelivery) {
    int calls = 0;
    EventSubscription self;
    self = subscribe(std::nullopt, [&](const Event&) {
        ++calls;
        self.unsubscribe();
    });
    bus_->deliver(make_event(EventType::error));
    bus_->deliver(make_event(EventType::error));
    EXPECT_EQ(calls, 1);
}

TEST_F(EventBusTest, HandlerMayAddAnotherDuringDelivery) {
    Recorder added;
    std::vector<EventSubscription> subs;
    int calls = 0;
    auto adder = subscribe(std::nullopt, [&](const Event&) {
        if (calls++ == 0) subs.push_back(subscribe(std::nullopt, added.handler()));
    });
    bus_->deliver(make_event(EventType::session_connecting));
    bus_->deliver(make_event(EventType::session_connected));
    // Added during the first delivery: it sees the later ones.
    EXPECT_EQ(added.seen(), (std::vector<EventType>{EventType::session_connected}));
    EXPECT_EQ(calls, 2);
}

TEST_F(EventBusTest, HandlerMayDeliverAgainFromInside) {
    Recorder recorder;
    auto inner = subscribe(EventType::session_ready, recorder.handler());
    auto outer = subscribe(EventType::session_connected, [&](const Event&) {
        bus_->deliver(make_event(EventType::session_ready));
    });
    bus_->deliver(make_event(EventType::session_connected));
    EXPECT_EQ(recorder.seen(), (std::vector<EventType>{EventType::session_ready}));
}

TEST_F(EventBusTest, ThrowingHandlersAreCountedAndOthersStillRun) {
    Recorder before;
    Recorder after;
    auto a = subscribe(std::nullopt, before.handler());
    auto b =
        subscribe(std::nullopt, [](const Event&) { throw std::runtime_error("handler failed"); });
    auto c = subscribe(EventType::error, [](const Event&) { throw 42; });
    auto d = subscribe(std::nullopt, after.handler());
    EXPECT_EQ(bus_->deliver(make_event(EventType::error)), 2);
    EXPECT_EQ(bus_->deliver(make_event(EventType::session_added)), 1);
    EXPECT_EQ(before.seen(), (std::vector<EventType>{EventType::error, EventType::session_added}));
    EXPECT_EQ(after.seen(), (std::vector<EventType>{EventType::error, EventType::session_added}));
}

TEST_F(EventBusTest, ConcurrentDeliverAndSubscribe) {
    std::atomic<std::uint64_t> calls{0};
    auto permanent = subscribe(std::nullopt, [&calls](const Event&) { calls.fetch_add(1); });
    constexpr int kPerThread = 500;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([this] {
            for (int i = 0; i < kPerThread; ++i) bus_->deliver(make_event(EventType::error));
        });
    }
    threads.emplace_back([this] {
        for (int i = 0; i < kPerThread; ++i) {
            auto temporary = subscribe(std::nullopt, [](const Event&) {});
        }
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(calls.load(), 2u * kPerThread);
}

TEST_F(EventBusTest, SubscriptionOutlivingBusIsSafe) {
    Recorder recorder;
    auto sub = subscribe(std::nullopt, recorder.handler());
    EventSubscription other = subscribe(EventType::error, recorder.handler());
    bus_.reset();  // the bus goes first
    sub.unsubscribe();
    EventSubscription replacement;
    other = std::move(replacement);
    // `sub`, `other` and `replacement` are destroyed after this with no bus left.
    SUCCEED();
}

// Like Route::stop(): once unsubscribe() returns, the handler is not running.
TEST_F(EventBusTest, UnsubscribeWaitsForARunningHandler) {
    std::promise<void> entered;
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> finished{false};
    auto subscription = subscribe(std::nullopt, [&, released](const Event&) {
        entered.set_value();
        released.wait();
        finished = true;
    });
    std::thread deliverer([&] { bus_->deliver(make_event(EventType::error)); });
    entered.get_future().wait();
    auto unsubscribed = std::async(std::launch::async, [&] { subscription.unsubscribe(); });
    // Still running, so unsubscribe() must still be waiting.
    EXPECT_EQ(unsubscribed.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
    release.set_value();
    EXPECT_EQ(unsubscribed.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    EXPECT_TRUE(finished.load());
    deliverer.join();
}

TEST(EventSubscriptionTest, DefaultIsInert) {
    EventSubscription sub;
    sub.unsubscribe();
    EventSubscription moved(std::move(sub));
    SUCCEED();
}

TEST(EventTypeTest, ToStringNamesMatchEnumerators) {
    EXPECT_STREQ(to_string(EventType::session_connecting), "session_connecting");
    EXPECT_STREQ(to_string(EventType::session_connected), "session_connected");
    EXPECT_STREQ(to_string(EventType::session_ready), "session_ready");
    EXPECT_STREQ(to_string(EventType::session_disconnected), "session_disconnected");
    EXPECT_STREQ(to_string(EventType::session_reconnecting), "session_reconnecting");
    EXPECT_STREQ(to_string(EventType::session_added), "session_added");
    EXPECT_STREQ(to_string(EventType::session_removed), "session_removed");
    EXPECT_STREQ(to_string(EventType::session_state_changed), "session_state_changed");
    EXPECT_STREQ(to_string(EventType::forwarder_stopped), "forwarder_stopped");
    EXPECT_STREQ(to_string(EventType::error), "error");
    EXPECT_STREQ(to_string(static_cast<EventType>(1000)), "unknown");
}

}  // namespace
}  // namespace mqttx::detail
