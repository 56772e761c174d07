// StoredSessionState as JSON, the form it takes in storage:
//   {"version":1,"client_id":"...","session":"...","last_connected_ms":...,
//    "last_disconnected_ms":...,"subscriptions":[{"filter":"a/#","qos":1,
//    "no_local":false,"retain_as_published":false,"retain_handling":0,"share_group":""}]}
#pragma once

#include <string>
#include <string_view>

#include "mqttx/storage.hpp"

namespace mqttx::detail {

std::string encode(const StoredSessionState& state);
// Throws std::runtime_error naming what is wrong: not JSON, another version, a field
// missing or of the wrong type, a QoS out of range.
StoredSessionState decode_stored_state(std::string_view text);

}  // namespace mqttx::detail
