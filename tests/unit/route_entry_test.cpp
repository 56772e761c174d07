// RouteEntry's stop()/deactivate() guarantee: once stop() returns, the handler is not
// running and never runs again (a handler stopping its own route excepted: it finishes).
#include <gtest/gtest.h>
#include "support/sync.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "logging.hpp"
#include "mqttx/message.hpp"
#include "router.hpp"

namespace mqttx::detail {
namespace {

using mqttx::test::eventually;
using mqttx::test::Gate;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = 20s;
// How long a call that must stay blocked is watched before we conclude it is blocked.
constexpr auto kStaysBlocked = 200ms;

// Runs `fn` on its own thread; false when it did not finish within the deadline (the thread
// is then detached so that the failure is reported instead of hanging the run).
bool finishes(std::function<void()> fn, Clock::duration deadline = kDeadline) {
    auto done = std::make_shared<Gate>();
    std::thread thread([fn = std::move(fn), done] {
        fn();
        done->open();
    });
    if (!done->wait(deadline)) {
        thread.detach();
        return false;
    }
    thread.join();
    return true;
}

class CountingOwner final : public RouteOwner {
  public:
    void remove_route(RouteEntry& entry) noexcept override {
        removed.fetch_add(1);
        last = &entry;
    }
    std::atomic<int> removed{0};
    std::atomic<RouteEntry*> last{nullptr};
};

class RouteEntryTest : public ::testing::Test {
  protected:
    std::shared_ptr<RouteEntry> make(MessageHandler handler) {
        return std::make_shared<RouteEntry>("t/#", 1, std::move(handler), owner_);
    }

