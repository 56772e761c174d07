// Translation of Paho failures into mqttx::Error at the library's boundary.
#pragma once

#include <mqtt/exception.h>
#include <mqtt/token.h>

#include <string>

#include "mqttx/error.hpp"

namespace mqttx::detail {

// The kind a Paho return code / MQTT reason code belongs to; `fallback` otherwise.
ErrorKind kind_of(int return_code, int reason_code, ErrorKind fallback) noexcept;

// Wraps a Paho exception: kind from its codes, codes kept, Paho's text as the cause.
Error from_paho(const mqtt::exception& e, ErrorKind fallback, std::string message);

// The same for a failed token (connect, subscribe...) seen in an action listener.
Error from_token(const mqtt::token& token, ErrorKind fallback, std::string message);

}  // namespace mqttx::detail
