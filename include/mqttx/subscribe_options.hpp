// Options of one subscription: MQTT 5 subscription options and shared subscriptions.
#pragma once

#include <string>

namespace mqttx {

enum class RetainHandling {
    send_on_subscribe = 0,         // the broker sends retained messages on every subscribe
    send_if_new_subscription = 1,  // only when the subscription did not exist yet
    do_not_send = 2,               // never
};

// The broker keeps one subscription per (session, filter): the options of the first
// route on a filter apply to every later route on the same filter.
struct SubscribeOptions {
    bool no_local = false;             // MQTT 5: not our own publishes back
    bool retain_as_published = false;  // MQTT 5: keep the retain flag as published
    RetainHandling retain_handling = RetainHandling::send_on_subscribe;  // MQTT 5
    // Non-empty: subscribe as "$share/{share_group}/{filter}", so each message goes to
    // one member of the group.
    std::string share_group;
};

}  // namespace mqttx
