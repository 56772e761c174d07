#include "dispatcher.hpp"
#include "support/sync.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <future>

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
#include "session_stats.hpp"

namespace mqttx::detail {
namespace {

using mqttx::test::eventually;
using mqttx::test::Gate;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = 20s;

constexpr std::chrono::milliseconds kBlock =
    std::chrono::duration_cast<std::chrono::milliseconds>(kDeadline);

// Posts a task that keeps `worker` busy until `release` opens; `blocking` opens once
// the worker has taken it.
bool occupy(Dispatcher& dispatcher, std::size_t worker, Gate& blocking, Gate& release) {
    return dispatcher.post(
        worker,
        [&] {
            blocking.open();
            release.wait();
        },
        kBlock);
}

TEST(DispatcherTest, WorkerCountAtLeastOne) {
    Dispatcher none(0, 0);
    EXPECT_EQ(none.worker_count(), 1u);
    Dispatcher four(4, 16);
    EXPECT_EQ(four.worker_count(), 4u);
}

TEST(DispatcherTest, FunctionTasksRun) {
    Dispatcher dispatcher(2, 16);
    Gate done;
    std::atomic<int> ran{0};
    ASSERT_TRUE(dispatcher.post(
        0, [&] { ran.fetch_add(1); }, kBlock));
    ASSERT_TRUE(dispatcher.post(
        1, [&] { ran.fetch_add(1); }, kBlock));
    // Indexes wrap around the worker count.
    ASSERT_TRUE(dispatcher.post(
        7,
        [&] {
            ran.fetch_add(1);
            done.open();
        },
        kBlock));
    ASSERT_TRUE(done.wait());
    EXPECT_TRUE(eventually([&] { return ran.load() == 3; }));
}

TEST(DispatcherTest, TasksRunOnDispatcherThreads) {
    Dispatcher dispatcher(2, 16);
    EXPECT_FALSE(dispatcher.on_dispatcher_thread());
    std::atomic<bool> inside{false};
    char name[16] = {};
    Gate done;
    ASSERT_TRUE(dispatcher.post(
        1,
        [&] {
            inside = dispatcher.on_dispatcher_thread();
            pthread_getname_np(pthread_self(), name, sizeof name);
            done.open();
        },
        kBlock));
    ASSERT_TRUE(done.wait());
    EXPECT_TRUE(inside.load());
    EXPECT_STREQ(name, "mqttx-dispatch");  // what top -H and perf show
}

TEST(DispatcherTest, PerWorkerFifoOrder) {
    constexpr int kCount = 1000;
    Dispatcher dispatcher(4, 64);  // smaller than kCount: posting also waits for room
    std::mutex mutex;
    std::vector<int> order;
    std::thread::id thread;
    bool same_thread = true;
    Gate done;
    for (int i = 0; i < kCount; ++i) {
        ASSERT_TRUE(dispatcher.post(
            3,
            [&, i] {
                std::lock_guard lock(mutex);
                if (order.empty()) {
                    thread = std::this_thread::get_id();
                } else if (thread != std::this_thread::get_id()) {
                    same_thread = false;
                }
                order.push_back(i);
                if (i == kCount - 1) done.open();
            },
            kBlock));
    }
    ASSERT_TRUE(done.wait());
    std::lock_guard lock(mutex);
    ASSERT_EQ(order.size(), static_cast<std::size_t>(kCount));
    for (int i = 0; i < kCount; ++i) ASSERT_EQ(order[i], i);
    EXPECT_TRUE(same_thread);
}

TEST(DispatcherTest, WorkersRunConcurrently) {
    Dispatcher dispatcher(2, 16);
    Gate release;
    Gate blocking;
    Gate other_ran;
    ASSERT_TRUE(occupy(dispatcher, 0, blocking, release));
    ASSERT_TRUE(blocking.wait());
    ASSERT_TRUE(dispatcher.post(
        1, [&] { other_ran.open(); }, kBlock));
    // Worker 1 runs its task while worker 0 is still held.
    EXPECT_TRUE(other_ran.wait());
    EXPECT_FALSE(release.is_open());
    release.open();
}

TEST(DispatcherTest, FullQueueMakesPostReturnFalseAfterBlockFor) {
    Dispatcher dispatcher(1, 2);
    Gate release;
    Gate blocking;
    std::atomic<int> ran{0};
    ASSERT_TRUE(occupy(dispatcher, 0, blocking, release));
    ASSERT_TRUE(blocking.wait());  // dequeued: the ring is empty again
    ASSERT_TRUE(dispatcher.post(
        0, [&] { ran.fetch_add(1); }, 0ms));
    ASSERT_TRUE(dispatcher.post(
        0, [&] { ran.fetch_add(1); }, 0ms));
    const auto start = Clock::now();
    EXPECT_FALSE(dispatcher.post(
        0, [&] { ran.fetch_add(100); }, 50ms));
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 50ms);
    EXPECT_LT(elapsed, kDeadline);
    EXPECT_FALSE(dispatcher.post(
        0, [&] { ran.fetch_add(100); }, 0ms));
    release.open();
    EXPECT_TRUE(eventually([&] { return ran.load() == 2; }));
    // Room again.
    Gate done;
    EXPECT_TRUE(dispatcher.post(
        0, [&] { done.open(); }, kBlock));
    EXPECT_TRUE(done.wait());
    dispatcher.stop();
    EXPECT_EQ(ran.load(), 2);
}

TEST(DispatcherTest, FullQueueAcceptsOnceWorkerFreesRoom) {
    Dispatcher dispatcher(1, 1);
    Gate release;
    Gate blocking;
    Gate last_ran;
    ASSERT_TRUE(occupy(dispatcher, 0, blocking, release));
    ASSERT_TRUE(blocking.wait());
    ASSERT_TRUE(dispatcher.post(
        0, [] {}, 0ms));  // fills the ring
    std::atomic<bool> accepted{false};
    std::thread poster([&] {
        accepted = dispatcher.post(
            0, [&] { last_ran.open(); }, kBlock);
    });
    release.open();  // the worker takes the queued task: room for the waiting post
    poster.join();
    EXPECT_TRUE(accepted.load());
    EXPECT_TRUE(last_ran.wait());
}

TEST(DispatcherTest, PostIntoOwnFullQueueReturnsFalseImmediately) {
    Dispatcher dispatcher(2, 2);
    Gate done;
    std::atomic<bool> first{false};
    std::atomic<bool> second{false};
    std::atomic<bool> third{true};
    Clock::duration elapsed{};
    std::atomic<int> ran{0};
    ASSERT_TRUE(dispatcher.post(
        1,
        [&] {
            first = dispatcher.post(
                1, [&] { ran.fetch_add(1); }, kBlock);
            second = dispatcher.post(
                1, [&] { ran.fetch_add(1); }, kBlock);
            const auto start = Clock::now();
            // Full, and only this thread could make room: waiting would deadlock.
            third = dispatcher.post(
                1, [&] { ran.fetch_add(100); }, kBlock);
            elapsed = Clock::now() - start;
            done.open();
        },
        kBlock));
    ASSERT_TRUE(done.wait());
    EXPECT_TRUE(first.load());
    EXPECT_TRUE(second.load());
    EXPECT_FALSE(third.load());
    EXPECT_LT(elapsed, kDeadline / 2);
    EXPECT_TRUE(eventually([&] { return ran.load() == 2; }));
    dispatcher.stop();
    EXPECT_EQ(ran.load(), 2);
}

TEST(DispatcherTest, StopRunsQueuedTasksThenRefusesPosts) {
    Dispatcher dispatcher(2, 1024);
    Gate release;
    Gate blocking;
    std::atomic<int> ran{0};
    ASSERT_TRUE(occupy(dispatcher, 0, blocking, release));
    ASSERT_TRUE(blocking.wait());
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(dispatcher.post(
            0, [&] { ran.fetch_add(1); }, kBlock));
    std::atomic<bool> stop_returned{false};
    std::thread stopper([&] {
        dispatcher.stop();
        stop_returned = true;
    });
    // stop() marks worker 0 stopping before worker 1: once worker 1 refuses, both do.
    ASSERT_TRUE(eventually([&] {
        return !dispatcher.post(
            1, [] {}, 0ms);
    }));
    EXPECT_FALSE(dispatcher.post(
        0, [&] { ran.fetch_add(1000); }, 0ms));
    EXPECT_FALSE(stop_returned.load());  // worker 0 is still held: stop() is joining it
    release.open();
    stopper.join();
    EXPECT_EQ(ran.load(), 50);
    EXPECT_FALSE(dispatcher.post(
        0, [&] { ran.fetch_add(1000); }, kBlock));
    EXPECT_FALSE(dispatcher.post(
        1, [&] { ran.fetch_add(1000); }, kBlock));
    dispatcher.stop();  // idempotent
    EXPECT_EQ(ran.load(), 50);
}

TEST(DispatcherTest, StopWakesPosterWaitingForRoom) {
    Dispatcher dispatcher(1, 1);
    Gate release;
    Gate blocking;
    ASSERT_TRUE(occupy(dispatcher, 0, blocking, release));
    ASSERT_TRUE(blocking.wait());
    ASSERT_TRUE(dispatcher.post(
        0, [] {}, 0ms));  // full
    std::atomic<bool> poster_started{false};
    std::atomic<bool> accepted{true};
    std::thread poster([&] {
        poster_started = true;
        accepted = dispatcher.post(
            0, [] {}, std::chrono::milliseconds(1h));
    });
    ASSERT_TRUE(eventually([&] { return poster_started.load(); }));
    std::thread stopper([&] { dispatcher.stop(); });
    poster.join();  // woken by stop(), long before its hour is up
    EXPECT_FALSE(accepted.load());
    release.open();
    stopper.join();
}

TEST(DispatcherTest, DestructorStopsAndRunsQueuedTasks) {
    std::atomic<int> ran{0};
    {
        Dispatcher dispatcher(3, 64);
        for (int i = 0; i < 30; ++i)
            ASSERT_TRUE(dispatcher.post(
                i, [&] { ran.fetch_add(1); }, kBlock));
    }
    EXPECT_EQ(ran.load(), 30);
}

TEST(DispatcherTest, ThrowingTaskDoesNotKillWorker) {
    Dispatcher dispatcher(1, 16);
    Gate done;
    ASSERT_TRUE(dispatcher.post(
        0, [] { throw std::runtime_error("task failed"); }, kBlock));
    ASSERT_TRUE(dispatcher.post(
        0, [] { throw 42; }, kBlock));
    ASSERT_TRUE(dispatcher.post(
        0, [&] { done.open(); }, kBlock));
    EXPECT_TRUE(done.wait());
}

// ---------------------------------------------------------------------------------------------
// Message tasks

class DispatcherRouterTest : public ::testing::Test {
  protected:
    std::shared_ptr<RouteEntry> add(std::string filter, MessageHandler handler) {
        auto entry = std::make_shared<RouteEntry>(std::move(filter), 1, std::move(handler),
                                                  std::weak_ptr<RouteOwner>{});
        router_->insert(entry);
        return entry;
    }

