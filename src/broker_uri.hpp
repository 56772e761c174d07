// Broker address parsing: accepted spellings, default ports, TLS rules.
#pragma once

#include <string>
#include <string_view>

namespace mqttx::detail {

enum class Transport { tcp, ssl, ws, wss };

// "tcp", "ssl", "ws" or "wss": the scheme Paho understands.
const char* scheme_name(Transport transport) noexcept;

struct BrokerUri {
    Transport transport = Transport::tcp;
    std::string host;
    int port = 0;
    std::string path;  // websocket path, with its leading '/'

    bool secure() const noexcept {
        return transport == Transport::ssl || transport == Transport::wss;
    }
    // The spelling Paho understands: tcp://, ssl://, ws://, wss://.
    std::string paho_uri() const;
};

// Parses `text`; on failure returns false and sets `problem`. A bare "host[:port]"
// is tcp, or ssl when `tls_configured`. A plaintext scheme with TLS configured is
// refused: we never fall back to plaintext silently.
bool parse_broker_uri(std::string_view text, bool tls_configured, BrokerUri& out,
                      std::string& problem);

}  // namespace mqttx::detail
