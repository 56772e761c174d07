#include "mqttx/delivery_token.hpp"

#include <mqtt/delivery_token.h>

#include "paho_error.hpp"

namespace mqttx {

DeliveryToken::DeliveryToken(std::shared_ptr<mqtt::delivery_token> token, std::string session,
                             std::string topic)
    : token_(std::move(token)), session_(std::move(session)), topic_(std::move(topic)) {}

void DeliveryToken::wait() const {
    if (!token_) throw Error(ErrorKind::internal, "wait() on an empty DeliveryToken");
    try {
        token_->wait();
    } catch (const mqtt::exception& e) {
        throw detail::from_paho(e, ErrorKind::publish, "delivery failed")
            .with_session(session_)
            .with_topic(topic_);
    }
}

bool DeliveryToken::wait_for(std::chrono::milliseconds timeout) const {
    if (!token_) throw Error(ErrorKind::internal, "wait_for() on an empty DeliveryToken");
    try {
        return token_->wait_for(timeout);
    } catch (const mqtt::exception& e) {
        throw detail::from_paho(e, ErrorKind::publish, "delivery failed")
            .with_session(session_)
            .with_topic(topic_);
    }
}

bool DeliveryToken::is_complete() const noexcept {
    return token_ && token_->is_complete();
}

int DeliveryToken::message_id() const noexcept {
    return token_ ? token_->get_message_id() : 0;
}

}  // namespace mqttx
