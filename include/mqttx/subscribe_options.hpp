// Options of one subscription: MQTT 5 subscription options and shared subscriptions.
#pragma once

#include <cstdint>
#include <string>

#include "mqttx/properties.hpp"

namespace mqttx {

enum class RetainHandling {
    send_on_subscribe = 0,         // the broker sends retained messages on every subscribe
    send_if_new_subscription = 1,  // only when the subscription did not exist yet
    do_not_send = 2,               // never
};

// Which thread runs a route's handler.
enum class HandlerThread {
    // The manager's dispatcher threads, in order per session. A slow handler holds up
    // only the sessions sharing its thread.
    dispatcher,
    // Paho's receive thread, before the message is acknowledged to the broker: no
    // hand-off to another thread (the least latency and CPU), but while the handler runs
    // no session of the process receives anything. The handler must be quick and may
    // not subscribe or wait for a broker reply (that would deadlock).
    receive_thread,
};

// The broker keeps one subscription per (session, filter): the options of the first
// route on a filter apply to every later route on the same filter. `handler_thread` is
// the exception: it belongs to each route.
struct SubscribeOptions {
    bool no_local = false;             // MQTT 5: not our own publishes back
    bool retain_as_published = false;  // MQTT 5: keep the retain flag as published
    RetainHandling retain_handling = RetainHandling::send_on_subscribe;  // MQTT 5
    // Non-empty: subscribe as "$share/{share_group}/{filter}", so each message goes to
    // one member of the group.
    std::string share_group{};
    // ManagerOptions::inline_handlers puts every route on the receive thread.
    HandlerThread handler_thread = HandlerThread::dispatcher;
    // MQTT 5 Subscription Identifier (1 to 268,435,455; 0: none): the broker puts it on
    // every message this subscription delivers, and Message::subscription_ids() lists
    // them, so a handler can tell which subscription matched.
    std::uint32_t subscription_id = 0;
    // MQTT 5: user properties sent with the SUBSCRIBE.
    UserProperties user_properties{};
};

// The largest Subscription Identifier (a Variable Byte Integer, 5.0 s3.8.2.1.2).
inline constexpr std::uint32_t max_subscription_id = 268'435'455;

}  // namespace mqttx
