// Conversion between PublishProperties and Paho's MQTT 5 property lists.
#pragma once

#include <mqtt/properties.h>

#include "mqttx/properties.hpp"

namespace mqttx::detail {

mqtt::properties to_paho(const PublishProperties& properties);
PublishProperties from_paho(const mqtt::properties& properties);

}  // namespace mqttx::detail
