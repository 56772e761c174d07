#include "scheduler.hpp"
#include "support/sync.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace mqttx::detail {
namespace {

using mqttx::test::eventually;
using mqttx::test::Gate;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = 20s;

// Records the order in which tasks ran.
class Order {
  public:
    void add(int value) {
        std::lock_guard lock(mutex_);
        values_.push_back(value);
    }
    std::vector<int> values() {
        std::lock_guard lock(mutex_);
        return values_;
    }

  private:
    std::mutex mutex_;
    std::vector<int> values_;
};

// The values are 0, 1, ..., count - 1, in that order.
void expect_sequence(const std::vector<int>& values, int count) {
    ASSERT_EQ(values.size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) EXPECT_EQ(values[i], i);
}

TEST(SchedulerTest, PostRuns) {
    Scheduler scheduler;
    Gate done;
    std::atomic<bool> on_thread{false};
    char name[16] = {};
    ASSERT_TRUE(scheduler.post([&] {
        on_thread = scheduler.on_scheduler_thread();
        pthread_getname_np(pthread_self(), name, sizeof name);
        done.open();
    }));
    EXPECT_TRUE(done.wait());
    EXPECT_TRUE(on_thread.load());
    EXPECT_STREQ(name, "mqttx-scheduler");
    EXPECT_FALSE(scheduler.on_scheduler_thread());
}

TEST(SchedulerTest, PostAfterRunsNotBeforeItsDelay) {
    Scheduler scheduler;
    for (auto delay : {1ms, 30ms, 100ms}) {
        Gate done;
        Clock::time_point ran_at{};
        const auto start = Clock::now();
        ASSERT_TRUE(scheduler.post_after(delay, [&] {
            ran_at = Clock::now();
            done.open();
        }));
        ASSERT_TRUE(done.wait());
        EXPECT_GE(ran_at - start, delay) << delay.count() << " ms";
    }
}

TEST(SchedulerTest, PostAtInThePastRunsAtOnce) {
    Scheduler scheduler;
    Gate done;
    ASSERT_TRUE(scheduler.post_at(Clock::now() - 1h, [&] { done.open(); }));
    EXPECT_TRUE(done.wait());
}

TEST(SchedulerTest, SameDueTimeRunsInPostingOrder) {
    Scheduler scheduler;
    Order order;
    Gate done;
    constexpr int kCount = 200;
    const auto when = Clock::now() + 20ms;
    for (int i = 0; i < kCount; ++i) {
        ASSERT_TRUE(scheduler.post_at(when, [&, i] {
            order.add(i);
            if (i == kCount - 1) done.open();
        }));
    }
    ASSERT_TRUE(done.wait());
    expect_sequence(order.values(), kCount);
}

TEST(SchedulerTest, ImmediatePostsRunInPostingOrder) {
    Scheduler scheduler;
    Order order;
    Gate done;
    constexpr int kCount = 200;
    for (int i = 0; i < kCount; ++i) {
        ASSERT_TRUE(scheduler.post([&, i] {
            order.add(i);
            if (i == kCount - 1) done.open();
        }));
    }
    ASSERT_TRUE(done.wait());
    expect_sequence(order.values(), kCount);
}

TEST(SchedulerTest, EarlierDueTaskPostedLaterRunsFirst) {
    Scheduler scheduler;
    Order order;
    Gate release;
    Gate blocking;
    Gate done;
    // Hold the thread so that both tasks are queued, whatever the timing, before either is due.
    ASSERT_TRUE(scheduler.post([&] {
        blocking.open();
        release.wait();
    }));
    ASSERT_TRUE(blocking.wait());
    const auto base = Clock::now();
    ASSERT_TRUE(scheduler.post_at(base + 20ms, [&] {
        order.add(2);
        done.open();
    }));
    ASSERT_TRUE(scheduler.post_at(base + 10ms, [&] { order.add(1); }));
    release.open();
    ASSERT_TRUE(done.wait());
    EXPECT_EQ(order.values(), (std::vector<int>{1, 2}));
}

TEST(SchedulerTest, EarlierDueTaskPostedWhileWaitingRunsFirst) {
    Scheduler scheduler;
    Order order;
    Gate done;
    // The thread sleeps towards the far task; a nearer one must wake it.
    ASSERT_TRUE(scheduler.post_after(
        std::chrono::duration_cast<std::chrono::milliseconds>(kDeadline), [&] { order.add(2); }));
    ASSERT_TRUE(scheduler.post([&] {
        order.add(1);
        done.open();
    }));
    ASSERT_TRUE(done.wait());
    EXPECT_EQ(order.values(), (std::vector<int>{1}));
    scheduler.stop();
    EXPECT_EQ(order.values(), (std::vector<int>{1}));
}

TEST(SchedulerTest, StopDropsPendingTasksPromptlyAndRefusesPosts) {
    Scheduler scheduler;
    std::atomic<bool> ran{false};
    ASSERT_TRUE(scheduler.post_after(10s, [&] { ran = true; }));
    const auto start = Clock::now();
    scheduler.stop();
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_FALSE(scheduler.post([&] { ran = true; }));
    EXPECT_FALSE(scheduler.post_after(1ms, [&] { ran = true; }));
    EXPECT_FALSE(scheduler.post_at(Clock::now(), [&] { ran = true; }));
    scheduler.stop();  // idempotent
    EXPECT_FALSE(ran.load());
}

TEST(SchedulerTest, StopWaitsForRunningTaskAndDropsTheRest) {
    Scheduler scheduler;
    Gate release;
    Gate blocking;
    std::atomic<bool> first_finished{false};
    std::atomic<bool> second_ran{false};
    ASSERT_TRUE(scheduler.post([&] {
        blocking.open();
        release.wait();
        first_finished = true;
    }));
    ASSERT_TRUE(scheduler.post([&] { second_ran = true; }));  // due, but behind the first
    ASSERT_TRUE(blocking.wait());
    std::atomic<bool> stop_returned{false};
    std::thread stopper([&] {
        scheduler.stop();
        stop_returned = true;
    });
    // stop() has taken effect once posts are refused; it must then wait for the running task.
    ASSERT_TRUE([&] {
        const auto until = Clock::now() + kDeadline;
        while (scheduler.post([] {})) {
            if (Clock::now() >= until) return false;
            std::this_thread::yield();
        }
        return true;
    }());
    EXPECT_FALSE(stop_returned.load());
    release.open();
    stopper.join();
    EXPECT_TRUE(first_finished.load());
    EXPECT_FALSE(second_ran.load());
}

TEST(SchedulerTest, StopFromInsideTaskDoesNotDeadlock) {
    auto scheduler = std::make_unique<Scheduler>();
    Gate go;
    Gate done;
    std::atomic<bool> refused_after{false};
    std::atomic<bool> later_ran{false};
    ASSERT_TRUE(scheduler->post([&] {
        go.wait();
        scheduler->stop();
        refused_after = !scheduler->post([&] { later_ran = true; });
        done.open();
    }));
    ASSERT_TRUE(scheduler->post_after(1ms, [&] { later_ran = true; }));  // dropped by stop()
    go.open();
    EXPECT_TRUE(done.wait());
    EXPECT_TRUE(refused_after.load());
    EXPECT_FALSE(scheduler->post([&] { later_ran = true; }));
    scheduler->stop();  // from another thread after the self-stop: returns
    EXPECT_FALSE(later_ran.load());
}

TEST(SchedulerTest, ThrowingTaskDoesNotKillThread) {
    Scheduler scheduler;
    Gate done;
    ASSERT_TRUE(scheduler.post([] { throw std::runtime_error("task failed"); }));
    ASSERT_TRUE(scheduler.post([] { throw 42; }));
    ASSERT_TRUE(scheduler.post_after(1ms, [&] { done.open(); }));
    EXPECT_TRUE(done.wait());
}

TEST(SchedulerTest, TaskMayPostMoreTasks) {
    Scheduler scheduler;
    Gate done;
    std::atomic<int> depth{0};
    std::function<void()> step = [&] {
        if (depth.fetch_add(1) + 1 == 10) {
            done.open();
        } else {
            scheduler.post(step);
        }
    };
    ASSERT_TRUE(scheduler.post(step));
    EXPECT_TRUE(done.wait());
    scheduler.stop();
    EXPECT_EQ(depth.load(), 10);
}

TEST(SchedulerTest, DestructorReleasesPendingTasks) {
    auto captured = std::make_shared<int>(0);
    std::weak_ptr<int> watch = captured;
    {
        Scheduler scheduler;
        ASSERT_TRUE(scheduler.post_after(10s, [captured] { ++*captured; }));
        captured.reset();
        EXPECT_FALSE(watch.expired());
    }
    EXPECT_TRUE(watch.expired());
}

}  // namespace
// The last owner of a scheduler may be one of its own tasks (a task holding the last
// reference to whatever owns it): the detached thread must not touch the freed object.
// AddressSanitizer (the asan preset) reports it if it does.
TEST(SchedulerTest, DestroyedByItsOwnTask) {
    auto scheduler = std::make_shared<Scheduler>();
    std::weak_ptr<Scheduler> weak = scheduler;
    Gate last_dropped;
    auto* raw = scheduler.get();
    ASSERT_TRUE(raw->post([&last_dropped, keep = std::move(scheduler)]() mutable {
        keep.reset();  // the last reference: ~Scheduler runs on its own thread
        last_dropped.open();
    }));
    ASSERT_TRUE(last_dropped.wait());
    EXPECT_TRUE(weak.expired());
}

}  // namespace mqttx::detail