    std::shared_ptr<CountingOwner> owner_ = std::make_shared<CountingOwner>();
    std::shared_ptr<spdlog::logger> log_ = default_logger();
};

TEST_F(RouteEntryTest, Accessors) {
    auto entry = make([](const Message&) {});
    EXPECT_EQ(entry->filter(), "t/#");
    EXPECT_EQ(entry->qos(), 1);
    EXPECT_TRUE(entry->active());
    const auto stats = entry->stats();
    EXPECT_EQ(stats.received, 0u);
    EXPECT_EQ(stats.bytes, 0u);
    EXPECT_EQ(stats.errors, 0u);
    EXPECT_EQ(stats.last_message, std::chrono::system_clock::time_point{});
}

TEST_F(RouteEntryTest, DeliverCountsStats) {
    std::vector<std::string> got;
    auto entry = make([&got](const Message& m) { got.push_back(m.payload_string()); });
    const auto before = std::chrono::system_clock::now();
    EXPECT_TRUE(entry->deliver(Message::make("t/a", "abc"), *log_));
    EXPECT_TRUE(entry->deliver(Message::make("t/b", ""), *log_));
    EXPECT_TRUE(entry->deliver(Message::make("t/c", std::string_view("x\0y\0", 4)), *log_));
    const auto after = std::chrono::system_clock::now();
    EXPECT_EQ(got, (std::vector<std::string>{"abc", "", std::string("x\0y\0", 4)}));
    const auto stats = entry->stats();
    EXPECT_EQ(stats.received, 3u);
    EXPECT_EQ(stats.bytes, 7u);
    EXPECT_EQ(stats.errors, 0u);
    EXPECT_GE(stats.last_message, before - 1s);  // system clock: only a sanity range
    EXPECT_LE(stats.last_message, after + 1s);
}

TEST_F(RouteEntryTest, ThrowingHandlerIsCountedNotPropagated) {
    auto entry = make([](const Message& m) {
        if (m.payload() == "std") throw std::runtime_error("handler failed");
        if (m.payload() == "other") throw 42;
    });
    EXPECT_FALSE(entry->deliver(Message::make("t/a", "std"), *log_));
    EXPECT_FALSE(entry->deliver(Message::make("t/a", "other"), *log_));
    EXPECT_TRUE(entry->deliver(Message::make("t/a", "fine"), *log_));
    const auto stats = entry->stats();
    EXPECT_EQ(stats.received, 3u);
    EXPECT_EQ(stats.errors, 2u);
    EXPECT_EQ(stats.bytes, 3u + 5u + 4u);
    EXPECT_TRUE(entry->active());
}

TEST_F(RouteEntryTest, StopTellsOwnerOnceAndDeliverAfterStopDoesNothing) {
    std::atomic<int> calls{0};
    auto entry = make([&calls](const Message&) { calls.fetch_add(1); });
    ASSERT_TRUE(entry->deliver(Message::make("t/a", "1"), *log_));
    entry->stop();
    EXPECT_FALSE(entry->active());
    EXPECT_EQ(owner_->removed.load(), 1);
    EXPECT_EQ(owner_->last.load(), entry.get());
    entry->stop();  // later calls do nothing
    EXPECT_EQ(owner_->removed.load(), 1);
    EXPECT_TRUE(entry->deliver(Message::make("t/a", "22"), *log_));
    EXPECT_EQ(calls.load(), 1);
    const auto stats = entry->stats();  // still readable, unchanged by the late delivery
    EXPECT_EQ(stats.received, 1u);
    EXPECT_EQ(stats.bytes, 1u);
}

TEST_F(RouteEntryTest, StopWithOwnerGoneIsFine) {
    std::atomic<int> calls{0};
    auto entry = make([&calls](const Message&) { calls.fetch_add(1); });
    owner_.reset();
    entry->stop();
    EXPECT_FALSE(entry->active());
    entry->deliver(Message::make("t/a", "x"), *log_);
    EXPECT_EQ(calls.load(), 0);
}

TEST_F(RouteEntryTest, DeactivateDoesNotTellOwner) {
    std::atomic<int> calls{0};
    auto entry = make([&calls](const Message&) { calls.fetch_add(1); });
    entry->deactivate();
    EXPECT_FALSE(entry->active());
    EXPECT_EQ(owner_->removed.load(), 0);
    entry->deliver(Message::make("t/a", "x"), *log_);
    EXPECT_EQ(calls.load(), 0);
}

// The core guarantee: stop() on thread B waits for the handler running on thread A.
TEST_F(RouteEntryTest, StopWaitsForRunningHandler) {
    Gate entered;
    Gate release;
    std::atomic<int> calls{0};
    std::atomic<bool> handler_running{false};
    auto entry = make([&](const Message&) {
        calls.fetch_add(1);
        handler_running = true;
        entered.open();
        release.wait();
        handler_running = false;
    });
    bool delivered = false;
    std::thread a([&] { delivered = entry->deliver(Message::make("t/a", "x"), *log_); });
    ASSERT_TRUE(entered.wait());

    Gate stop_returned;
    std::atomic<bool> running_when_stop_returned{true};
    std::thread b([&] {
        entry->stop();
        running_when_stop_returned = handler_running.load();
        stop_returned.open();
    });
    // stop() has begun once the route reads inactive; it must not return while the handler
    // is held.
    EXPECT_TRUE(eventually([&] { return !entry->active(); }));
    EXPECT_FALSE(stop_returned.wait(kStaysBlocked));
    EXPECT_TRUE(handler_running.load());

    release.open();
    EXPECT_TRUE(stop_returned.wait());
    b.join();
    a.join();
    EXPECT_FALSE(running_when_stop_returned.load());
    EXPECT_TRUE(delivered);
    EXPECT_EQ(owner_->removed.load(), 1);

    // Never again.
    entry->deliver(Message::make("t/a", "y"), *log_);
    EXPECT_EQ(calls.load(), 1);
}

// Same guarantee for deactivate(), which the owner calls when it removes the route.
TEST_F(RouteEntryTest, DeactivateWaitsForRunningHandler) {
    Gate entered;
    Gate release;
    auto entry = make([&](const Message&) {
        entered.open();
        release.wait();
    });
    std::thread a([&] { entry->deliver(Message::make("t/a", "x"), *log_); });
    ASSERT_TRUE(entered.wait());
    Gate returned;
    std::thread b([&] {
        entry->deactivate();
        returned.open();
    });
    EXPECT_FALSE(returned.wait(kStaysBlocked));
    release.open();
    EXPECT_TRUE(returned.wait());
    b.join();
    a.join();
    EXPECT_EQ(owner_->removed.load(), 0);
}

TEST_F(RouteEntryTest, HandlerStoppingItsOwnRouteDoesNotDeadlock) {
    std::shared_ptr<RouteEntry> entry;
    std::atomic<int> calls{0};
    std::atomic<bool> active_after_stop{true};
    entry = make([&](const Message&) {
        calls.fetch_add(1);
        entry->stop();
        active_after_stop = entry->active();
    });
    bool delivered = false;
    EXPECT_TRUE(finishes([&] { delivered = entry->deliver(Message::make("t/a", "x"), *log_); }));
    EXPECT_TRUE(delivered);
    EXPECT_FALSE(active_after_stop.load());
    EXPECT_EQ(owner_->removed.load(), 1);
    entry->deliver(Message::make("t/a", "x"), *log_);
    EXPECT_EQ(calls.load(), 1);
    entry.reset();  // breaks the cycle through the handler's capture
}

TEST_F(RouteEntryTest, HandlerDeactivatingItsOwnRouteDoesNotDeadlock) {
    std::shared_ptr<RouteEntry> entry;
    entry = make([&](const Message&) { entry->deactivate(); });
    EXPECT_TRUE(finishes([&] { entry->deliver(Message::make("t/a", "x"), *log_); }));
    EXPECT_FALSE(entry->active());
    entry.reset();
}

// A handler stopping its own route skips only itself: it still waits for the handler
// running on another thread.
TEST_F(RouteEntryTest, SelfStopStillWaitsForOtherThreadsHandler) {
    std::shared_ptr<RouteEntry> entry;
    Gate held_entered;
    Gate release;
    Gate self_stop_returned;
    entry = make([&](const Message& m) {
        if (m.payload() == "hold") {
            held_entered.open();
            release.wait();
        } else {
            entry->stop();
            self_stop_returned.open();
        }
    });
    std::thread holder([&] { entry->deliver(Message::make("t/a", "hold"), *log_); });
    ASSERT_TRUE(held_entered.wait());
    std::thread stopper([&] { entry->deliver(Message::make("t/a", "stop"), *log_); });
    EXPECT_TRUE(eventually([&] { return !entry->active(); }));
    EXPECT_FALSE(self_stop_returned.wait(kStaysBlocked));
    release.open();
    EXPECT_TRUE(self_stop_returned.wait());
    stopper.join();
    holder.join();
    entry.reset();
}

// Many threads delivering while another stops the route: once stop() has returned no handler
// is inside, and none starts.
TEST_F(RouteEntryTest, StopUnderConcurrentDelivery) {
    for (int round = 0; round < 5; ++round) {
        std::atomic<int> inside{0};
        std::atomic<bool> stopped{false};
        std::atomic<int> violations{0};
        std::atomic<int> calls{0};
        auto entry = make([&](const Message&) {
            inside.fetch_add(1);
            if (stopped.load()) violations.fetch_add(1);
            calls.fetch_add(1);
            inside.fetch_sub(1);
        });
        std::atomic<bool> quit{false};
        std::vector<std::thread> senders;
        for (int t = 0; t < 2; ++t) {
            senders.emplace_back([&] {
                const auto message = Message::make("t/a", "x");
                while (!quit.load()) entry->deliver(message, *log_);
            });
        }
        ASSERT_TRUE(eventually([&] { return calls.load() > 50; }));
        entry->stop();
        stopped = true;
        EXPECT_EQ(inside.load(), 0) << "round " << round;
        // Let the senders go on against the stopped route for a little while.
        const int after_stop = calls.load();
        for (int i = 0; i < 1000; ++i) std::this_thread::yield();
        quit = true;
        for (auto& t : senders) t.join();
        EXPECT_EQ(violations.load(), 0) << "round " << round;
        EXPECT_EQ(calls.load(), after_stop) << "round " << round;
    }
}

// Route::stop() promises that the handler is not running when it returns: a second stop()
// racing with a first one that still waits for the handler must wait too.
TEST_F(RouteEntryTest, ConcurrentSecondStopAlsoWaitsForRunningHandler) {
    Gate entered;
    Gate release;
    std::atomic<bool> handler_running{false};
    auto entry = make([&](const Message&) {
        handler_running = true;
        entered.open();
        release.wait();
        handler_running = false;
    });
    std::thread a([&] { entry->deliver(Message::make("t/a", "x"), *log_); });
    ASSERT_TRUE(entered.wait());
    Gate first_returned;
    std::thread b([&] {
        entry->stop();
        first_returned.open();
    });
    ASSERT_TRUE(eventually([&] { return !entry->active(); }));  // the first stop() has begun
    Gate second_returned;
    std::atomic<bool> running_when_second_returned{false};
    std::thread c([&] {
        entry->stop();
        running_when_second_returned = handler_running.load();
        second_returned.open();
    });
    EXPECT_FALSE(second_returned.wait(kStaysBlocked));
    release.open();
    EXPECT_TRUE(first_returned.wait());
    EXPECT_TRUE(second_returned.wait());
    c.join();
    b.join();
    a.join();
    EXPECT_FALSE(running_when_second_returned.load());
}

}  // namespace
}  // namespace mqttx::detail
