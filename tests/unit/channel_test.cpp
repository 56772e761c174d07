#include "channel_queue.hpp"
#include "support/sync.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mqttx/error.hpp"
#include "mqttx/message.hpp"
#include "mqttx/message_channel.hpp"
#include "mqttx/options.hpp"

namespace mqttx::detail {
namespace {

using mqttx::test::eventually;
using mqttx::test::Gate;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = 20s;

Message numbered(int i) {
    return Message::make("chan/" + std::to_string(i), "payload-" + std::to_string(i));
}

ChannelOptions options(std::size_t capacity, Overflow overflow,
                       std::chrono::milliseconds block_timeout = 1000ms) {
    ChannelOptions o;
    o.capacity = capacity;
    o.overflow = overflow;
    o.block_timeout = block_timeout;
    return o;
}

// Drains without waiting and returns the payloads in order.
std::vector<std::string> drain(ChannelQueue& queue) {
    std::vector<std::string> out;
    while (auto message = queue.try_pop()) out.push_back(message->payload_string());
    return out;
}

std::vector<std::string> payloads(int from, int to) {  // [from, to)
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back("payload-" + std::to_string(i));
    return out;
}

// ---------------------------------------------------------------------------------------------
// ChannelQueue

TEST(ChannelQueueTest, CapacityAsConfigured) {
    ChannelQueue queue(options(5, Overflow::drop_newest));
    EXPECT_EQ(queue.capacity(), 5u);
    EXPECT_EQ(queue.size(), 0u);
    EXPECT_FALSE(queue.closed());
    EXPECT_EQ(queue.dropped(), 0u);
}

TEST(ChannelQueueTest, ZeroCapacityMeansOne) {
    ChannelQueue queue(options(0, Overflow::drop_newest));
    EXPECT_EQ(queue.capacity(), 1u);
    EXPECT_TRUE(queue.push(numbered(0)));
    EXPECT_FALSE(queue.push(numbered(1)));
    EXPECT_EQ(drain(queue), payloads(0, 1));
}

TEST(ChannelQueueTest, DefaultOptions) {
    ChannelQueue queue(ChannelOptions{});
    EXPECT_EQ(queue.capacity(), 1000u);
}

TEST(ChannelQueueTest, FifoOrderAndMessageContent) {
    ChannelQueue queue(options(8, Overflow::drop_newest));
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(queue.push(numbered(i)));
    EXPECT_EQ(queue.size(), 8u);
    for (int i = 0; i < 8; ++i) {
        auto message = queue.pop(std::nullopt);
        ASSERT_TRUE(message.has_value());
        EXPECT_EQ(message->topic(), "chan/" + std::to_string(i));
        EXPECT_EQ(message->payload(), "payload-" + std::to_string(i));
    }
    EXPECT_EQ(queue.size(), 0u);
    EXPECT_EQ(queue.dropped(), 0u);
}

TEST(ChannelQueueTest, FifoOrderAcrossManyWrapArounds) {
    ChannelQueue queue(options(3, Overflow::drop_newest));
    int next_in = 0;
    int next_out = 0;
    for (int round = 0; round < 100; ++round) {
        const int pushes = 1 + round % 3;
        for (int i = 0; i < pushes; ++i) ASSERT_TRUE(queue.push(numbered(next_in++)));
        for (int i = 0; i < pushes; ++i) {
            auto message = queue.try_pop();
            ASSERT_TRUE(message.has_value());
            EXPECT_EQ(message->payload(), "payload-" + std::to_string(next_out++));
        }
    }
    EXPECT_EQ(queue.dropped(), 0u);
}

TEST(ChannelQueueTest, DropNewestKeepsFirstAndCountsExactly) {
    ChannelQueue queue(options(3, Overflow::drop_newest));
    for (int i = 0; i < 10; ++i) EXPECT_EQ(queue.push(numbered(i)), i < 3) << i;
    EXPECT_EQ(queue.dropped(), 7u);
    EXPECT_EQ(queue.size(), 3u);
    EXPECT_EQ(drain(queue), payloads(0, 3));
    // Room again: accepted, and the counter does not move.
    EXPECT_TRUE(queue.push(numbered(10)));
    EXPECT_EQ(queue.dropped(), 7u);
}

TEST(ChannelQueueTest, DropOldestKeepsLastAndCountsExactly) {
    ChannelQueue queue(options(3, Overflow::drop_oldest));
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(queue.push(numbered(i))) << i;
    EXPECT_EQ(queue.dropped(), 7u);
    EXPECT_EQ(queue.size(), 3u);
    EXPECT_EQ(drain(queue), payloads(7, 10));
}

TEST(ChannelQueueTest, BlockWaitsForConsumerAndLosesNothing) {
    constexpr int kCount = 2000;
    ChannelQueue queue(options(4, Overflow::block, std::chrono::milliseconds(kDeadline)));
    std::atomic<int> refused{0};
    std::thread producer([&] {
        for (int i = 0; i < kCount; ++i) {
            if (!queue.push(numbered(i))) refused.fetch_add(1);
        }
    });
    std::vector<std::string> got;
    for (int i = 0; i < kCount; ++i) {
        auto message = queue.pop(kDeadline);
        if (!message) break;
        got.push_back(message->payload_string());
    }
    producer.join();
    EXPECT_EQ(refused.load(), 0);
    EXPECT_EQ(queue.dropped(), 0u);
    EXPECT_EQ(got, payloads(0, kCount));
    EXPECT_EQ(queue.size(), 0u);
}

TEST(ChannelQueueTest, BlockManyProducersManyConsumersLoseNothing) {
    constexpr int kProducers = 4;
    constexpr int kPerProducer = 500;
    ChannelQueue queue(options(8, Overflow::block, std::chrono::milliseconds(kDeadline)));
    std::atomic<int> refused{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            for (int i = 0; i < kPerProducer; ++i) {
                if (!queue.push(Message::make("p/" + std::to_string(p), std::to_string(i)))) {
                    refused.fetch_add(1);
                }
            }
        });
    }
    std::mutex mutex;
    std::map<std::string, std::vector<int>> seen;  // per producer, in pop order per consumer
    std::vector<std::thread> consumers;
    for (int c = 0; c < 2; ++c) {
        consumers.emplace_back([&] {
            std::map<std::string, std::vector<int>> mine;
            while (auto message = queue.pop(std::nullopt)) {
                mine[std::string(message->topic())].push_back(std::stoi(message->payload_string()));
            }
            std::lock_guard lock(mutex);
            for (auto& [topic, values] : mine) {
                // Each consumer sees each producer's messages in increasing order.
                for (std::size_t i = 1; i < values.size(); ++i) {
                    EXPECT_LT(values[i - 1], values[i]) << topic;
                }
                seen[topic].insert(seen[topic].end(), values.begin(), values.end());
            }
        });
    }
    for (auto& t : producers) t.join();
    ASSERT_TRUE(eventually([&] { return queue.size() == 0; }));
    queue.close();
    for (auto& t : consumers) t.join();
    EXPECT_EQ(refused.load(), 0);
    EXPECT_EQ(queue.dropped(), 0u);
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(kProducers));
    for (auto& [topic, values] : seen) {
        std::sort(values.begin(), values.end());
        ASSERT_EQ(values.size(), static_cast<std::size_t>(kPerProducer)) << topic;
        for (int i = 0; i < kPerProducer; ++i) EXPECT_EQ(values[i], i) << topic;
    }
}

