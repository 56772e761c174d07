// Why a connect failed, in words a person can act on. Paho C 1.3.12 reports most network
// problems as "Failure" (-1), sometimes with a few words of its own ("TCP connect
// timeout"); a broker's refusal comes as its CONNACK code. For the rest, a TCP probe of
// our own tells a refused port from an unknown host or a silent one.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace mqtt {
class token;
}

namespace mqttx::detail {

struct TcpProbe {
    enum class Result { connected, refused, no_answer, host_not_found, unreachable };
    Result result = Result::connected;
    std::string detail;  // the resolver's or the system's words, for the last three
};

// TCP connects to host:port's addresses (IPv4 first), each waiting at most `timeout`,
// until one works: its socket (non-blocking), or -1; `probe` says which. Blocks: run it
// off Paho's and the scheduler's threads.
int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                TcpProbe& probe);
// The same, for the result only.
TcpProbe probe_tcp(const std::string& host, int port, std::chrono::milliseconds timeout);

// Recent probes by host:port, shared by a manager's sessions: when a broker goes away,
// its sessions' failed connects share one probe instead of waiting in line for one
// each on the background thread (and doubling the connects the broker sees).
class ProbeCache {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds max_age{2};

    std::optional<TcpProbe> fresh(const std::string& host_port) const;
    void store(const std::string& host_port, TcpProbe probe);

  private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::pair<Clock::time_point, TcpProbe>> probes_;
};

// Paho C's own words for a failed request (empty when it had none). Paho C++ 1.2.0
// hands them out only in the exception that waiting on the completed token throws.
std::string paho_failure_message(const mqtt::token& token);

// True when Paho gave up waiting: its connect timeout passed.
bool paho_timed_out(std::string_view paho_message) noexcept;

// A broker's refusal: a CONNACK return code of MQTT 3.1.1 (1..5) or an MQTT 5 reason
// code (0x80 and up), e.g. "the broker at h:p refused the connection: CONNACK code 5
// (not authorised)".
std::string describe_refusal(int code, const std::string& host_port);

// A connect that timed out or could not reach the broker, from the probe's result.
std::string describe_unreachable(const TcpProbe& probe, const std::string& host_port,
                                 std::string_view paho_message);

std::string describe_timeout(const std::string& host_port, std::chrono::milliseconds timeout);

}  // namespace mqttx::detail
