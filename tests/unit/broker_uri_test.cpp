#include "broker_uri.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>

namespace mqttx::detail {
namespace {

struct Valid {
    std::string_view input;
    bool tls_configured;
    Transport transport;
    std::string_view host;
    int port;
    std::string_view path;
    std::string_view paho;  // expected paho_uri()
};

void PrintTo(const Valid& v, std::ostream* os) {
    *os << "'" << v.input << "' tls=" << v.tls_configured;
}

class ValidUri : public ::testing::TestWithParam<Valid> {};

TEST_P(ValidUri, Parses) {
    const Valid& v = GetParam();
    BrokerUri uri;
    std::string problem;
    ASSERT_TRUE(parse_broker_uri(v.input, v.tls_configured, uri, problem)) << problem;
    EXPECT_TRUE(problem.empty()) << problem;
    EXPECT_EQ(scheme_name(uri.transport), std::string(scheme_name(v.transport)));
    EXPECT_EQ(uri.host, v.host);
    EXPECT_EQ(uri.port, v.port);
    EXPECT_EQ(uri.path, v.path);
    EXPECT_EQ(uri.paho_uri(), v.paho);
    EXPECT_EQ(uri.secure(), v.transport == Transport::ssl || v.transport == Transport::wss);
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(BrokerUri, ValidUri, ::testing::Values(
    // Explicit schemes.
    Valid{"tcp://h:1", false, Transport::tcp, "h", 1, "", "tcp://h:1"},
    Valid{"mqtt://h:1", false, Transport::tcp, "h", 1, "", "tcp://h:1"},
    Valid{"tcp://mqtt.example.net:65535", false, Transport::tcp, "mqtt.example.net", 65535, "",
          "tcp://mqtt.example.net:65535"},
    Valid{"ssl://h:8884", false, Transport::ssl, "h", 8884, "", "ssl://h:8884"},
    Valid{"ssl://h:8884", true, Transport::ssl, "h", 8884, "", "ssl://h:8884"},
    Valid{"mqtts://h:8884", true, Transport::ssl, "h", 8884, "", "ssl://h:8884"},
    Valid{"mqtts://h:8884", false, Transport::ssl, "h", 8884, "", "ssl://h:8884"},
    Valid{"ws://h:80/mqtt", false, Transport::ws, "h", 80, "/mqtt", "ws://h:80/mqtt"},
    Valid{"ws://h:9001/a/b", false, Transport::ws, "h", 9001, "/a/b", "ws://h:9001/a/b"},
    Valid{"ws://h:8080", false, Transport::ws, "h", 8080, "", "ws://h:8080"},
    Valid{"wss://h:443/mqtt", true, Transport::wss, "h", 443, "/mqtt", "wss://h:443/mqtt"},
    Valid{"wss://h/mqtt", false, Transport::wss, "h", 443, "/mqtt", "wss://h:443/mqtt"},
    // Bare host:port: tcp, or ssl when TLS is configured.
    Valid{"h:1883", false, Transport::tcp, "h", 1883, "", "tcp://h:1883"},
    Valid{"h:8883", true, Transport::ssl, "h", 8883, "", "ssl://h:8883"},
    Valid{"10.0.0.1:1", false, Transport::tcp, "10.0.0.1", 1, "", "tcp://10.0.0.1:1"},
    // Default ports.
    Valid{"h", false, Transport::tcp, "h", 1883, "", "tcp://h:1883"},
    Valid{"h", true, Transport::ssl, "h", 8883, "", "ssl://h:8883"},
    Valid{"tcp://h", false, Transport::tcp, "h", 1883, "", "tcp://h:1883"},
    Valid{"mqtt://h", false, Transport::tcp, "h", 1883, "", "tcp://h:1883"},
    Valid{"ssl://h", false, Transport::ssl, "h", 8883, "", "ssl://h:8883"},
    Valid{"mqtts://h", true, Transport::ssl, "h", 8883, "", "ssl://h:8883"},
    Valid{"ws://h", false, Transport::ws, "h", 80, "", "ws://h:80"},
    Valid{"ws://h/mqtt", false, Transport::ws, "h", 80, "/mqtt", "ws://h:80/mqtt"},
    Valid{"wss://h", false, Transport::wss, "h", 443, "", "wss://h:443"},
    // IPv6 literals in brackets; paho_uri() puts the brackets back.
    Valid{"tcp://my_host-1.example:1", false, Transport::tcp, "my_host-1.example", 1, "",
          "tcp://my_host-1.example:1"},
    Valid{"[fe80::1%eth0]:1883", false, Transport::tcp, "fe80::1%eth0", 1883, "",
          "tcp://[fe80::1%eth0]:1883"},
    Valid{"[::1]:1883", false, Transport::tcp, "::1", 1883, "", "tcp://[::1]:1883"},
    Valid{"[::1]", false, Transport::tcp, "::1", 1883, "", "tcp://[::1]:1883"},
    Valid{"[::1]", true, Transport::ssl, "::1", 8883, "", "ssl://[::1]:8883"},
    Valid{"tcp://[::1]:1883", false, Transport::tcp, "::1", 1883, "", "tcp://[::1]:1883"},
    Valid{"ssl://[2001:db8::7]:8883", true, Transport::ssl, "2001:db8::7", 8883, "",
          "ssl://[2001:db8::7]:8883"},
    Valid{"ws://[::1]:9001/mqtt", false, Transport::ws, "::1", 9001, "/mqtt",
          "ws://[::1]:9001/mqtt"}));
// clang-format on

using namespace std::string_view_literals;

// One character over what DNS can carry.
const std::string long_host = "tcp://" + std::string(254, 'h') + ":1883";

struct Invalid {
    std::string_view input;
    bool tls_configured;
    std::string_view problem;  // expected substring of the problem
};

void PrintTo(const Invalid& v, std::ostream* os) {
    *os << "'" << v.input << "' tls=" << v.tls_configured;
}

class InvalidUri : public ::testing::TestWithParam<Invalid> {};

TEST_P(InvalidUri, IsRefusedWithAReason) {
    const Invalid& v = GetParam();
    BrokerUri uri;
    std::string problem;
    EXPECT_FALSE(parse_broker_uri(v.input, v.tls_configured, uri, problem))
        << "accepted as " << uri.paho_uri();
    EXPECT_NE(problem.find(v.problem), std::string::npos)
        << "problem: '" << problem << "', expected it to contain '" << v.problem << "'";
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(BrokerUri, InvalidUri, ::testing::Values(
    Invalid{"", false, "empty"},
    Invalid{"http://h:80", false, "scheme 'http'"},
    Invalid{"https://h", true, "scheme 'https'"},
    Invalid{"://h:1", false, "scheme"},
    // Plaintext with TLS configured: never a silent fallback.
    Invalid{"tcp://h:1883", true, "plaintext"},
    Invalid{"mqtt://h:1883", true, "plaintext"},
    Invalid{"ws://h:80/mqtt", true, "plaintext"},
    // Host.
    Invalid{"tcp://", false, "missing host"},
    Invalid{"tcp://:1883", false, "missing host"},
    Invalid{":1883", false, "missing host"},
    Invalid{"[]:1883", false, "missing host"},
    Invalid{"ws:///mqtt", false, "missing host"},
    Invalid{"tcp://us er:1", false, "invalid character"},
    Invalid{"tcp://user@h:1", false, "user info"},
    Invalid{"tcp://user:pw@h:1883", false, "user info"},
    Invalid{"user:pw@h", false, "user info"},
    // What Paho would cut short at the NUL (and connect to 127.0.0.1:1883) or misread.
    Invalid{"tcp://127.0.0.1\0evil:21883"sv, false, "control character"},
    Invalid{"tcp://a\nb:1883", false, "control character"},
    Invalid{"tcp://a\tb:1883", false, "control character"},
    Invalid{"tcp://a\x7f:1883", false, "control character"},
    Invalid{"tcp://caf\xc3\xa9.example:1883", false, "not ASCII"},
    Invalid{"tcp://a\xff:1883", false, "not ASCII"},
    Invalid{"tcp://a?b:1", false, "invalid character '?'"},
    Invalid{"tcp://a#b:1", false, "invalid character '#'"},
    Invalid{"tcp://a%b:1", false, "invalid character '%'"},
    Invalid{long_host, false, "longer than 253"},
    // Port.
    Invalid{"tcp://h:0", false, "1 to 65535"},
    Invalid{"tcp://h:65536", false, "1 to 65535"},
    Invalid{"tcp://h:99999999999", false, "1 to 65535"},
    Invalid{"tcp://h:-1", false, "1 to 65535"},
    Invalid{"tcp://h:+1", false, "1 to 65535"},
    Invalid{"tcp://h:abc", false, "1 to 65535"},
    Invalid{"tcp://h:18x", false, "1 to 65535"},
    Invalid{"h: 1", false, "1 to 65535"},
    Invalid{"tcp://h:0021883", false, "leading zeros"},
    Invalid{"tcp://h:01", false, "leading zeros"},
    Invalid{"tcp://h:", false, "empty port"},
    Invalid{"[::1]:", false, "empty port"},
    Invalid{"[::1]:x", false, "1 to 65535"},
    // Paths are for websockets only.
    Invalid{"tcp://h:1883/mqtt", false, "path"},
    Invalid{"ssl://h:8883/", true, "path"},
    Invalid{"h:1883/x", false, "path"},
    Invalid{"ws://h:80/a b", false, "printable ASCII"},
    Invalid{"ws://h:80/a\nb", false, "printable ASCII"},
    Invalid{"ws://h:80/caf\xc3\xa9", false, "printable ASCII"},
    // IPv6 spellings.
    Invalid{"::1", false, "brackets"},
    Invalid{"tcp://::1:1883", false, "brackets"},
    Invalid{"2001:db8::1", false, "brackets"},
    Invalid{"[::1", false, "unterminated"},
    Invalid{"[::1]1883", false, "unexpected text"}));
// clang-format on

TEST(BrokerUri, FailureResetsTheOutput) {
    BrokerUri uri;
    std::string problem;
    ASSERT_TRUE(parse_broker_uri("ws://h:80/mqtt", false, uri, problem));
    EXPECT_FALSE(parse_broker_uri("http://x", false, uri, problem));
    EXPECT_TRUE(uri.host.empty());
    EXPECT_TRUE(uri.path.empty());
}

TEST(BrokerUri, SuccessOverwritesAPreviousResult) {
    BrokerUri uri;
    std::string problem;
    ASSERT_TRUE(parse_broker_uri("ws://a:81/p", false, uri, problem));
    ASSERT_TRUE(parse_broker_uri("tcp://b:82", false, uri, problem));
    EXPECT_EQ(uri.transport, Transport::tcp);
    EXPECT_EQ(uri.host, "b");
    EXPECT_EQ(uri.port, 82);
    EXPECT_TRUE(uri.path.empty());
    EXPECT_EQ(uri.paho_uri(), "tcp://b:82");
}

TEST(BrokerUri, PahoUriOfHandBuiltValues) {
    BrokerUri uri;
    uri.transport = Transport::wss;
    uri.host = "fe80::1";
    uri.port = 8443;
    uri.path = "/ws";
    EXPECT_EQ(uri.paho_uri(), "wss://[fe80::1]:8443/ws");
    EXPECT_TRUE(uri.secure());
    uri.transport = Transport::ws;
    EXPECT_FALSE(uri.secure());
    uri.transport = Transport::ssl;
    uri.host = "h";
    uri.path.clear();
    EXPECT_EQ(uri.paho_uri(), "ssl://h:8443");
    EXPECT_TRUE(uri.secure());
}

TEST(BrokerUri, PahoUriRoundTrips) {
    for (const char* text : {"tcp://h:1", "ssl://h:8883", "ws://h:80/mqtt", "wss://h:443/x/y",
                             "tcp://[::1]:1883", "ws://[::1]:1/p"}) {
        SCOPED_TRACE(text);
        BrokerUri first;
        BrokerUri second;
        std::string problem;
        ASSERT_TRUE(parse_broker_uri(text, false, first, problem)) << problem;
        ASSERT_TRUE(parse_broker_uri(first.paho_uri(), false, second, problem)) << problem;
        EXPECT_EQ(second.paho_uri(), first.paho_uri());
        EXPECT_EQ(first.paho_uri(), text);
    }
}

}  // namespace
}  // namespace mqttx::detail
