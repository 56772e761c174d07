// The connection state of a session.
#pragma once

namespace mqttx {

enum class SessionState {
    disconnected,  // not started, or stopped without reconnect
    connecting,    // first connect in progress
    connected,     // connected to a broker
    reconnecting,  // connection lost or refused; waiting to retry or retrying
    closed,        // closed or removed: every call fails with session_closed
};

const char* to_string(SessionState state) noexcept;

}  // namespace mqttx
