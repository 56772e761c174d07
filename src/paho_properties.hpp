// Conversion between PublishProperties and Paho's MQTT 5 property lists.
#pragma once

#include <mqtt/properties.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mqttx/events.hpp"
#include "mqttx/properties.hpp"

namespace mqttx::detail {

mqtt::properties to_paho(const PublishProperties& properties);
PublishProperties from_paho(const mqtt::properties& properties);
// The subscription identifiers of a received PUBLISH, in the order they came.
std::vector<std::uint32_t> subscription_ids(const mqtt::properties& properties);
// Fills in the MQTT 5 fields of `info` from a CONNACK's properties.
void read_connack(const mqtt::properties& properties, ConnectInfo& info);

}  // namespace mqttx::detail