TEST(ChannelQueueTest, BlockWithShortTimeoutAndNoConsumerDropsExactlyTheOverflow) {
    ChannelQueue queue(options(3, Overflow::block, 5ms));
    const auto start = Clock::now();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(queue.push(numbered(i)), i < 3) << i;
    EXPECT_LT(Clock::now() - start, kDeadline);
    EXPECT_EQ(queue.dropped(), 2u);
    EXPECT_EQ(drain(queue), payloads(0, 3));
}

TEST(ChannelQueueTest, CloseWakesBlockedPop) {
    ChannelQueue queue(options(4, Overflow::drop_newest));
    std::atomic<bool> started{false};
    std::atomic<bool> returned{false};
    std::optional<Message> result = numbered(99);
    std::thread consumer([&] {
        started = true;
        result = queue.pop(std::nullopt);  // no timeout: only close() ends it
        returned = true;
    });
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    EXPECT_FALSE(returned.load());
    queue.close();
    EXPECT_TRUE(eventually([&] { return returned.load(); }));
    consumer.join();
    EXPECT_FALSE(result.has_value());
    EXPECT_TRUE(queue.closed());
}

TEST(ChannelQueueTest, CloseWakesBlockedPush) {
    // The block timeout is far beyond the test's deadline: only close() can end the push.
    ChannelQueue queue(options(1, Overflow::block, 1h));
    ASSERT_TRUE(queue.push(numbered(0)));
    std::atomic<bool> started{false};
    std::atomic<bool> returned{false};
    bool accepted = true;
    std::thread producer([&] {
        started = true;
        accepted = queue.push(numbered(1));
        returned = true;
    });
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    EXPECT_FALSE(returned.load());
    queue.close();
    EXPECT_TRUE(eventually([&] { return returned.load(); }));
    producer.join();
    EXPECT_FALSE(accepted);
    // What was queued before close() is still there for the consumer.
    EXPECT_EQ(drain(queue), payloads(0, 1));
}

TEST(ChannelQueueTest, PopAfterCloseDrainsThenReturnsNullopt) {
    ChannelQueue queue(options(4, Overflow::drop_newest));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.push(numbered(i)));
    queue.close();
    EXPECT_TRUE(queue.closed());
    EXPECT_FALSE(queue.push(numbered(3)));  // refused once closed
    for (int i = 0; i < 3; ++i) {
        auto message = queue.pop(std::nullopt);
        ASSERT_TRUE(message.has_value());
        EXPECT_EQ(message->payload(), "payload-" + std::to_string(i));
    }
    EXPECT_FALSE(queue.pop(std::nullopt).has_value());
    EXPECT_FALSE(queue.pop(10ms).has_value());
    EXPECT_FALSE(queue.try_pop().has_value());
    queue.close();  // idempotent
    EXPECT_TRUE(queue.closed());
}

