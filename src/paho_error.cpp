#include "paho_error.hpp"

#include <MQTTAsync.h>

namespace mqttx::detail {

ErrorKind kind_of(int return_code, int reason_code, ErrorKind fallback) noexcept {
    switch (return_code) {
        case MQTTASYNC_DISCONNECTED:
            return ErrorKind::connection;
        case MQTTASYNC_MAX_BUFFERED_MESSAGES:
            return ErrorKind::buffer_full;
        case MQTTASYNC_BAD_QOS:
            return ErrorKind::invalid_qos;
        case MQTTASYNC_BAD_UTF8_STRING:
        case MQTTASYNC_TOPICNAME_TRUNCATED:
            return ErrorKind::invalid_topic;
        case MQTTASYNC_PERSISTENCE_ERROR:
            return ErrorKind::storage;
        case MQTTASYNC_SSL_NOT_SUPPORTED:
            return ErrorKind::tls;
        case MQTTASYNC_BAD_STRUCTURE:
        case MQTTASYNC_BAD_PROTOCOL:
        case MQTTASYNC_BAD_MQTT_OPTION:
        case MQTTASYNC_WRONG_MQTT_VERSION:
            return ErrorKind::configuration;
        case 4:  // MQTT 3.1.1 CONNACK: bad user name or password
        case 5:  // MQTT 3.1.1 CONNACK: not authorized
            return ErrorKind::authentication;
        default:
            break;
    }
    // A refused subscription (0x87 not authorized included) stays a subscription error.
    if (fallback != ErrorKind::connection) return fallback;
    switch (reason_code) {
        case 0x86:  // bad user name or password
        case 0x87:  // not authorized
        case 0x8C:  // bad authentication method
            return ErrorKind::authentication;
        default:
            break;
    }
    return fallback;
}

namespace {

// Paho's words for its codes; a "reason code" outside 0..254 is one of Paho's return
// codes copied over or a filler, not the broker's.
Error make_error(int rc, int reason, ErrorKind fallback, std::string message) {
    // Paho fills in 255 (no MQTT reason code has that value) when no packet said why.
    if (reason < 0 || reason >= 255) reason = 0;
    std::string text;
    if (rc != 0) text = mqtt::exception::error_str(rc);
    if (reason >= 0x80) {
        if (!text.empty()) text += "; ";
        text += "broker: " + mqtt::exception::reason_code_str(reason);
    }
    if (!text.empty()) message += ": " + text;
    return Error(kind_of(rc, reason, fallback), std::move(message)).with_codes(rc, reason);
}

}  // namespace

Error from_paho(const mqtt::exception& e, ErrorKind fallback, std::string message) {
    return make_error(e.get_return_code(), e.get_reason_code(), fallback, std::move(message))
        .with_cause(std::make_exception_ptr(e));
}

Error from_token(const mqtt::token& token, ErrorKind fallback, std::string message) {
    return make_error(token.get_return_code(), token.get_reason_code(), fallback,
                      std::move(message));
}

}  // namespace mqttx::detail
