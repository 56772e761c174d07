// The bridge's configuration file without a broker: the sample configs, every kind of
// mistake reported at its place, environment variables, durations, the command line.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config.hpp"
#include "mqttx/error.hpp"

namespace {

using mqttx::bridge::LoadOptions;
using mqttx::bridge::parse_config;

std::vector<std::string> problems_of(const std::string& text, const LoadOptions& load = {}) {
    std::vector<std::string> out;
    for (const auto& problem : parse_config(text, "b.toml", load).problems) {
        out.push_back(problem.text());
    }
    return out;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines) out += line + "\n";
    return out;
}

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

constexpr const char* two_sessions = R"(
[[sessions]]
name = "site"
broker = "tcp://127.0.0.1:1883"

[[sessions]]
name = "cloud"
broker = "tcp://127.0.0.1:1884"
)";

TEST(BridgeConfig, TheSampleConfigsAreValidAndMeanWhatTheySay) {
    ::unsetenv("SITE_BROKER");
    ::unsetenv("BRIDGE_LISTEN");
    ::setenv("CLOUD_BROKER", "tcp://127.0.0.1:2884", 1);
    ::setenv("STATE_DIRECTORY", "/tmp/bridge-state", 1);
    const auto bridge = parse_config(read(MQTTX_BRIDGE_DIR "/bridge.toml"), "bridge.toml");
    ASSERT_EQ(joined(problems_of(read(MQTTX_BRIDGE_DIR "/bridge.toml"))), "");
    const auto& c = bridge.config;
    ASSERT_EQ(c.sessions.size(), 2u);
    EXPECT_EQ(c.sessions[0].options.brokers, std::vector<std::string>{"tcp://127.0.0.1:1883"})
        << "the default after ':-'";
    EXPECT_EQ(c.sessions[1].options.brokers, std::vector<std::string>{"tcp://127.0.0.1:2884"})
        << "from the environment";
    EXPECT_TRUE(c.sessions[0].options.persistent);
    EXPECT_FALSE(c.sessions[0].options.clean_session) << "persistent implies a kept session";
    ASSERT_TRUE(c.sessions[0].options.storage);
    EXPECT_EQ(c.sessions[0].options.storage->type, mqttx::StorageType::file);
    EXPECT_EQ(c.sessions[0].options.storage->directory, "/tmp/bridge-state");
    EXPECT_EQ(c.sessions[1].options.reconnect.max, std::chrono::seconds(30));
    EXPECT_EQ(c.http.host, "127.0.0.1");
    EXPECT_EQ(c.http.port, 9464);
    ASSERT_EQ(c.forwarders.size(), 2u);
    const auto& f = c.forwarders[0].config;
    EXPECT_EQ(f.name, "sensors-to-cloud");
    EXPECT_EQ(f.target, "cloud");
    EXPECT_EQ(f.qos, 1);
    ASSERT_EQ(f.mappings.size(), 2u);
    EXPECT_EQ(f.mappings[0].from, "sensors/+/temperature");
    EXPECT_EQ(f.mappings[0].to, "storage/{1}/temp");
    EXPECT_EQ(c.forwarders[1].config.prefix, "from-cloud/");

    const auto scaled =
        parse_config(read(MQTTX_BRIDGE_DIR "/scale-out.toml"), "scale-out.toml", {.instance = "2"});
    ASSERT_EQ(joined(problems_of(read(MQTTX_BRIDGE_DIR "/scale-out.toml"), {.instance = "2"})), "");
    EXPECT_EQ(scaled.config.sessions[0].options.client_id, "bridge-site-2");
    EXPECT_EQ(scaled.config.sessions[1].options.client_id, "bridge-cloud-2");
    EXPECT_EQ(scaled.config.forwarders[0].config.share_group, "bridge");
    ::unsetenv("CLOUD_BROKER");
    ::unsetenv("STATE_DIRECTORY");
}