    std::shared_ptr<SessionStats> stats_ = std::make_shared<SessionStats>();
    std::shared_ptr<Router> router_ = std::make_shared<Router>(stats_, default_logger());
};

TEST_F(DispatcherRouterTest, MessageReachesRouteHandler) {
    Dispatcher dispatcher(2, 16);
    std::mutex mutex;
    std::vector<std::string> got;
    std::thread::id handler_thread;
    Gate done;
    auto entry = add("a/#", [&](const Message& message) {
        std::lock_guard lock(mutex);
        handler_thread = std::this_thread::get_id();
        got.push_back(std::string(message.topic()) + "=" + message.payload_string());
        if (got.size() == 3) done.open();
    });
    ASSERT_TRUE(dispatcher.post(1, router_, Message::make("a/b", "1"), kBlock));
    ASSERT_TRUE(dispatcher.post(1, router_, Message::make("x/y", "unrouted"), kBlock));
    ASSERT_TRUE(dispatcher.post(1, router_, Message::make("a/c", "2"), kBlock));
    ASSERT_TRUE(dispatcher.post(1, router_, Message::make("a", "3"), kBlock));
    ASSERT_TRUE(done.wait());
    dispatcher.stop();  // joins: every message task has finished
    std::lock_guard lock(mutex);
    EXPECT_EQ(got, (std::vector<std::string>{"a/b=1", "a/c=2", "a=3"}));
    EXPECT_NE(handler_thread, std::this_thread::get_id());
    EXPECT_EQ(entry->stats().received, 3u);
    EXPECT_EQ(stats_->unrouted.load(), 1u);
}

TEST_F(DispatcherRouterTest, ThrowingHandlerIsCountedAndDeliveryGoesOn) {
    Dispatcher dispatcher(1, 16);
    std::atomic<int> calls{0};
    Gate done;
    auto entry = add("t", [&](const Message& message) {
        calls.fetch_add(1);
        if (message.payload() == "boom") throw std::runtime_error("handler failed");
        if (message.payload() == "last") done.open();
    });
    ASSERT_TRUE(dispatcher.post(0, router_, Message::make("t", "boom"), kBlock));
    ASSERT_TRUE(dispatcher.post(0, router_, Message::make("t", "last"), kBlock));
    ASSERT_TRUE(done.wait());
    dispatcher.stop();
    EXPECT_EQ(calls.load(), 2);
    EXPECT_EQ(entry->stats().errors, 1u);
    EXPECT_EQ(stats_->errors.load(), 1u);
}

}  // namespace
// The last owner of a dispatcher may be one of its own tasks: the worker thread, detached
// by that stop(), must not touch the freed dispatcher (the asan preset checks).
TEST(DispatcherTest, DestroyedByItsOwnTask) {
    auto dispatcher = std::make_shared<Dispatcher>(2, 8);
    std::weak_ptr<Dispatcher> weak = dispatcher;
    std::promise<void> last_dropped;
    auto* raw = dispatcher.get();
    ASSERT_TRUE(raw->post(
        1,
        [&last_dropped, keep = std::move(dispatcher)]() mutable {
            keep.reset();  // ~Dispatcher runs on worker 1 itself
            last_dropped.set_value();
        },
        1s));
    ASSERT_EQ(last_dropped.get_future().wait_for(20s), std::future_status::ready);
    EXPECT_TRUE(weak.expired());
}

}  // namespace mqttx::detail
