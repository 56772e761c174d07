#include "mqttx/message.hpp"

#include <mqtt/message.h>

#include "paho_properties.hpp"

namespace mqttx {

struct Message::Decoded {
    PublishProperties properties;
    std::vector<std::uint32_t> subscription_ids;
};

Message::Message(std::shared_ptr<const mqtt::message> message,
                 std::shared_ptr<const std::string> session, Clock::time_point received_at)
    : message_(std::move(message)), session_(std::move(session)), received_at_(received_at) {
    // Decoded once, on the receiving thread, and only when there are any: readers on other
    // threads then never touch Paho's property list, whose last owner may be Paho's own
    // thread. Messages without properties (all of MQTT 3.1.1) allocate nothing here.
    if (message_ && !message_->get_properties().empty()) {
        const auto& properties = message_->get_properties();
        decoded_ = std::make_shared<const Decoded>(
            Decoded{detail::from_paho(properties), detail::subscription_ids(properties)});
    }
}

Message Message::make(std::string_view topic, std::string_view payload, int qos, bool retained,
                      const PublishProperties& properties) {
    auto message =
        mqtt::message::create(std::string(topic), payload.data(), payload.size(), qos, retained);
    if (!properties.empty()) message->set_properties(detail::to_paho(properties));
    return Message(std::move(message), nullptr);
}

std::string_view Message::topic() const noexcept {
    if (!message_) return {};
    const auto& topic = message_->get_topic_ref();
    return topic ? std::string_view(topic.data(), topic.size()) : std::string_view();
}

std::string_view Message::payload() const noexcept {
    if (!message_) return {};
    const auto& payload = message_->get_payload_ref();
    return payload ? std::string_view(payload.data(), payload.size()) : std::string_view();
}

int Message::qos() const noexcept {
    return message_ ? message_->get_qos() : 0;
}
bool Message::retained() const noexcept {
    return message_ && message_->is_retained();
}
bool Message::duplicate() const noexcept {
    return message_ && message_->is_duplicate();
}

std::string_view Message::session() const noexcept {
    return session_ ? std::string_view(*session_) : std::string_view();
}

const PublishProperties& Message::properties() const noexcept {
    static const PublishProperties none;
    return decoded_ ? decoded_->properties : none;
}

const std::vector<std::uint32_t>& Message::subscription_ids() const noexcept {
    static const std::vector<std::uint32_t> none;
    return decoded_ ? decoded_->subscription_ids : none;
}

}  // namespace mqttx
