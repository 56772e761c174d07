// TLS against mosquitto TLS listeners, with certificates the fixture makes with the
// openssl command (support/pki.hpp): round trips (CA file, CA directory, mutual TLS with
// a plain and an encrypted key), and every refusal with OpenSSL's reason: unknown CA,
// host name mismatch, expired certificate, missing or untrusted client certificate,
// plaintext and TLS crossed. Nothing ever falls back to plaintext.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <mqttx/mqttx.hpp>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>

#include "support/child_process.hpp"
#include "support/collector.hpp"
#include "support/mosquitto.hpp"
#include "support/pki.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::TlsConfig;
using mqttx::test::Collector;
using mqttx::test::TestPki;

const TestPki& pki() {
    return TestPki::shared();
}

// One mosquitto: a plaintext listener and a TLS listener per server certificate, plus
// one that requires a client certificate.
class TlsBroker {
  public:
    TlsBroker()
        : tls_port(mqttx::test::free_port()),
          mutual_port(mqttx::test::free_port()),
          wrong_host_port(mqttx::test::free_port()),
          expired_port(mqttx::test::free_port()),
          websockets_port(mqttx::test::free_port()),
          broker(mqttx::test::BrokerOptions{.extra_config = config()}) {}

    std::string url(const char* scheme, int port) const {
        return std::string(scheme) + "://127.0.0.1:" + std::to_string(port);
    }

    const int tls_port;
    const int mutual_port;
    const int wrong_host_port;
    const int expired_port;
    const int websockets_port;
    mqttx::test::Mosquitto broker;

  private:
    std::string config() const {
        std::string text;
        auto listener = [&](int port, const std::string& cert, const std::string& key,
                            bool require_certificate) {
            text += "listener " + std::to_string(port) + " 127.0.0.1\n";
            text += "cafile " + pki().ca_cert + "\ncertfile " + cert + "\nkeyfile " + key + "\n";
            text += std::string("require_certificate ") + (require_certificate ? "true" : "false") +
                    "\n";
        };
        listener(tls_port, pki().server_cert, pki().server_key, false);
        listener(mutual_port, pki().server_cert, pki().server_key, true);
        listener(wrong_host_port, pki().wrong_host_cert, pki().wrong_host_key, false);
        listener(expired_port, pki().expired_cert, pki().expired_key, false);
        listener(websockets_port, pki().server_cert, pki().server_key, false);
        text += "protocol websockets\n";
        return text;
    }
};

// The error events of the manager's sessions.
class Errors {
  public:
    explicit Errors(mqttx::SessionManager& manager)
        : subscription_(manager.on_event(mqttx::EventType::error, [this](const mqttx::Event& e) {
              std::lock_guard lock(mutex_);
              errors_.push_back(std::get<mqttx::ErrorInfo>(e.data));
              changed_.notify_all();
          })) {}

    // The first error, waited for with a generous deadline.
    std::optional<mqttx::ErrorInfo> first() {
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, 30s, [&] { return !errors_.empty(); })) return std::nullopt;
        return errors_.front();
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<mqttx::ErrorInfo> errors_;
    mqttx::EventSubscription subscription_;
};

class TlsTest : public ::testing::Test {
  protected:
    // A QoS 1 round trip through one session; fails the test if anything is missing.
    void round_trip(mqttx::SessionBuilder builder) {
        auto session = manager.add_session(builder.no_reconnect().build());
        Collector inbox;
        auto route = session->subscribe("tls/echo", 1, inbox.handler());
        manager.connect_all();
        manager.wait_for_all_sessions(20s);
        const auto broker = session->current_broker();
        ASSERT_TRUE(broker.starts_with("ssl://") || broker.starts_with("wss://")) << broker;
        ASSERT_TRUE(session->publish("tls/echo", "over TLS", 1).wait_for(20s));
        ASSERT_TRUE(inbox.wait_for(1));
        EXPECT_EQ(inbox.messages().at(0).payload, "over TLS");
    }

