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

Error from_paho(const mqtt::exception& e, ErrorKind fallback, std::string message) {
    const int rc = e.get_return_code();
    const int reason = e.get_reason_code();
    return Error(kind_of(rc, reason, fallback), std::move(message))
        .with_codes(rc, reason)
        .with_cause(std::make_exception_ptr(e));
}

Error from_token(const mqtt::token& token, ErrorKind fallback, std::string message) {
    const int rc = token.get_return_code();
    const int reason = token.get_reason_code();
    std::string text = mqtt::exception::printable_error(rc, reason);
    return Error(kind_of(rc, reason, fallback), std::move(message) + ": " + text)
        .with_codes(rc, reason);
}

}  // namespace mqttx::detail
