// Publish: checks at the call, the outbox and its hand-off to Paho in order within the
// in-flight window, Paho's reports on each message, and the poison guard.
//
// Accepted messages wait in the session's Outbox (bounded by max_pending: the offline
// buffer) and go to Paho while the session is ready, at most max_inflight at a time.
// Two facts about Paho make the session do this itself: past a full in-flight window
// Paho's send thread sleeps up to a second before it looks again (2,000 QoS 2 messages
// with a window of 20 took 75 s), and over MQTT 3.1.1 a broker acknowledges but drops
// what comes past its own in-flight limit (mosquitto: 20), so a large window silently
// loses QoS 2 bursts.
#include <spdlog/spdlog.h>

#include "mqttx/topic.hpp"
#include "paho_error.hpp"
#include "paho_properties.hpp"
#include "problems.hpp"
#include "runtime.hpp"
#include "session/session_core.hpp"
#include "wire_checks.hpp"

namespace mqttx::detail {

DeliveryToken SessionCore::publish(std::string_view topic, std::string_view payload, int qos,
                                   bool retained, const PublishProperties* properties) {
    return publish_shared(mqtt::string_ref(std::string(topic)),
                          mqtt::binary_ref(payload.data(), payload.size()), qos, retained,
                          properties);
}

DeliveryToken SessionCore::publish_shared(mqtt::string_ref topic_ref, mqtt::binary_ref payload_ref,
                                          int qos, bool retained,
                                          const PublishProperties* properties,
                                          std::weak_ptr<DeliveryObserver> observer,
                                          std::int64_t tag) {
    const std::string_view topic = topic_ref ? std::string_view(topic_ref.str()) : "";
    const std::string_view payload = payload_ref ? std::string_view(payload_ref.str()) : "";
    check_open();
    if (auto problem = topic::check_topic_name(topic); !problem.empty()) {
        throw Error::invalid_topic("invalid topic name: " + std::string(problem),
                                   std::string(topic))
            .with_session(options_.name);
    }
    if (qos < 0 || qos > 2) {
        throw Error::invalid_qos(qos).with_session(options_.name).with_topic(std::string(topic));
    }
    if (payload.size() > options_.performance.buffer_kb * 1024) {
        throw Error(ErrorKind::payload_too_large, "payload larger than performance.buffer_kb")
            .with_session(options_.name)
            .with_topic(std::string(topic))
            .with_context("bytes", payload.size())
            .with_context("limit", options_.performance.buffer_kb * 1024);
    }
    const bool has_properties = properties != nullptr && !properties->empty();
    if (has_properties && options_.protocol != Protocol::v5) {
        throw Error(ErrorKind::configuration, "publish properties need an MQTT 5 session")
            .with_session(options_.name)
            .with_topic(std::string(topic));
    }
    if (has_properties) {
        Problems problems;
        check_publish_properties(*properties, problems, "properties");
        if (!problems.empty()) {
            problems.raise("invalid publish properties on '" + std::string(topic) + "'",
                           options_.name);
        }
    }
    auto delivery = std::make_shared<Delivery>(
        std::move(topic_ref), std::move(payload_ref), qos, retained,
        has_properties ? to_paho(*properties) : mqtt::properties(),
        next_sequence_.fetch_add(1, std::memory_order_relaxed), std::move(observer), tag);
    if (auto problem = packet_size_problem(*delivery); !problem.empty()) {
        throw Error(ErrorKind::payload_too_large, std::move(problem))
            .with_session(options_.name)
            .with_topic(std::string(topic))
            .with_context("bytes", payload.size());
    }
    DeliveryToken result(delivery);

    // A persistent session keeps the message in its storage until the broker confirms
    // it (QoS 1) or Paho has stored it itself (QoS 2): accepted means stored.
    if (storage_ && qos > 0) store(*delivery);

    // On Paho's own thread (an inline handler, a forwarder) never wait for the hand-off
    // lock: its holder may be inside Paho waiting for this very thread.
    std::unique_lock handoff(handoff_mutex_, std::defer_lock);
    if (inline_delivery_thread) {
        (void)handoff.try_lock();
    } else {
        handoff.lock();
    }
    auto admission = outbox_.admit(delivery, handoff.owns_lock(), ready_,
                                   link_generation_.load(std::memory_order_relaxed));
    if (admission.rejected) {
        stats_->count_error();
        unstore(*delivery);
        auto error = Error(ErrorKind::buffer_full, "publish buffer full")
                         .with_session(options_.name)
                         .with_topic(std::string(topic))
                         .with_context("max_pending", options_.performance.max_pending);
        if (options_.performance.max_pending_bytes != 0) {
            error.with_context("max_pending_bytes", options_.performance.max_pending_bytes);
        }
        throw error;
    }
    for (const auto& dropped : admission.dropped) {
        unstore(*dropped);
        stats_->offline_dropped.fetch_add(1, std::memory_order_relaxed);
        dropped->fail(Error(ErrorKind::buffer_full,
                            "dropped from the publish buffer to make room (overflow drop_oldest)")
                          .with_session(options_.name)
                          .with_topic(dropped->message().get_topic())
                          .with_context("max_pending", options_.performance.max_pending));
    }
    for (const auto sequence : admission.dropped_spilled) {
        storage_->remove(sequence);  // nobody holds its token: nobody to tell
        stats_->offline_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    stats_->messages_sent.fetch_add(1, std::memory_order_relaxed);
    stats_->bytes_sent.fetch_add(payload.size(), std::memory_order_relaxed);
    stats_->last_sent_ns.store(now_ns(), std::memory_order_relaxed);
    if (!admission.in_flight) {
        if (!handoff.owns_lock()) post_pump();
        return result;
    }
    if (!hand_to_paho(delivery)) {
        handoff.unlock();
        post_pump();
    }
    return result;
}

bool SessionCore::hand_to_paho(const std::shared_ptr<Delivery>& delivery) noexcept {
    // Accepted while offline, it may be larger or of a higher QoS than the broker
    // connected to since allows.
    auto refuse = [&](ErrorKind kind, std::string problem) {
        outbox_.take(delivery.get());
        stats_->count_error();
        unstore(*delivery);
        delivery->fail(Error(kind, std::move(problem))
                           .with_session(options_.name)
                           .with_topic(delivery->message().get_topic()));
        return true;
    };
    if (broker_max_packet_.load(std::memory_order_relaxed) != 0) {
        if (auto problem = packet_size_problem(*delivery); !problem.empty()) {
            return refuse(ErrorKind::payload_too_large, std::move(problem));
        }
    }
    if (const int max_qos = broker_max_qos_.load(std::memory_order_relaxed);
        delivery->message().get_qos() > max_qos) {
        return refuse(ErrorKind::invalid_qos, "QoS " +
                                                  std::to_string(delivery->message().get_qos()) +
                                                  " is above the broker's Maximum QoS of " +
                                                  std::to_string(max_qos) + " (MQTT 5 CONNACK)");
    }
    if (delivery->message().is_retained() &&
        !broker_retain_available_.load(std::memory_order_relaxed)) {
        return refuse(ErrorKind::publish,
                      "a retained message, but the broker does not support retained messages "
                      "(MQTT 5 CONNACK: Retain Available 0)");
    }
    try {
        auto token =
            client_->publish(message_for_paho(delivery), delivery.get(), publish_listener_);
        const int id = token->get_message_id();
        // Only a stored QoS 2 publish is reported written by Paho, maybe before this.
        if (persistence_ && delivery->message().get_qos() == 2) {
            if (outbox_.claim(*delivery, id)) unstore(*delivery);
        } else {
            delivery->message_id.store(id, std::memory_order_relaxed);
        }
        return true;
    } catch (const mqtt::exception& e) {
        alias_link_.store(0, std::memory_order_release);  // an alias it set may not exist
        // Disconnected between the check and the call: it waits for the next connect.
        const int rc = e.get_return_code();
        const bool retry = rc == MQTTASYNC_DISCONNECTED || rc == MQTTASYNC_MAX_BUFFERED_MESSAGES;
        if (outbox_
                .give_back(
                    delivery.get(),
                    [&](const Delivery&) { return retry && state() != SessionState::closed; })
                .requeued) {
            return false;
        }
        stats_->count_error();
        delivery->fail(from_paho(e, ErrorKind::publish, "publish failed")
                           .with_session(options_.name)
                           .with_topic(delivery->message().get_topic()));
        return true;
    } catch (...) {
        alias_link_.store(0, std::memory_order_release);
        outbox_.take(delivery.get());
        stats_->count_error();
        delivery->fail(Error(ErrorKind::publish, "publish failed").with_session(options_.name));
        return true;
    }
}

mqtt::const_message_ptr SessionCore::message_for_paho(const std::shared_ptr<Delivery>& delivery) {
    const auto& message = delivery->message();
    if (message.get_qos() != 0) return Delivery::paho_message(delivery);
    const auto link = alias_link_.load(std::memory_order_acquire);
    if (link == 0) return Delivery::paho_message(delivery);
    if (aliases_.link() != link) aliases_.reset(alias_limit_.load(std::memory_order_relaxed), link);
    if (!aliases_.enabled()) return Delivery::paho_message(delivery);
    const auto use = aliases_.use(message.get_topic_ref().to_string());
    if (use.alias == 0) return Delivery::paho_message(delivery);
    auto properties = message.get_properties();
    properties.add({mqtt::property::TOPIC_ALIAS, use.alias});
    // An empty topic with a known alias: the broker takes the topic it has for it.
    return mqtt::message::create(
        use.known ? mqtt::string_ref(std::string()) : message.get_topic_ref(),
        message.get_payload_ref(), 0, message.is_retained(), properties);
}

void SessionCore::post_pump() {
    if (pump_posted_.exchange(true, std::memory_order_acq_rel)) return;
    runtime_->scheduler.post([weak = weak_from_this()] {
        auto self = weak.lock();
        if (!self) return;
        self->pump_posted_.store(false, std::memory_order_release);
        self->pump();
    });
}

// Scheduler thread (or a publisher): hands waiting messages to Paho, in order, while the
// session is ready and the window has room.
void SessionCore::pump() noexcept {
    std::lock_guard handoff(handoff_mutex_);
    while (ready()) {
        auto next = outbox_.next(link_generation_.load(std::memory_order_relaxed));
        if (next.spilled) {
            unspill(*next.spilled);
            continue;
        }
        if (!next.delivery || !hand_to_paho(next.delivery)) return;
    }
}

// The spilled message at the outbox's front, back from storage. One that cannot be read
// is lost (the storage logged and counted why): said here, and the outbox moves on.
void SessionCore::unspill(std::uint64_t sequence) noexcept {
    std::shared_ptr<Delivery> delivery;
    try {
        delivery = storage_->load(sequence, options_.protocol);
    } catch (const std::exception& e) {
        log_->error("session '{}': {}", options_.name, e.what());
    }
    if (!delivery) stats_->count_error();
    outbox_.unspill(sequence, std::move(delivery));
}

std::string SessionCore::packet_size_problem(const Delivery& delivery) const {
    const auto& message = delivery.message();
    // Paho keeps the encoded length of the properties as it adds them. A QoS 0 message
    // may go out with a Topic Alias (3 bytes more) when aliases are on.
    const std::size_t alias_bytes =
        message.get_qos() == 0 && options_.performance.topic_aliases != 0 ? 3 : 0;
    const auto property_length =
        static_cast<std::size_t>(message.get_properties().c_struct().length) + alias_bytes;
    const std::size_t property_bytes =
        options_.protocol == Protocol::v5
            ? variable_byte_integer_size(property_length) + property_length
            : 0;
    const auto remaining = publish_remaining_length(message.get_topic_ref().length(),
                                                    message.get_payload_ref().length(),
                                                    message.get_qos(), property_bytes);
    if (remaining > max_remaining_length) {
        return "the PUBLISH packet would have " + std::to_string(remaining) +
               " bytes after its fixed header, more than MQTT's 268435455";
    }
    const auto size = packet_size(remaining);
    const auto broker_limit = broker_max_packet_.load(std::memory_order_relaxed);
    if (broker_limit != 0 && size > broker_limit) {
        return "the PUBLISH packet would be " + std::to_string(size) +
               " bytes, more than the broker's Maximum Packet Size of " +
               std::to_string(broker_limit);
    }
    return {};
}

// Paho's receive thread, when the connection of generation `lost` dropped: the poison
// guard (Outbox::connection_lost picks the suspect and counts).
void SessionCore::give_up_poison(std::uint64_t lost) noexcept {
    auto given_up = outbox_.connection_lost(static_cast<std::uint32_t>(lost));
    if (!given_up.delivery) return;
    auto& poison = given_up.delivery;
    // Paho still holds it, and a persistent session's Paho sends it again at every
    // connect: only a clean start makes Paho (and the broker) forget it.
    const bool clean_start = given_up.held_by_paho && !options_.clean_session;
    if (clean_start) drop_paho_session_.store(true, std::memory_order_release);
    stats_->poison_publishes.fetch_add(1, std::memory_order_relaxed);
    stats_->count_error();
    unstore(*poison);
    const auto topic = poison->message().get_topic();
    log_->error(
        "session '{}': gave up a QoS {} message to '{}': the broker closed the connection each "
        "of the {} times in a row it was in flight",
        options_.name, poison->message().get_qos(), topic,
        options_.performance.max_publish_attempts);
    if (clean_start) {
        log_->error(
            "session '{}': the next connect starts a clean session to drop it: messages the "
            "broker queued for this session are lost, its subscriptions are made again",
            options_.name);
    }
    poison->fail(Error(ErrorKind::publish,
                       "given up: the broker closed the connection each time the message was "
                       "sent (a message it refuses to take)")
                     .with_session(options_.name)
                     .with_topic(topic)
                     .with_context("attempts", options_.performance.max_publish_attempts));
}

// Scheduler thread: a failure stopped the hand-off for the connection of generation
// `sent_in`; if that connection is in fact still up (a failure that was not its loss),
// the hand-off resumes. Otherwise on_connection_lost follows and the next connect's
// mark_ready resumes it.
void SessionCore::resume_if_link_up(std::uint32_t sent_in) noexcept {
    try {
        if (!client_->is_connected()) return;
        {
            std::lock_guard lock(mutex_);
            if (sent_in != static_cast<std::uint32_t>(generation_) ||
                state() != SessionState::connected) {
                return;
            }
            ready_.store(true, std::memory_order_release);
        }
        if (outbox_waiting()) post_pump();
    } catch (...) {
    }
}

bool SessionCore::outbox_waiting() const {
    return ready() && outbox_.has_waiting();
}

void SessionCore::on_publish_success(const mqtt::token& token) {
    if (auto delivery = outbox_.take(token.get_user_context())) {
        if (delivery->message().get_qos() > 0) {
            stats_->publish_latency.record(std::chrono::steady_clock::now() -
                                           delivery->accepted_at());
        }
        // Kept until now rather than until Paho took it: Paho may lose a message it has
        // queued but not yet written when the program dies. A crash after this write
        // and before the removal sends the message again: a duplicate, never a loss.
        const auto ticket = delivery->storage_ticket;
        unstore(*delivery);
        // With a synced file store, confirmed means durable too: a power cut before its
        // group commit would have lost a message the application was told was safe.
        if (ticket != 0) {
            storage_->backend()->when_durable(ticket, [delivery] { delivery->complete(); });
        } else {
            delivery->complete();
        }
    }
    if (outbox_waiting()) post_pump();
}

void SessionCore::on_publish_failure(const mqtt::token& token) {
    // It may be the connection's failure: no alias alone until the next connect.
    alias_link_.store(0, std::memory_order_release);
    const auto failed = outbox_.find(token.get_user_context());
    if (!failed) return;
    // A QoS 1/2 message lost with its connection (Paho discards what is in flight when a
    // clean session reconnects, or fails what it was writing) goes back into the outbox in
    // its place and out again once the new connection is ready; its token completes then.
    // A broker's refusal (a reason code of 0x80 or more; Paho fills in 255 when there was
    // none) is final.
    const int reason = static_cast<int>(token.get_reason_code());
    const bool refused = reason >= 0x80 && reason < 255;
    const bool retry = failed->message().get_qos() > 0 && !refused;
    // Paho fails what was in flight before it reports the lost connection. Until
    // on_connection_lost, nothing more may go to Paho: it would buffer it for the next
    // connection under this one's stamp, and the poison guard would blame the wrong
    // message. So the hand-off stops before the message is back among the waiting ones.
    const auto sent_in = failed->sent_in;
    bool link_lost = false;
    if (retry) {
        std::lock_guard lock(mutex_);
        if (sent_in == static_cast<std::uint32_t>(generation_)) {
            link_lost = ready_.exchange(false, std::memory_order_acq_rel);
        }
    }
    auto back = outbox_.give_back(token.get_user_context(), [&](const Delivery&) {
        return retry && state() != SessionState::closed;
    });
    if (back.requeued) {
        if (link_lost) {
            // Checked off Paho's thread: calling into Paho from its callback could block.
            runtime_->scheduler.post([weak = weak_from_this(), sent_in] {
                if (auto self = weak.lock()) self->resume_if_link_up(sent_in);
            });
        } else if (outbox_waiting()) {
            post_pump();
        }
        return;
    }
    if (!back.delivery) return;  // close() or the poison guard settled it meanwhile
    const auto& delivery = back.delivery;
    const auto& message = delivery->message();
    stats_->count_error();
    if (state() == SessionState::closed) {
        // Stays stored: a session with this client id sends it on its next start.
        delivery->fail(Error::session_closed(options_.name).with_topic(message.get_topic()));
        return;
    }
    unstore(*delivery);  // refused by the broker: final
    delivery->fail(from_token(token, ErrorKind::publish, "delivery failed")
                       .with_session(options_.name)
                       .with_topic(message.get_topic()));
}

void SessionCore::fail_undelivered() noexcept {
    for (const auto& delivery : outbox_.take_all()) {
        delivery->fail(Error::session_closed(options_.name)
                           .with_topic(delivery->message().get_topic())
                           .with_context("detail", "closed before the broker confirmed it"));
    }
}

void SessionCore::every_second() {
    stats_->sample_rates();
    const auto limit = options_.performance.in_flight_stall_after;
    if (limit.count() == 0) return;
    const auto now = std::chrono::steady_clock::now();
    std::size_t broker_index;
    std::chrono::steady_clock::time_point connected_at;
    {
        std::lock_guard lock(mutex_);
        // Not connected, it cannot tell: a stall lasts until a connection shows it moving.
        if (state() != SessionState::connected) return;
        broker_index = connected_index_;
        connected_at = connected_at_;
    }
    // Counted from the connect at the earliest: Paho sends again on a new connection
    // what was in flight on the last one.
    const auto stalled = outbox_.handed_before(now - limit);
    if (stalled.messages.empty() || now - std::max(stalled.oldest, connected_at) < limit) {
        if (stats_->window_stalled.exchange(false, std::memory_order_relaxed)) {
            log_->info("session '{}': the publish window moves again", options_.name);
        }
        return;
    }
    if (stats_->window_stalled.exchange(true, std::memory_order_relaxed)) return;  // said
    stats_->window_stalls.fetch_add(1, std::memory_order_relaxed);
    WindowStalled info;
    info.broker = brokers_[broker_index].paho_uri();  // brokers_ is const
    info.waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        now - std::max(stalled.oldest, connected_at));
    std::string ids;
    int qos2 = 0;
    for (const auto& [qos, packet_id] : stalled.messages) {
        info.messages.push_back({qos, packet_id});
        qos2 += qos == 2;
        if (info.messages.size() <= 10) {
            ids += (ids.empty() ? "" : ", ") + std::to_string(packet_id);
        } else if (info.messages.size() == 11) {
            ids += ", ...";
        }
    }
    log_->warn(
        "session '{}': {} publish(es) in flight to {} unacknowledged for {} ms (packet "
        "ids {}): the publish window is stalled{}",
        options_.name, info.messages.size(), info.broker, info.waited.count(), ids,
        qos2 == 0 ? ""
                  : ". A broker that does not complete QoS 2 (e.g. RabbitMQ 3.10's MQTT "
                    "plugin) stalls it this way: use QoS 1 there");
    emit(EventType::window_stalled, std::move(info));
}

}  // namespace mqttx::detail