    // Connects once (no reconnect) and returns the error it fails with; the session
    // must never have been connected.
    mqttx::ErrorInfo refused(mqttx::SessionBuilder builder) {
        Errors errors(manager);
        auto session = manager.add_session(builder.no_reconnect().build());
        std::atomic<bool> connected{false};
        auto watch = manager.on_event(mqttx::EventType::session_connected,
                                      [&](const mqttx::Event&) { connected = true; });
        manager.connect_all();
        auto error = errors.first();
        EXPECT_TRUE(error.has_value()) << "no error event";
        EXPECT_TRUE(mqttx::test::wait_until(
            [&] { return session->state() == mqttx::SessionState::disconnected; }, 30s));
        EXPECT_FALSE(connected);
        EXPECT_FALSE(session->is_connected());
        return error.value_or(mqttx::ErrorInfo{});
    }

    TlsBroker tls;
    mqttx::SessionManager manager;
};

TEST_F(TlsTest, RoundTripWithACaFile) {
    round_trip(mqttx::secure_connect("a", tls.url("ssl", tls.tls_port), pki().ca_cert));
}

TEST_F(TlsTest, RoundTripWithABareHostPortAndAlpn) {
    // Offering ALPN must not break a broker that does not negotiate it (mosquitto 2.0).
    round_trip(mqttx::SessionBuilder("a")
                   .broker("127.0.0.1:" + std::to_string(tls.tls_port))
                   .tls(TlsConfig{.ca_file = pki().ca_cert, .alpn = {"mqtt"}}));
}

TEST_F(TlsTest, RoundTripWithTheMqttsScheme) {
    round_trip(mqttx::secure_connect("a", tls.url("mqtts", tls.tls_port), pki().ca_cert));
}

TEST_F(TlsTest, RoundTripOverSecureWebSockets) {
    round_trip(
        mqttx::secure_connect("a", tls.url("wss", tls.websockets_port) + "/mqtt", pki().ca_cert));
}

TEST_F(TlsTest, RoundTripWithACaDirectory) {
    round_trip(mqttx::SessionBuilder("a")
                   .broker(tls.url("ssl", tls.tls_port))
                   .tls(TlsConfig{.ca_path = pki().ca_dir}));
}

TEST_F(TlsTest, MutualTlsWithAPlainAndAnEncryptedKey) {
    round_trip(mqttx::SessionBuilder("plain-key")
                   .broker(tls.url("ssl", tls.mutual_port))
                   .tls(pki().ca_cert, pki().client_cert, pki().client_key));
    round_trip(mqttx::SessionBuilder("encrypted-key")
                   .broker(tls.url("ssl", tls.mutual_port))
                   .tls(TlsConfig{.ca_file = pki().ca_cert,
                                  .cert_file = pki().client_cert,
                                  .key_file = pki().client_key_encrypted,
                                  .key_password = TestPki::key_password}));
}

TEST_F(TlsTest, AnUnknownCaIsRefused) {
    const auto error =
        refused(mqttx::secure_connect("a", tls.url("ssl", tls.tls_port), pki().rogue_ca_cert));
    EXPECT_EQ(error.kind, ErrorKind::authentication) << error.message;
    EXPECT_NE(error.message.find("certificate verify failed"), std::string::npos) << error.message;
}

TEST_F(TlsTest, AHostNameMismatchIsRefused) {
    // The certificate names elsewhere.example; the session dials 127.0.0.1.
    const auto error =
        refused(mqttx::secure_connect("a", tls.url("ssl", tls.wrong_host_port), pki().ca_cert));
    EXPECT_EQ(error.kind, ErrorKind::authentication) << error.message;
    EXPECT_NE(error.message.find("IP address mismatch"), std::string::npos) << error.message;
}

TEST_F(TlsTest, SkipVerifyConnectsToAMismatchedHostAndSaysSoOnce) {
    std::ostringstream log;
    auto logger = std::make_shared<spdlog::logger>(
        "tls-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    round_trip(mqttx::SessionBuilder("a")
                   .broker(tls.url("ssl", tls.wrong_host_port))
                   .tls(pki().ca_cert, "", "", true)
                   .logger(logger));
    const auto text = log.str();
    const auto first = text.find("skip_verify");
    ASSERT_NE(first, std::string::npos) << text;
    EXPECT_EQ(text.find("skip_verify", first + 1), std::string::npos) << text;
}

