// The receive path, on Paho's receive thread: a message from the broker is checked,
// counted, and handed to the routes that run inline, then to the session's dispatcher
// worker (dispatcher.cpp), which runs the other routes' handlers (router.cpp).
#include <spdlog/spdlog.h>

#include "mqttx/topic.hpp"
#include "problems.hpp"
#include "runtime.hpp"
#include "session/session_core.hpp"

namespace mqttx::detail {

// MQTT 5 topic aliases the broker uses towards us (ConnectProperties::topic_alias_maximum):
// a PUBLISH with a topic and an alias sets the alias, one with the alias alone means that
// topic. Paho C 1.3.12 hands both over as they came, so they are resolved here, per
// connection (only Paho's receive thread runs this).
mqtt::const_message_ptr SessionCore::resolve_topic_alias(mqtt::const_message_ptr message) {
    const auto& properties = message->get_properties().c_struct();
    int alias = 0;
    for (int i = 0; i < properties.count; ++i) {
        if (properties.array[i].identifier == MQTTPROPERTY_CODE_TOPIC_ALIAS) {
            alias = properties.array[i].value.integer2;
        }
    }
    if (alias == 0) return message;
    const auto link = link_generation_.load(std::memory_order_relaxed);
    if (incoming_aliases_link_ != link) {
        incoming_aliases_.clear();  // a new connection: the broker starts afresh
        incoming_aliases_link_ = link;
    }
    if (!message->get_topic().empty()) {
        incoming_aliases_[alias] = message->get_topic();
        return message;
    }
    const auto known = incoming_aliases_.find(alias);
    if (known == incoming_aliases_.end()) return message;  // refused as an empty topic
    auto resolved = std::make_shared<mqtt::message>(*message);
    resolved->set_topic(known->second);
    return resolved;
}

void SessionCore::on_message(mqtt::const_message_ptr message) noexcept {
    try {
        if (accepts_topic_aliases_) message = resolve_topic_alias(std::move(message));
        // A broken or hostile server may send what no publisher could: a topic with
        // wildcards, a NUL or ill-formed UTF-8. Never routed, never forwarded.
        if (auto problem = topic::check_topic_name(message->get_topic()); !problem.empty()) {
            const auto count = stats_->invalid_received.fetch_add(1, std::memory_order_relaxed);
            if (count == 0) {
                log_->warn(
                    "session '{}': dropped a message from the broker with an invalid "
                    "topic {}: {} (logged once, counted in invalid_received)",
                    options_.name, quoted(message->get_topic()), problem);
            }
            return;
        }
        const auto bytes = message->get_payload_ref().size();
        stats_->messages_received.fetch_add(1, std::memory_order_relaxed);
        stats_->bytes_received.fetch_add(bytes, std::memory_order_relaxed);
        const auto now = Message::Clock::now();  // one clock read for both
        stats_->last_message_ns.store(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
            std::memory_order_relaxed);
        Message wrapped(std::move(message), shared_name_, now);
        if (runtime_->options.inline_handlers) {
            inline_delivery_thread = true;
            router_->deliver(wrapped, Router::Pass::all);
            inline_delivery_thread = false;
            return;
        }
        if (router_->has_receive_thread_routes()) {
            // Before this returns and Paho acknowledges the message to the broker.
            inline_delivery_thread = true;
            const bool rest = router_->deliver(wrapped, Router::Pass::receive_thread);
            inline_delivery_thread = false;
            if (!rest) return;  // no dispatcher route wants it: no hop, no wake-up
        }
        if (!runtime_->dispatcher.post(worker_, router_, std::move(wrapped),
                                       runtime_->options.dispatch_block_timeout)) {
            // Counted always, logged sparingly: this is Paho's receive thread.
            const auto dropped = stats_->dropped.fetch_add(1, std::memory_order_relaxed) + 1;
            if (dropped == 1 || dropped % 1000 == 0) {
                log_->warn("session '{}': dispatch queue full, {} message(s) dropped so far",
                           options_.name, dropped);
            }
        }
    } catch (...) {
        // Nothing may unwind into Paho's C code.
        stats_->count_error();
    }
}

}  // namespace mqttx::detail
