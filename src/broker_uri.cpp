#include "broker_uri.hpp"

#include <cctype>
#include <charconv>

namespace mqttx::detail {

namespace {

int default_port(Transport transport) {
    switch (transport) {
        case Transport::tcp:
            return 1883;
        case Transport::ssl:
            return 8883;
        case Transport::ws:
            return 80;
        case Transport::wss:
            return 443;
    }
    return 0;
}

bool parse_scheme(std::string_view text, Transport& out) {
    std::string scheme(text);  // schemes are case-insensitive (RFC 3986 3.1)
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "tcp" || scheme == "mqtt") {
        out = Transport::tcp;
    } else if (scheme == "ssl" || scheme == "mqtts" || scheme == "tls") {
        out = Transport::ssl;
    } else if (scheme == "ws") {
        out = Transport::ws;
    } else if (scheme == "wss") {
        out = Transport::wss;
    } else {
        return false;
    }
    return true;
}

// The longest host name DNS can carry (RFC 1035: 255 octets on the wire, 253 written).
constexpr std::size_t max_host_length = 253;

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

// A host name or IPv4 address: what getaddrinfo resolves, nothing Paho would cut short
// (it stops at a NUL) or misread. An international name must be given in its ASCII
// (punycode) form: the resolver does no IDN conversion.
std::string check_host(std::string_view host, bool bracketed) {
    if (host.size() > max_host_length) return "host longer than 253 characters";
    for (char c : host) {
        // An IPv6 literal: hex digits, ':' and '.', and a zone after '%' (fe80::1%eth0).
        const bool ok = is_host_char(c) || (bracketed && (c == ':' || c == '%'));
        if (ok) continue;
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x80) return "host is not ASCII: write an international name in punycode";
        if (byte < 0x20 || byte == 0x7F) return "control character in host";
        return "invalid character '" + std::string(1, c) + "' in host";
    }
    return {};
}

// A websocket path: printable ASCII only (RFC 3986 characters, percent-encoded as needed).
bool is_valid_path(std::string_view path) {
    for (char c : path) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte >= 0x7F) return false;
    }
    return true;
}

}  // namespace

const char* scheme_name(Transport transport) noexcept {
    switch (transport) {
        case Transport::tcp:
            return "tcp";
        case Transport::ssl:
            return "ssl";
        case Transport::ws:
            return "ws";
        case Transport::wss:
            return "wss";
    }
    return "";
}

std::string BrokerUri::paho_uri() const {
    std::string uri = scheme_name(transport);
    uri += "://";
    uri += host.find(':') != std::string::npos ? "[" + host + "]" : host;  // IPv6 literal
    uri += ':';
    uri += std::to_string(port);
    uri += path;
    return uri;
}

bool parse_broker_uri(std::string_view text, bool tls_configured, BrokerUri& out,
                      std::string& problem) {
    out = BrokerUri{};
    if (text.empty()) {
        problem = "empty broker address";
        return false;
    }
    std::string_view rest = text;
    bool explicit_scheme = false;
    if (auto pos = rest.find("://"); pos != std::string_view::npos) {
        auto scheme = rest.substr(0, pos);
        if (!parse_scheme(scheme, out.transport)) {
            problem = "unsupported scheme '" + std::string(scheme) +
                      "' (use tcp, mqtt, ssl, mqtts, ws or wss)";
            return false;
        }
        explicit_scheme = true;
        rest.remove_prefix(pos + 3);
    } else {
        out.transport = tls_configured ? Transport::ssl : Transport::tcp;
    }
    if (explicit_scheme && tls_configured && !out.secure()) {
        problem = "plaintext scheme with TLS settings: use ssl://, mqtts:// or wss://";
        return false;
    }

    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        if (out.transport != Transport::ws && out.transport != Transport::wss) {
            problem = "a path is only allowed for ws:// and wss://";
            return false;
        }
        out.path = std::string(rest.substr(slash));
        rest = rest.substr(0, slash);
        if (!is_valid_path(out.path)) {
            problem = "the path may hold printable ASCII only (percent-encode the rest)";
            return false;
        }
    }
    // Before the host is split from the port: "user:pw@host:1883" has two colons.
    if (rest.find('@') != std::string_view::npos) {
        problem = "user info in the broker address is not supported: use auth()";
        return false;
    }

    std::string_view host;
    std::string_view port;
    const bool bracketed = !rest.empty() && rest.front() == '[';
    if (bracketed) {  // [IPv6]:port
        auto close = rest.find(']');
        if (close == std::string_view::npos) {
            problem = "unterminated IPv6 address";
            return false;
        }
        host = rest.substr(1, close - 1);
        auto after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                problem = "unexpected text after IPv6 address";
                return false;
            }
            port = after.substr(1);
            if (port.empty()) {
                problem = "empty port";
                return false;
            }
        }
    } else {
        auto colon = rest.rfind(':');
        if (colon != std::string_view::npos && rest.find(':') != colon) {
            problem = "IPv6 addresses must be written in brackets, e.g. [::1]:1883";
            return false;
        }
        host = rest.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = rest.substr(colon + 1);
            if (port.empty()) {
                problem = "empty port";
                return false;
            }
        }
    }
    if (host.empty()) {
        problem = "missing host";
        return false;
    }
    if (problem = check_host(host, bracketed); !problem.empty()) return false;
    out.host = std::string(host);
    if (port.empty()) {
        out.port = default_port(out.transport);
    } else {
        int value = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        // No leading zeros: "0021883" would be read as 21883 here and may be read
        // differently elsewhere.
        if (ec != std::errc{} || end != port.data() + port.size() || value < 1 || value > 65535 ||
            port.front() == '0') {
            problem = "port must be a number from 1 to 65535, without leading zeros";
            return false;
        }
        out.port = value;
    }
    return true;
}

}  // namespace mqttx::detail
