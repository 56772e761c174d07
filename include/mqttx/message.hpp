// An incoming message. Shares Paho's immutable message: copying a Message never
// copies the topic or payload, so handlers and channels can keep it cheaply.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mqttx/properties.hpp"

namespace mqtt {
class message;
}

namespace mqttx {

class Message {
  public:
    using Clock = std::chrono::system_clock;

    Message() = default;
    // Wraps a message received from Paho; `session` names the receiving session.
    Message(std::shared_ptr<const mqtt::message> message,
            std::shared_ptr<const std::string> session,
            Clock::time_point received_at = Clock::now());
    // Builds a standalone message (tests, forwarder transforms).
    static Message make(std::string_view topic, std::string_view payload, int qos = 0,
                        bool retained = false, const PublishProperties& properties = {});

    std::string_view topic() const noexcept;
    std::string_view payload() const noexcept;  // bytes, not necessarily text
    std::string payload_string() const { return std::string(payload()); }
    int qos() const noexcept;
    bool retained() const noexcept;
    bool duplicate() const noexcept;
    // Name of the session that received it ("" for a standalone message).
    std::string_view session() const noexcept;
    Clock::time_point received_at() const noexcept { return received_at_; }
    // MQTT 5 properties (empty for MQTT 3.1.1).
    const PublishProperties& properties() const noexcept;
    const UserProperties& user_properties() const noexcept { return properties().user_properties; }
    // MQTT 5: the Subscription Identifiers of the subscriptions that delivered it
    // (SubscribeOptions::subscription_id); empty when none had one.
    const std::vector<std::uint32_t>& subscription_ids() const noexcept;

    explicit operator bool() const noexcept { return message_ != nullptr; }
    const std::shared_ptr<const mqtt::message>& paho_message() const noexcept { return message_; }

  private:
    std::shared_ptr<const mqtt::message> message_;
    std::shared_ptr<const std::string> session_;
    struct Decoded;                           // the MQTT 5 properties, decoded once
    std::shared_ptr<const Decoded> decoded_;  // null when there are none
    Clock::time_point received_at_{};
};

// Runs on a dispatcher thread (or Paho's thread in inline mode). Exceptions are
// caught, counted and logged; delivery goes on.
using MessageHandler = std::function<void(const Message&)>;

}  // namespace mqttx
