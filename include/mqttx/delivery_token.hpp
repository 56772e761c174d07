// DeliveryToken: the completion of one publish. QoS 0 completes when the message is
// written, QoS 1 on PUBACK, QoS 2 on PUBCOMP. A message buffered while offline
// completes once it is sent after the reconnect.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace mqtt {
class delivery_token;
}

namespace mqttx {

class DeliveryToken {
  public:
    DeliveryToken() = default;
    DeliveryToken(std::shared_ptr<mqtt::delivery_token> token, std::string session,
                  std::string topic);

    // Blocks until complete. Throws Error (kind publish, connection or session_closed)
    // carrying Paho's return and reason codes when the delivery failed.
    void wait() const;
    // Waits at most `timeout`: true when delivered, false when still pending; throws as wait().
    bool wait_for(std::chrono::milliseconds timeout) const;
    bool is_complete() const noexcept;
    // Packet identifier (0 for QoS 0 or before Paho assigned one).
    int message_id() const noexcept;

    explicit operator bool() const noexcept { return token_ != nullptr; }

  private:
    void throw_if_failed() const;

    std::shared_ptr<mqtt::delivery_token> token_;
    std::string session_;
    std::string topic_;
};

}  // namespace mqttx