TEST(BridgeConfig, EveryMistakeIsReportedAtOnceWithItsPlace) {
    const auto problems = problems_of(R"([bridge]
drain_timeout = "5 parsecs"

[[sessions]]
name = "site"
broker = "htp://127.0.0.1:1883"
clientid = "x"
persistent = "yes"

[[sessions]]
broker = "tcp://127.0.0.1:1884"

[[forwarders]]
name = "f"
qos = 3
[[forwarders.sources]]
session = "sitee"
filters = ["a/#"]
)");
    EXPECT_EQ(joined(problems),
              "b.toml:2:17: bridge.drain_timeout: expected a duration such as \"30s\", \"250ms\", "
              "\"5m\" or \"1h\", got \"5 parsecs\"\n"
              "b.toml:6:10: sessions[0].broker: 'htp://127.0.0.1:1883': unsupported scheme 'htp' "
              "(use tcp, mqtt, ssl, mqtts, ws or wss)\n"
              "b.toml:7:1: sessions[0].clientid: unknown key (did you mean 'client_id'?)\n"
              "b.toml:8:14: sessions[0].persistent: expected true or false, got a string\n"
              "b.toml:10:1: sessions[1].name: missing (required)\n"
              "b.toml:13:1: forwarders[0].target: missing (required)\n"
              "b.toml:15:7: forwarders[0].qos: must be 0 to 2, got 3\n"
              "b.toml:17:11: forwarders[0].sources[0].session: unknown session 'sitee' (did you "
              "mean 'site'?); sessions: site\n");
}

TEST(BridgeConfig, WhatTheLibraryRefusesIsPlacedAtItsKey) {
    const auto problems = problems_of(std::string(two_sessions) + R"(
[[forwarders]]
name = "f"
target = "cloud"
share_group = "a/b"
[[forwarders.sources]]
session = "site"
filters = ["a/#/b"]
[[forwarders.mappings]]
from = "a/+"
to = "b/{3}"
)");
    ASSERT_EQ(problems.size(), 3u) << joined(problems);
    EXPECT_EQ(problems[0].rfind("b.toml:13:15: forwarders[0].share_group: ", 0), 0u) << problems[0];
    EXPECT_EQ(problems[1].rfind("b.toml:16:11: forwarders[0].sources[0].filters", 0), 0u)
        << problems[1];
    EXPECT_EQ(problems[2].rfind("b.toml:17:1: forwarders[0].mappings[0]", 0), 0u) << problems[2];
}

TEST(BridgeConfig, ASyntaxErrorNamesItsLine) {
    const auto problems = problems_of("[[sessions]]\nname = \"a\"\nbroker = \"tcp://x:1\n");
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_EQ(problems[0].rfind("b.toml:3:", 0), 0u) << problems[0];
}

TEST(BridgeConfig, ForwardersAreCheckedAgainstTheirSessions) {
    const auto v311_loop = problems_of(std::string(two_sessions) + R"(
[[forwarders]]
name = "loop"
target = "site"
metadata = { origin = "site" }
[[forwarders.sources]]
session = "site"
filters = ["a/#"]

[[forwarders]]
name = "loop"
target = "clud"
[[forwarders.sources]]
session = "site"
filters = ["b/#"]
)");
    EXPECT_EQ(joined(v311_loop),
              "b.toml:13:12: forwarders[0].metadata: target 'site' speaks MQTT 3.1.1, which has no "
              "user properties: set json_envelope = true or protocol = \"5\" on the target\n"
              "b.toml:15:11: forwarders[0].sources[0].session: source and target are one MQTT "
              "3.1.1 session: without no_local (MQTT 5) its forwarded messages would come back\n"
              "b.toml:19:8: forwarders[1].name: a forwarder named 'loop' is defined above\n"
              "b.toml:20:10: forwarders[1].target: unknown session 'clud' (did you mean "
              "'cloud'?); sessions: cloud, site\n");
}

