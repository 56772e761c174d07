// OutboxRecord: how a message waiting in a persistent session's outbox is kept in its
// storage, under "mqttx-o-<sequence in hex>" (short enough for a string's inline buffer,
// which matters in the file backend's index while an outage spills to it):
//   version 1 | QoS | retained | topic | payload | user properties
// with every string as a 4-byte little-endian length and its bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "mqttx/properties.hpp"

namespace mqttx::detail {

inline constexpr std::string_view outbox_key_prefix = "mqttx-o-";
// Written by versions before the log, and still read: "mqttx-out-" and 20 decimal digits.
inline constexpr std::string_view decimal_outbox_key_prefix = "mqttx-out-";

struct OutboxRecord {
    int qos = 0;
    bool retained = false;
    std::string topic;
    std::string payload;
    UserProperties user_properties;
};

std::string outbox_key(std::uint64_t sequence);
// Empty when `key` is not an outbox key.
std::optional<std::uint64_t> outbox_sequence(std::string_view key);
std::string encode(const OutboxRecord& record);
// Empty when the bytes are not a record of this version.
std::optional<OutboxRecord> decode_outbox_record(std::string_view bytes);

// Topic and payload of an MQTT PUBLISH packet as Paho persists a message it has sent
// (its "s-" records: the packet as written, `v5` with properties); empty if malformed.
std::optional<std::pair<std::string, std::string>> decode_publish_packet(std::string_view packet,
                                                                         bool v5);

}  // namespace mqttx::detail