TEST(ChannelQueueTest, PopForTimesOutWithNullopt) {
    ChannelQueue queue(options(4, Overflow::drop_newest));
    const auto start = Clock::now();
    EXPECT_FALSE(queue.pop(30ms).has_value());
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 30ms);
    EXPECT_LT(elapsed, kDeadline);
    EXPECT_FALSE(queue.closed());
}

TEST(ChannelQueueTest, PopForReturnsMessagePushedWhileWaiting) {
    ChannelQueue queue(options(4, Overflow::drop_newest));
    std::optional<Message> got;
    std::thread consumer([&] { got = queue.pop(kDeadline); });
    ASSERT_TRUE(queue.push(numbered(7)));
    consumer.join();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->payload(), "payload-7");
}

TEST(ChannelQueueTest, TryPopOnEmpty) {
    ChannelQueue queue(options(4, Overflow::drop_newest));
    EXPECT_FALSE(queue.try_pop().has_value());
    ASSERT_TRUE(queue.push(numbered(1)));
    auto message = queue.try_pop();
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->payload(), "payload-1");
    EXPECT_FALSE(queue.try_pop().has_value());
}

// ---------------------------------------------------------------------------------------------
// MessageChannel

TEST(MessageChannelTest, ForwardsToItsQueue) {
    auto queue = std::make_shared<ChannelQueue>(options(2, Overflow::drop_newest));
    MessageChannel channel(queue);
    EXPECT_TRUE(static_cast<bool>(channel));
    EXPECT_EQ(channel.capacity(), 2u);
    EXPECT_EQ(channel.size(), 0u);
    EXPECT_FALSE(channel.try_pop().has_value());
    EXPECT_FALSE(channel.pop_for(1ms).has_value());
    ASSERT_TRUE(queue->push(numbered(0)));
    ASSERT_TRUE(queue->push(numbered(1)));
    EXPECT_FALSE(queue->push(numbered(2)));
    EXPECT_EQ(channel.size(), 2u);
    EXPECT_EQ(channel.dropped(), 1u);
    auto first = channel.pop();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->payload(), "payload-0");
    auto second = channel.pop_for(kDeadline);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->payload(), "payload-1");
    EXPECT_FALSE(channel.closed());
    channel.close();
    EXPECT_TRUE(channel.closed());
    EXPECT_TRUE(queue->closed());
    EXPECT_FALSE(channel.pop().has_value());
}

TEST(MessageChannelTest, RangeForEndsWhenClosedAndDrained) {
    constexpr int kCount = 200;
    auto queue = std::make_shared<ChannelQueue>(
        options(8, Overflow::block, std::chrono::milliseconds(kDeadline)));
    MessageChannel channel(queue);
    std::thread producer([queue] {
        for (int i = 0; i < kCount; ++i) queue->push(numbered(i));
        queue->close();
    });
    std::vector<std::string> got;
    for (const Message& message : channel) got.push_back(message.payload_string());
    producer.join();
    EXPECT_EQ(got, payloads(0, kCount));
    EXPECT_EQ(channel.dropped(), 0u);
}

TEST(MessageChannelTest, RangeForOverClosedEmptyChannelDoesNothing) {
    auto queue = std::make_shared<ChannelQueue>(options(4, Overflow::drop_oldest));
    queue->close();
    MessageChannel channel(queue);
    int iterations = 0;
    for (const Message& message : channel) {
        (void)message;
        ++iterations;
    }
    EXPECT_EQ(iterations, 0);
}

TEST(MessageChannelTest, RangeForDrainsWhatWasQueuedBeforeClose) {
    auto queue = std::make_shared<ChannelQueue>(options(4, Overflow::drop_oldest));
    for (int i = 0; i < 3; ++i) queue->push(numbered(i));
    queue->close();
    MessageChannel channel(queue);
    std::vector<std::string> got;
    for (auto it = channel.begin(); it != channel.end(); ++it) got.push_back(it->payload_string());
    EXPECT_EQ(got, payloads(0, 3));
}

TEST(MessageChannelTest, EmptyChannelThrowsOnUse) {
    MessageChannel channel;
    EXPECT_FALSE(static_cast<bool>(channel));
    auto expect_configuration_error = [](const std::function<void()>& use) {
        try {
            use();
            ADD_FAILURE() << "no exception";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::configuration);
        } catch (...) {
            ADD_FAILURE() << "not an mqttx::Error";
        }
    };
    expect_configuration_error([&] { channel.pop(); });
    expect_configuration_error([&] { channel.try_pop(); });
    expect_configuration_error([&] { channel.pop_for(1ms); });
    expect_configuration_error([&] { (void)channel.size(); });
    expect_configuration_error([&] { (void)channel.capacity(); });
    expect_configuration_error([&] { (void)channel.closed(); });
    expect_configuration_error([&] { (void)channel.dropped(); });
    expect_configuration_error([&] { channel.close(); });
    expect_configuration_error([&] {
        for (const Message& message : channel) (void)message;
    });
}

}  // namespace
}  // namespace mqttx::detail
