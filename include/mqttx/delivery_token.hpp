// DeliveryToken: the completion of one publish. QoS 0 completes when the message is
// written, QoS 1 on PUBACK, QoS 2 on PUBCOMP. A message buffered while offline
// completes once it is sent after the reconnect; a QoS 1/2 message in flight when the
// connection drops is sent again after the reconnect and completes then.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace mqttx {

namespace detail {
class Delivery;
}

class DeliveryToken {
  public:
    DeliveryToken() = default;
    explicit DeliveryToken(std::shared_ptr<detail::Delivery> delivery) noexcept;

    // Blocks until complete. Throws Error (kind publish or session_closed, naming the
    // session and topic, with Paho's return and reason codes) when the delivery failed,
    // among them a message given up as poison (PerformanceOptions::max_publish_attempts).
    // From a handler on Paho's receive thread it throws Error (configuration) at once
    // unless already complete: the acknowledgement would arrive on that very thread.
    void wait() const;
    // Waits at most `timeout` (any length: one the clock cannot add waits without
    // limit): true when delivered, false when still pending; throws as wait(). On
    // Paho's receive thread only a zero timeout is allowed.
    bool wait_for(std::chrono::milliseconds timeout) const;
    bool is_complete() const noexcept;
    // Packet identifier (0 for QoS 0 or before Paho assigned one).
    int message_id() const noexcept;

    explicit operator bool() const noexcept { return delivery_ != nullptr; }

  private:
    std::shared_ptr<detail::Delivery> delivery_;
};

}  // namespace mqttx
