#include "connect_failure.hpp"

#include <fcntl.h>
#include <mqtt/exception.h>
#include <mqtt/token.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "problems.hpp"

namespace mqttx::detail {

namespace {

// One non-blocking connect: the connected socket, or -1 with `error` set (ETIMEDOUT when
// `timeout` passed).
int connect_once(const addrinfo& address, std::chrono::milliseconds timeout, int& error) {
    const int fd = ::socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            address.ai_protocol);
    if (fd < 0) {
        error = errno;
        return -1;
    }
    error = 0;
    if (::connect(fd, address.ai_addr, address.ai_addrlen) != 0) {
        error = errno;
        if (error == EINPROGRESS) {
            pollfd waiting{fd, POLLOUT, 0};
            if (::poll(&waiting, 1, static_cast<int>(timeout.count())) <= 0) {
                error = ETIMEDOUT;
            } else {
                socklen_t length = sizeof error;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
            }
        }
    }
    if (error == 0) return fd;
    ::close(fd);
    return -1;
}

}  // namespace

int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                TcpProbe& probe) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const auto service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
        probe = {TcpProbe::Result::host_not_found, ::gai_strerror(rc)};
        return -1;
    }
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
    // Every address, IPv4 first as Paho does: "localhost" is ::1 as well, and a host
    // with an AAAA record may have no IPv6 route.
    std::vector<const addrinfo*> order;
    for (const auto* a = found; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) order.push_back(a);
    }
    for (const auto* a = found; a; a = a->ai_next) {
        if (a->ai_family != AF_INET) order.push_back(a);
    }
    int first_error = 0;
    for (const auto* address : order) {
        int error = 0;
        if (const int fd = connect_once(*address, timeout, error); fd >= 0) {
            probe = {TcpProbe::Result::connected, {}};
            return fd;
        }
        if (first_error == 0) first_error = error;
    }
    if (first_error == ECONNREFUSED) {
        probe = {TcpProbe::Result::refused, std::strerror(first_error)};
    } else if (first_error == ETIMEDOUT) {
        probe = {TcpProbe::Result::no_answer, std::strerror(first_error)};
    } else {
        probe = {TcpProbe::Result::unreachable, std::strerror(first_error)};
    }
    return -1;
}

TcpProbe probe_tcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
    TcpProbe probe;
    if (const int fd = connect_tcp(host, port, timeout, probe); fd >= 0) ::close(fd);
    return probe;
}

std::optional<TcpProbe> ProbeCache::fresh(const std::string& host_port) const {
    std::lock_guard lock(mutex_);
    const auto it = probes_.find(host_port);
    if (it == probes_.end() || Clock::now() - it->second.first > max_age) return std::nullopt;
    return it->second.second;
}

void ProbeCache::store(const std::string& host_port, TcpProbe probe) {
    std::lock_guard lock(mutex_);
    // Bounded by the brokers the sessions name; stale entries are replaced, not swept.
    probes_[host_port] = {Clock::now(), std::move(probe)};
}

std::string paho_failure_message(const mqtt::token& token) {
    try {
        // Complete already, so this returns at once (or throws what we want).
        const_cast<mqtt::token&>(token).try_wait();
    } catch (const mqtt::exception& e) {
        return e.get_message();
    } catch (const std::exception&) {
    }
    return {};
}

bool paho_timed_out(std::string_view paho_message) noexcept {
    return paho_message.find("timeout") != std::string_view::npos;
}

std::string describe_refusal(int code, const std::string& host_port) {
    std::string text = "the broker at " + host_port + " refused the connection: ";
    if (code >= 0x80) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(code & 0xFF));
        return text + "CONNACK reason code " + hex + " (" + mqtt::exception::reason_code_str(code) +
               ")";
    }
    static constexpr const char* v311[] = {
        "",
        "unacceptable protocol version",
        "client identifier rejected",
        "server unavailable",
        "bad user name or password",
        "not authorised",
    };
    const char* words = code >= 1 && code <= 5 ? v311[code] : "unknown code";
    return text + "CONNACK code " + std::to_string(code) + " (" + words + ")";
}

std::string describe_unreachable(const TcpProbe& probe, const std::string& host_port,
                                 std::string_view paho_message) {
    switch (probe.result) {
        case TcpProbe::Result::host_not_found:
            return "host not found: " + host_port + " (" + probe.detail + ")";
        case TcpProbe::Result::refused:
            return "connection refused by " + host_port + " (nothing listens there)";
        case TcpProbe::Result::no_answer:
            return "no answer from " + host_port;
        case TcpProbe::Result::unreachable:
            return "cannot reach " + host_port + ": " + probe.detail;
        case TcpProbe::Result::connected:
            break;
    }
    // Reachable now: the connection broke during the MQTT handshake, or the broker came
    // back between Paho's attempt and the probe.
    std::string text = host_port + " accepts TCP connections, but the MQTT connect failed";
    if (!paho_message.empty()) text += " (Paho: " + quoted(paho_message) + ")";
    return text;
}

std::string describe_timeout(const std::string& host_port, std::chrono::milliseconds timeout) {
    return "no answer from " + host_port + " within the connect timeout (" +
           std::to_string(timeout.count()) + " ms)";
}

}  // namespace mqttx::detail
