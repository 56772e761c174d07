#include "mqttx/delivery_token.hpp"

#include "deadline.hpp"
#include "delivery.hpp"
#include "session/session_core.hpp"

namespace mqttx {

namespace detail {

void Delivery::complete() noexcept {
    {
        std::lock_guard lock(mutex_);
        if (finished_) return;
        finished_ = true;
    }
    done_.notify_all();
    if (auto observer = observer_.lock()) observer->settled(nullptr, tag_);
}

void Delivery::fail(Error error) noexcept {
    {
        std::lock_guard lock(mutex_);
        if (finished_) return;
        finished_ = true;
        error_ = std::make_unique<const Error>(std::move(error));
    }
    done_.notify_all();
    if (auto observer = observer_.lock()) observer->settled(error_.get(), tag_);
}

bool Delivery::wait_for(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    if (timeout.count() < 0) {
        done_.wait(lock, [this] { return finished_; });
    } else if (!detail::wait_for(done_, lock, timeout, [this] { return finished_; })) {
        return false;
    }
    if (error_) throw *error_;
    return true;
}

bool Delivery::is_complete() const noexcept {
    std::lock_guard lock(mutex_);
    return finished_;
}

}  // namespace detail

DeliveryToken::DeliveryToken(std::shared_ptr<detail::Delivery> delivery) noexcept
    : delivery_(std::move(delivery)) {}

namespace {

// The acknowledgement arrives on Paho's receive thread: a handler running there that
// waited for one would wait forever, and hold up publish() on every other thread.
void refuse_on_inline_handler_thread(const char* call) {
    if (detail::on_inline_handler_thread()) {
        throw Error(ErrorKind::configuration,
                    std::string(call) +
                        " on a DeliveryToken from an inline handler would deadlock: the "
                        "acknowledgement arrives on this very thread (poll with wait_for(0ms), "
                        "or use HandlerThread::dispatcher)");
    }
}

}  // namespace

void DeliveryToken::wait() const {
    if (!delivery_) throw Error(ErrorKind::internal, "wait() on an empty DeliveryToken");
    if (!delivery_->is_complete()) refuse_on_inline_handler_thread("wait()");
    delivery_->wait_for(std::chrono::milliseconds(-1));
}

bool DeliveryToken::wait_for(std::chrono::milliseconds timeout) const {
    if (!delivery_) throw Error(ErrorKind::internal, "wait_for() on an empty DeliveryToken");
    if (timeout > timeout.zero() && !delivery_->is_complete()) {
        refuse_on_inline_handler_thread("wait_for()");
    }
    return delivery_->wait_for(std::max(timeout, std::chrono::milliseconds(0)));
}

bool DeliveryToken::is_complete() const noexcept {
    return delivery_ && delivery_->is_complete();
}

int DeliveryToken::message_id() const noexcept {
    return delivery_ ? delivery_->message_id.load(std::memory_order_relaxed) : 0;
}

}  // namespace mqttx
