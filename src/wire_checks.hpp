// What the MQTT specification requires of what the library puts on the wire: the
// string and length rules of every field, and the size of a whole PUBLISH. What breaks
// them is refused where the user hands it over: sent anyway, the broker closes the
// connection, and a message would go out again on every reconnect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <string_view>

#include "mqttx/options.hpp"
#include "mqttx/properties.hpp"
#include "mqttx/subscribe_options.hpp"
#include "problems.hpp"

namespace mqttx::detail {

// Adds a problem under `field` unless `value` may go out as a UTF-8 Encoded String.
void check_string(Problems& problems, const std::string& field, std::string_view value);

// "" when `options` can go out on a session of `protocol` (every enumerator one there is,
// the MQTT 5 options only on MQTT 5); else what is wrong. The manager's routes, made
// before their sessions are known, are checked as MQTT 5 (each session checks again).
std::string check_subscribe_options(const SubscribeOptions& options, Protocol protocol);

// A packet's Remaining Length is at most 268,435,455 bytes (3.1.1 s2.2.3, 5.0 s2.1.4).
inline constexpr std::size_t max_remaining_length = 268'435'455;

// Bytes of a Variable Byte Integer (5.0 s1.5.5, 3.1.1 s2.2.3).
std::size_t variable_byte_integer_size(std::size_t value) noexcept;

// The Remaining Length of a PUBLISH packet: everything after its fixed header.
// `property_bytes` is the MQTT 5 property section with its length field (0 for 3.1.1).
std::size_t publish_remaining_length(std::size_t topic_bytes, std::size_t payload_bytes, int qos,
                                     std::size_t property_bytes) noexcept;

// Bytes of a whole packet, fixed header included (what a Maximum Packet Size counts).
std::size_t packet_size(std::size_t remaining_length) noexcept;

// MQTT's Four Byte Integers go up to 2^32 - 1, but Paho C 1.3.12 writes one of 2^31 or
// more wrongly (0xFFFFFFFF goes out as 0x000000FF: a message meant never to expire would
// expire after 255 s). So intervals stop at 2^31 - 1 seconds, about 68 years.
inline constexpr std::int64_t max_paho_four_byte = 0x7FFFFFFF;
// Adds a problem under `field` unless 0 <= seconds <= max_paho_four_byte.
void check_interval(Problems& problems, const std::string& field, std::int64_t seconds);

// One problem per user property (key or value) that breaks the string rules, under
// "<field>.user_properties[i].key|value".
void check_user_properties(const UserProperties& properties, Problems& problems,
                           const std::string& field);

// One problem per property that breaks the rules, under "<field>.<property>".
void check_publish_properties(const PublishProperties& properties, Problems& problems,
                              const std::string& field);

}  // namespace mqttx::detail
