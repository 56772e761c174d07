// MessageChannel: a bounded queue of messages filled by a route (manager.listen...)
// and drained by the application, with a range-for, pop, try_pop and pop_for. It is
// closed when its route stops; iteration then ends once it is empty.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "mqttx/message.hpp"
#include "mqttx/options.hpp"

namespace mqttx {

namespace detail {
class ChannelQueue;
}

struct ChannelOptions {
    std::size_t capacity = 1000;
    Overflow overflow = Overflow::drop_oldest;
    // With Overflow::block: how long a full channel may hold up the dispatcher thread
    // (and the session's later messages) before the message is dropped and counted.
    // Refused for a channel filled on Paho's receive thread (HandlerThread).
    std::chrono::milliseconds block_timeout{1000};
};

class MessageChannel {
  public:
    MessageChannel() = default;
    explicit MessageChannel(std::shared_ptr<detail::ChannelQueue> queue) noexcept
        : queue_(std::move(queue)) {}

    // Waits for a message; nullopt once the channel is closed and empty.
    std::optional<Message> pop();
    // A message if one is waiting.
    std::optional<Message> try_pop();
    // Waits at most `timeout`; nullopt on timeout or when closed and empty.
    std::optional<Message> pop_for(std::chrono::milliseconds timeout);

    std::size_t size() const;
    std::size_t capacity() const;
    bool closed() const;
    std::uint64_t dropped() const;  // messages the overflow policy discarded
    void close();

    class Iterator {
      public:
        using value_type = Message;
        using difference_type = std::ptrdiff_t;
        Iterator() = default;
        explicit Iterator(MessageChannel* channel) : channel_(channel) { ++*this; }
        const Message& operator*() const { return *current_; }
        const Message* operator->() const { return &*current_; }
        Iterator& operator++() {
            current_ = channel_->pop();
            if (!current_) channel_ = nullptr;
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(const Iterator& other) const { return channel_ == other.channel_; }

      private:
        MessageChannel* channel_ = nullptr;
        std::optional<Message> current_;
    };
    // Blocks for each message; ends when the channel is closed and drained.
    Iterator begin() { return Iterator(this); }
    Iterator end() { return Iterator(); }

    explicit operator bool() const noexcept { return queue_ != nullptr; }

  private:
    std::shared_ptr<detail::ChannelQueue> queue_;
};

}  // namespace mqttx
