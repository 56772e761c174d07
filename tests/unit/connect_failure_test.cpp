// The words of a failed connect, for each kind of failure.
#include "connect_failure.hpp"

#include <gtest/gtest.h>

namespace {

using mqttx::detail::TcpProbe;

TEST(ConnectFailure, EachProbeResultHasItsOwnWords) {
    const std::string at = "127.0.0.1:1883";
    EXPECT_EQ(mqttx::detail::describe_unreachable(
                  {TcpProbe::Result::host_not_found, "Name or service not known"}, at, ""),
              "host not found: 127.0.0.1:1883 (Name or service not known)");
    EXPECT_EQ(mqttx::detail::describe_unreachable({TcpProbe::Result::refused, ""}, at, ""),
              "connection refused by 127.0.0.1:1883 (nothing listens there)");
    EXPECT_EQ(mqttx::detail::describe_unreachable({TcpProbe::Result::no_answer, ""}, at, ""),
              "no answer from 127.0.0.1:1883");
    EXPECT_EQ(mqttx::detail::describe_unreachable(
                  {TcpProbe::Result::unreachable, "No route to host"}, at, ""),
              "cannot reach 127.0.0.1:1883: No route to host");
    EXPECT_EQ(mqttx::detail::describe_unreachable({TcpProbe::Result::connected, ""}, at,
                                                  "TCP/TLS connect failure"),
              "127.0.0.1:1883 accepts TCP connections, but the MQTT connect failed "
              "(Paho: 'TCP/TLS connect failure')");
}

TEST(ConnectFailure, RefusalsNameTheConnackCode) {
    EXPECT_EQ(mqttx::detail::describe_refusal(4, "h:1"),
              "the broker at h:1 refused the connection: CONNACK code 4 (bad user name or "
              "password)");
    EXPECT_EQ(mqttx::detail::describe_refusal(9, "h:1"),
              "the broker at h:1 refused the connection: CONNACK code 9 (unknown code)");
    EXPECT_EQ(mqttx::detail::describe_refusal(0x86, "h:1"),
              "the broker at h:1 refused the connection: CONNACK reason code 0x86 (Bad User "
              "Name or Password)");
}

TEST(ConnectFailure, PahosTimeoutIsRecognised) {
    EXPECT_TRUE(mqttx::detail::paho_timed_out("TCP connect timeout"));
    EXPECT_FALSE(mqttx::detail::paho_timed_out("TCP/TLS connect failure"));
    EXPECT_FALSE(mqttx::detail::paho_timed_out(""));
}

}  // namespace
