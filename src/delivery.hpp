// Delivery: the outcome of one publish, owned by the library rather than by a Paho
// token, so that a QoS 1/2 message Paho discards at a clean-session reconnect can be
// published again without its DeliveryToken failing. It holds the Paho message itself,
// and Paho gets an aliasing pointer to it (paho_message()): one allocation for both,
// as many as a raw Paho publish makes for its message.
#pragma once

#include <mqtt/message.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "mqttx/error.hpp"

namespace mqttx::detail {

// Hears the outcome of deliveries it asked for (the forwarder: acknowledgements and
// latency). An interface and a tag rather than a std::function, whose capture would be
// one more allocation per publish.
class DeliveryObserver {
  public:
    virtual ~DeliveryObserver() = default;
    // Called once per delivery (error null: delivered), on the thread that settles it;
    // `tag` is what the publisher gave. It must not block.
    virtual void settled(const Error* error, std::int64_t tag) noexcept = 0;
};

class Delivery {
  public:
    // The Paho message is built in place: every mqtt::message that is moved from and
    // destroyed still calls into Paho C (MQTTProperties_free), and each such call takes
    // Paho's process-wide trace mutex, contended by its send and receive threads.
    Delivery(mqtt::string_ref topic, mqtt::binary_ref payload, int qos, bool retained,
             const mqtt::properties& properties, std::uint64_t sequence,
             std::weak_ptr<DeliveryObserver> observer = {}, std::int64_t tag = 0)
        : message_(std::move(topic), std::move(payload), qos, retained, properties),
          sequence_(sequence),
          observer_(std::move(observer)),
          tag_(tag) {}

    // The first outcome wins; later ones are ignored.
    void complete() noexcept;
    void fail(Error error) noexcept;

    // True when delivered within `timeout`, false when still pending; throws the
    // failure's Error. A negative timeout waits without limit.
    bool wait_for(std::chrono::milliseconds timeout) const;
    bool is_complete() const noexcept;

    const mqtt::message& message() const noexcept { return message_; }
    // The message for Paho's publish(): shares the ownership of `self` (this Delivery).
    static mqtt::const_message_ptr paho_message(const std::shared_ptr<Delivery>& self) noexcept {
        return {self, &self->message_};
    }
    std::uint64_t sequence() const noexcept { return sequence_; }  // publish order
    // Its topic and payload in bytes, what the offline buffer's byte bound counts.
    std::size_t size() const noexcept {
        return message_.get_topic_ref().length() + message_.get_payload_ref().length();
    }
    // An observer still waits for its outcome.
    bool observed() const noexcept { return !observer_.expired(); }
    // When publish() accepted it (or the outbox was read back), for the latency metric.
    std::chrono::steady_clock::time_point accepted_at() const noexcept { return accepted_at_; }
    std::atomic<int> message_id{0};
    // The session's storage holds a copy (its outbox record) until Paho has stored the
    // message itself or the broker has confirmed it.
    std::atomic<bool> stored{false};
    // The storage's ticket for that record (Storage::when_durable); 0 when none.
    std::uint64_t storage_ticket = 0;
    // The connection (the session's generation, low bits) it was last handed to Paho
    // on; guarded by the session's outbox mutex. For the poison guard.
    std::uint32_t sent_in = 0;
    // When it was last handed to Paho; guarded by the outbox mutex. For the stall report.
    std::chrono::steady_clock::time_point handed_at{};

  private:
    const mqtt::message message_;
    const std::uint64_t sequence_;
    const std::weak_ptr<DeliveryObserver> observer_;
    const std::int64_t tag_;
    const std::chrono::steady_clock::time_point accepted_at_ = std::chrono::steady_clock::now();
    mutable std::mutex mutex_;
    mutable std::condition_variable done_;
    bool finished_ = false;
    // On the heap: an Error is 208 bytes, and almost every delivery succeeds (a Delivery
    // is allocated per publish and lives until the broker confirms it).
    std::unique_ptr<const Error> error_;
};

}  // namespace mqttx::detail
