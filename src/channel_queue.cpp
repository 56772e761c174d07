#include "channel_queue.hpp"

#include "deadline.hpp"
#include "mqttx/error.hpp"

namespace mqttx::detail {

ChannelQueue::ChannelQueue(const ChannelOptions& options)
    : overflow_(options.overflow), block_timeout_(options.block_timeout) {
    ring_.resize(options.capacity == 0 ? 1 : options.capacity);
}

bool ChannelQueue::push(const Message& message) {
    std::unique_lock lock(mutex_);
    if (closed_) return false;
    if (size_ == ring_.size()) {
        switch (overflow_) {
            case Overflow::drop_newest:
                dropped_.fetch_add(1, std::memory_order_relaxed);
                return false;
            case Overflow::drop_oldest:
                take();  // discarded
                dropped_.fetch_add(1, std::memory_order_relaxed);
                break;
            case Overflow::block:
                if (!detail::wait_for(not_full_, lock, block_timeout_,
                                      [&] { return size_ < ring_.size() || closed_; }) ||
                    closed_) {
                    dropped_.fetch_add(1, std::memory_order_relaxed);
                    return false;
                }
                break;
        }
    }
    ring_[(head_ + size_) % ring_.size()] = message;
    ++size_;
    lock.unlock();
    not_empty_.notify_one();
    return true;
}

Message ChannelQueue::take() {
    Message message = std::move(ring_[head_]);
    ring_[head_] = Message{};
    head_ = (head_ + 1) % ring_.size();
    --size_;
    return message;
}

std::optional<Message> ChannelQueue::pop(std::optional<std::chrono::milliseconds> timeout) {
    std::unique_lock lock(mutex_);
    auto ready = [&] { return size_ > 0 || closed_; };
    if (timeout) {
        if (!detail::wait_for(not_empty_, lock, *timeout, ready)) return std::nullopt;
    } else {
        not_empty_.wait(lock, ready);
    }
    if (size_ == 0) return std::nullopt;  // closed and drained
    auto message = take();
    lock.unlock();
    not_full_.notify_one();
    return message;
}

std::optional<Message> ChannelQueue::try_pop() {
    std::unique_lock lock(mutex_);
    if (size_ == 0) return std::nullopt;
    auto message = take();
    lock.unlock();
    not_full_.notify_one();
    return message;
}

void ChannelQueue::close() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
}

std::size_t ChannelQueue::size() const {
    std::lock_guard lock(mutex_);
    return size_;
}

bool ChannelQueue::closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
}

}  // namespace mqttx::detail

namespace mqttx {

namespace {
detail::ChannelQueue& checked(const std::shared_ptr<detail::ChannelQueue>& queue) {
    if (!queue) throw Error(ErrorKind::configuration, "empty MessageChannel");
    return *queue;
}
}  // namespace

std::optional<Message> MessageChannel::pop() {
    return checked(queue_).pop(std::nullopt);
}
std::optional<Message> MessageChannel::try_pop() {
    return checked(queue_).try_pop();
}
std::optional<Message> MessageChannel::pop_for(std::chrono::milliseconds timeout) {
    return checked(queue_).pop(timeout);
}
std::size_t MessageChannel::size() const {
    return checked(queue_).size();
}
std::size_t MessageChannel::capacity() const {
    return checked(queue_).capacity();
}
bool MessageChannel::closed() const {
    return checked(queue_).closed();
}
std::uint64_t MessageChannel::dropped() const {
    return checked(queue_).dropped();
}
void MessageChannel::close() {
    checked(queue_).close();
}

}  // namespace mqttx