TEST(BridgeConfig, EnvironmentVariablesDurationsAndTheCommandLine) {
    ::setenv("MQTTX_TEST_BROKER", "tcp://127.0.0.1:4000", 1);
    ::unsetenv("MQTTX_TEST_UNSET");
    const auto parsed = parse_config(R"(
[bridge]
drain_timeout = 0
[[sessions]]
name = "a"
broker = "${MQTTX_TEST_BROKER}"
client_id = "cost-$$5"
keep_alive = "2m"
[[sessions]]
name = "b"
broker = "${MQTTX_TEST_UNSET:-tcp://127.0.0.1:4001}"
connect_timeout = "250ms"
)",
                                     "b.toml", {.instance = "x1", .listen = "127.0.0.1:0"});
    ASSERT_EQ(parsed.problems.size(), 0u) << parsed.problems[0].text();
    const auto& c = parsed.config;
    EXPECT_EQ(c.drain_timeout, std::chrono::milliseconds(0)) << "0 needs no unit";
    EXPECT_EQ(c.sessions[1].options.connect_timeout, std::chrono::milliseconds(250));
    EXPECT_EQ(c.sessions[0].options.brokers[0], "tcp://127.0.0.1:4000");
    EXPECT_EQ(c.sessions[0].options.client_id, "cost-$5-x1");
    EXPECT_EQ(c.sessions[0].options.keep_alive, std::chrono::seconds(120));
    EXPECT_EQ(c.sessions[1].options.brokers[0], "tcp://127.0.0.1:4001");
    EXPECT_EQ(c.http.port, 0) << "--listen replaces the file's address";

    EXPECT_EQ(
        joined(problems_of("[[sessions]]\nname = \"a\"\nbroker = \"${MQTTX_TEST_UNSET}\"\n")),
        "b.toml:3:10: sessions[0].broker: the environment variable MQTTX_TEST_UNSET is not set "
        "(or empty)\n");
    EXPECT_EQ(
        joined(problems_of("", {.instance = "a/b", .listen = "localhost", .log_level = "loud"})),
        "b.toml: --log-level: one of trace, debug, info, warn, error, critical, off; got "
        "'loud'\n"
        "b.toml: --listen: expected \"HOST:PORT\", got \"localhost\"\n"
        "b.toml: --instance: only letters, digits, '-', '_' and '.' (it joins client "
        "ids), got 'a/b'\n");
    ::unsetenv("MQTTX_TEST_BROKER");
}

TEST(BridgeConfig, ChoicesAndDurationsExpandTooAndEachMistakeIsSaidOnce) {
    ::unsetenv("MQTTX_TEST_UNSET");
    const auto parsed = parse_config(R"(
[bridge]
log_level = "${MQTTX_TEST_UNSET:-debug}"
drain_timeout = "${MQTTX_TEST_UNSET:-5s}"
)",
                                     "b.toml");
    ASSERT_TRUE(parsed.problems.empty()) << parsed.problems[0].text();
    EXPECT_EQ(parsed.config.log_level, "debug");
    EXPECT_EQ(parsed.config.drain_timeout, std::chrono::seconds(5));

    EXPECT_EQ(joined(problems_of(R"([[sessions]]
name = "a"
client_id = "${A:-${B}}"

[[sessions]]
name = "b"
broker = "tcp://127.0.0.1:1"
brokers = ["tcp://127.0.0.1:2"]
)")),
              "b.toml:1:1: sessions[0].broker: missing (required): broker = \"tcp://host:1883\" "
              "or brokers = [...]\n"
              "b.toml:3:13: sessions[0].client_id: a default that uses '${' is not supported\n"
              "b.toml:8:11: sessions[1].brokers: give broker or brokers, not both\n");
}

TEST(BridgeConfig, LoadConfigThrowsOneLinePerProblemAndNamesAnUnreadableFile) {
    try {
        mqttx::bridge::load_config("/nonexistent/bridge.toml");
        FAIL() << "an unreadable file was accepted";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), mqttx::ErrorKind::storage);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/bridge.toml"), std::string::npos)
            << e.what();
    }
}

}  // namespace
