// ChannelQueue: the bounded ring behind a MessageChannel, filled on a dispatcher
// thread and drained by the application.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "mqttx/message_channel.hpp"

namespace mqttx::detail {

class ChannelQueue {
  public:
    explicit ChannelQueue(const ChannelOptions& options);

    // Applies the overflow policy when full; false when the message was dropped.
    bool push(const Message& message);
    std::optional<Message> pop(std::optional<std::chrono::milliseconds> timeout);
    std::optional<Message> try_pop();
    void close();

    std::size_t size() const;
    std::size_t capacity() const noexcept { return ring_.size(); }
    bool closed() const;
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

  private:
    Message take();  // with mutex_ held and size_ > 0

    const Overflow overflow_;
    const std::chrono::milliseconds block_timeout_;
    mutable std::mutex mutex_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::vector<Message> ring_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    bool closed_ = false;
    std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace mqttx::detail