TEST_F(TlsTest, AnExpiredCertificateIsRefused) {
    const auto error =
        refused(mqttx::secure_connect("a", tls.url("ssl", tls.expired_port), pki().ca_cert));
    EXPECT_EQ(error.kind, ErrorKind::authentication) << error.message;
    EXPECT_NE(error.message.find("certificate verify failed"), std::string::npos) << error.message;
}

TEST_F(TlsTest, AMissingClientCertificateIsRefusedWhenRequired) {
    const auto error =
        refused(mqttx::secure_connect("a", tls.url("ssl", tls.mutual_port), pki().ca_cert));
    EXPECT_EQ(error.kind, ErrorKind::authentication) << error.message;
    EXPECT_NE(error.message.find("certificate required"), std::string::npos) << error.message;
}

TEST_F(TlsTest, AClientCertificateFromAnotherCaIsRefused) {
    const auto error =
        refused(mqttx::SessionBuilder("a")
                    .broker(tls.url("ssl", tls.mutual_port))
                    .tls(pki().ca_cert, pki().rogue_client_cert, pki().rogue_client_key));
    EXPECT_NE(error.message, "") << "the error says nothing";
}

TEST_F(TlsTest, APlaintextClientOnATlsPortFails) {
    const auto error = refused(mqttx::quick_connect("a", tls.url("tcp", tls.tls_port)));
    EXPECT_EQ(error.kind, ErrorKind::connection) << error.message;
}

TEST_F(TlsTest, ATlsClientOnAPlaintextPortFailsAndNeverFallsBack) {
    const auto error =
        refused(mqttx::secure_connect("a", tls.broker.uri().replace(0, 3, "ssl"), pki().ca_cert));
    EXPECT_EQ(error.kind, ErrorKind::connection) << error.message;
    EXPECT_NE(error.message.find("TLS handshake failed"), std::string::npos) << error.message;
    EXPECT_EQ(tls.broker.log().find("New client connected"), std::string::npos) << tls.broker.log();
}

// mosquitto 2.0 does not negotiate ALPN, so `openssl s_server` plays the broker's TLS
// side and says what the ClientHello offered. (It answers MQTT with nothing useful; the
// connect fails after the handshake, which is all this test needs.)
TEST(TlsHello, OffersTheAlpnProtocolsConfigured) {
    const int port = mqttx::test::free_port();
    const auto dir = mqttx::test::make_temp_dir("mqttx-sserver-");
    const auto output = dir + "/s_server.out";
    mqttx::test::ChildProcess server;
    // stdbuf: s_server's stdout is a buffered file, and the test reads it while it runs.
    server.spawn(mqttx::test::find_executable("stdbuf", "coreutils"),
                 {"-oL", mqttx::test::find_executable("openssl", "openssl"), "s_server", "-accept",
                  "127.0.0.1:" + std::to_string(port), "-cert", pki().server_cert, "-key",
                  pki().server_key, "-alpn", "mqtt", "-www"},
                 output);
    ASSERT_TRUE(mqttx::test::wait_until([&] { return mqttx::test::port_accepts(port); }, 20s));
    const auto read = [&] {
        std::ifstream in(output);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    };
    {
        mqttx::SessionManager manager;
        manager.add_session(
            mqttx::SessionBuilder("hello")
                .broker("ssl://127.0.0.1:" + std::to_string(port))
                .tls(TlsConfig{.ca_file = pki().ca_cert, .alpn = {"mqtt", "x-test"}})
                .no_reconnect()
                .build());
        manager.connect_all();
        EXPECT_TRUE(mqttx::test::wait_until(
            [&] {
                return read().find("ALPN protocols advertised by the client: mqtt, x-test") !=
                       std::string::npos;
            },
            20s))
            << read();
    }
    server.stop(5s);
    mqttx::test::remove_tree(dir);
}

}  // namespace
