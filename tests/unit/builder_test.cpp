#include "mqttx/builder.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "mqttx/error.hpp"
#include "mqttx/options.hpp"
#include "support/pki.hpp"

using namespace std::chrono_literals;

namespace mqttx {
namespace {

namespace fs = std::filesystem;

// Real certificates and keys (build() parses them), made once with the openssl command.
const test::TestPki& pki() {
    return test::TestPki::shared();
}

std::string missing_file() {
    return (fs::temp_directory_path() / "mqttx_builder_test_does_not_exist" / "ca.pem").string();
}

const MessageHandler noop = [](const Message&) {};

// The Error build() throws, or nullopt when it accepted the options.
std::optional<Error> build_error(const SessionBuilder& builder) {
    try {
        (void)builder.build();
    } catch (const Error& e) {
        return e;
    }
    return std::nullopt;
}

std::vector<std::string> context_keys(const Error& e) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : e.context()) keys.push_back(key);
    return keys;
}

std::string describe(const Error& e) {
    std::string out = e.what();
    out += "\ncontext keys:";
    for (const auto& key : context_keys(e)) out += " [" + key + "]";
    return out;
}

// ---------------------------------------------------------------------------------------------
// Valid configurations

TEST(SessionBuilder, QuickConnectBuildsWithDefaults) {
    const auto builder = quick_connect("s", "tcp://localhost:1883");
    Options options;
    ASSERT_NO_THROW(options = builder.build());
    EXPECT_EQ(options.name, "s");
    ASSERT_EQ(options.brokers.size(), 1u);
    EXPECT_EQ(options.brokers[0], "tcp://localhost:1883");
    EXPECT_FALSE(options.tls.has_value());
    EXPECT_FALSE(options.persistent);
    EXPECT_TRUE(options.clean_session);
    EXPECT_TRUE(options.reconnect.enabled);
    EXPECT_FALSE(options.storage.has_value());
    EXPECT_FALSE(options.credentials.has_value());
}

TEST(SessionBuilder, BuildReturnsTheRecordedOptions) {
    const auto builder =
        quick_connect("s", "tcp://localhost:1883").client_id("cid").keep_alive(17s);
    const Options options = builder.build();
    EXPECT_EQ(options.client_id, builder.options().client_id);
    EXPECT_EQ(options.keep_alive, builder.options().keep_alive);
    EXPECT_EQ(options.brokers, builder.options().brokers);
}

TEST(SessionBuilder, BareHostPortIsAcceptedWithoutTls) {
    EXPECT_NO_THROW((void)quick_connect("s", "localhost:1883").build());
    EXPECT_NO_THROW((void)quick_connect("s", "localhost").build());
    EXPECT_NO_THROW((void)quick_connect("s", "ws://localhost:8080/mqtt").build());
}

TEST(SessionBuilder, SecureConnectWithBareHostPortAndReadableCaBuilds) {
    const auto builder = secure_connect("s", "gateway.example:8883", pki().ca_cert);
    Options options;
    ASSERT_NO_THROW(options = builder.build());
    ASSERT_TRUE(options.tls.has_value());
    EXPECT_EQ(options.tls->ca_file, pki().ca_cert);
    EXPECT_TRUE(options.tls->cert_file.empty());
    EXPECT_TRUE(options.tls->key_file.empty());
    EXPECT_FALSE(options.tls->skip_verify);
    ASSERT_EQ(options.brokers.size(), 1u);
    EXPECT_EQ(options.brokers[0], "gateway.example:8883");
}

TEST(SessionBuilder, SecureConnectAcceptsSecureSchemes) {
    for (const char* uri : {"ssl://h:8883", "mqtts://h", "wss://h/mqtt"}) {
        SCOPED_TRACE(uri);
        EXPECT_NO_THROW((void)secure_connect("s", uri, pki().ca_cert).build());
    }
}

TEST(SessionBuilder, SecureConnectRefusesPlaintextScheme) {
    for (const char* uri : {"tcp://h:1883", "mqtt://h:1883", "ws://h:80/mqtt"}) {
        SCOPED_TRACE(uri);
        const auto error = build_error(secure_connect("s", uri, pki().ca_cert));
        ASSERT_TRUE(error.has_value());
        ASSERT_EQ(error->context().size(), 1u) << describe(*error);
        EXPECT_EQ(error->context()[0].first, "brokers[0]");
        EXPECT_NE(error->context()[0].second.find("plaintext"), std::string::npos)
            << describe(*error);
    }
}

TEST(SessionBuilder, SecureConnectWithMissingCaIsRefused) {
    const auto error = build_error(secure_connect("s", "h:8883", missing_file()));
    ASSERT_TRUE(error.has_value());
    ASSERT_EQ(context_keys(*error), std::vector<std::string>{"tls.ca_file"}) << describe(*error);
    EXPECT_NE(std::string(error->what()).find(missing_file()), std::string::npos);
}

TEST(SessionBuilder, MutualTlsWithReadableFilesBuilds) {
    EXPECT_NO_THROW((void)SessionBuilder("s")
                        .broker("h:8883")
                        .tls(pki().ca_cert, pki().client_cert, pki().client_key)
                        .build());
}

TEST(SessionBuilder, TlsWithAnEncryptedKeyAndItsPasswordBuilds) {
    EXPECT_NO_THROW((void)SessionBuilder("s")
                        .broker("h:8883")
                        .tls(TlsConfig{.cert_file = pki().client_cert,
                                       .key_file = pki().client_key_encrypted,
                                       .key_password = test::TestPki::key_password,
                                       .ca_path = pki().ca_dir,
                                       .alpn = {"mqtt"}})
                        .build());
}

TEST(SessionBuilder, AKeyOfAnotherCertificateIsRefusedNamingBothFiles) {
    const auto error = build_error(quick_connect("s", "localhost:1883")
                                       .tls(pki().ca_cert, pki().client_cert, pki().other_key));
    ASSERT_TRUE(error.has_value());
    const std::string what = error->what();
    EXPECT_NE(what.find(pki().other_key), std::string::npos) << what;
    EXPECT_NE(what.find(pki().client_cert), std::string::npos) << what;
    EXPECT_EQ(what.find(test::TestPki::key_password), std::string::npos) << what;
}

TEST(SessionBuilder, TlsWithEmptyCaUsesSystemStoreAndBuilds) {
    EXPECT_NO_THROW((void)SessionBuilder("s").broker("ssl://h").tls(TlsConfig{}).build());
}

TEST(SessionBuilder, PersistentSessionWithClientIdBuilds) {
    EXPECT_NO_THROW((void)quick_connect("s", "tcp://h:1883").client_id("c").persistent().build());
    EXPECT_NO_THROW((void)quick_connect("s", "tcp://h:1883")
                        .client_id("c")
                        .persistent()
                        .memory_storage()
                        .build());
    EXPECT_NO_THROW((void)quick_connect("s", "tcp://h:1883")
                        .client_id("c")
                        .persistent()
                        .file_storage("/tmp/mqttx-store")
                        .build());
}

TEST(SessionBuilder, BoundaryValuesAreAccepted) {
    ReconnectPolicy policy;
    policy.initial = 1ms;
    policy.max = 1ms;
    policy.multiplier = 1.0;
    policy.jitter = 0.0;
    PerformanceOptions performance;
    performance.buffer_kb = 256 * 1024;
    performance.max_pending = 1;
    performance.max_inflight = 65535;
    EXPECT_NO_THROW((void)quick_connect("s", "tcp://h:1883")
                        .client_id(std::string(65535, 'c'))
                        .keep_alive(0s)
                        .auto_reconnect(policy)
                        .performance(performance)
                        .message_channel_size(1)
                        .will("$SYS/last/will", "bye", 2, true)
                        .subscribe("$share/g/a/+", 2, noop)
                        .subscribe("#", 0, noop)
                        .auth("user", "")
                        .build());
    EXPECT_NO_THROW((void)quick_connect("s", "tcp://h:1883").keep_alive(65535s).build());
}

// ---------------------------------------------------------------------------------------------
// One bad input: refused, and the Error names exactly that field.

struct BadInput {
    std::string label;  // test name suffix
    std::function<SessionBuilder()> make;
    std::string field;  // the one context key expected
};

// Files needed by some cases; they live for the whole test program.
SessionBuilder base() {
    return quick_connect("s", "localhost:1883");  // bare: stays valid with TLS settings too
}

PerformanceOptions inflight(int max_inflight) {
    PerformanceOptions p;
    p.max_inflight = max_inflight;
    return p;
}

const double not_a_number = std::numeric_limits<double>::quiet_NaN();

std::vector<BadInput> bad_inputs() {
    return {
        {"EmptyName", [] { return SessionBuilder("").broker("localhost:1883"); }, "name"},
        {"NoBroker", [] { return SessionBuilder("s"); }, "brokers"},
        {"EmptyBrokerList", [] { return base().brokers({}); }, "brokers"},
        {"UnknownScheme", [] { return quick_connect("s", "http://h:80"); }, "brokers[0]"},
        {"EmptyBroker", [] { return quick_connect("s", ""); }, "brokers[0]"},
        {"PortZero", [] { return quick_connect("s", "tcp://h:0"); }, "brokers[0]"},
        {"SecondBrokerBad",
         [] {
             return base().brokers({"tcp://a:1883", "tcp://b:65536"});
         },
         "brokers[1]"},
        {"ClientIdTooLong", [] { return base().client_id(std::string(65536, 'c')); }, "client_id"},
        {"PersistentWithoutClientId", [] { return base().persistent(); }, "client_id"},
        {"KeepAliveNegative", [] { return base().keep_alive(-1s); }, "keep_alive"},
        {"KeepAliveTooLarge", [] { return base().keep_alive(65536s); }, "keep_alive"},
        {"ConnectTimeoutZero", [] { return base().timeouts(0ms, 1000ms); }, "connect_timeout"},
        {"ConnectTimeoutNegative", [] { return base().timeouts(-5ms, 1000ms); }, "connect_timeout"},
        {"WriteTimeoutZero", [] { return base().timeouts(1000ms, 0ms); }, "write_timeout"},
        {"ReconnectInitialZero",
         [] {
             return base().auto_reconnect(ReconnectPolicy{0ms, 1000ms, 2.0, 0.2});
         },
         "reconnect.initial"},
        {"ReconnectMaxBelowInitial",
         [] {
             return base().auto_reconnect(ReconnectPolicy{1000ms, 999ms, 2.0, 0.2});
         },
         "reconnect.max"},
        {"ReconnectMultiplierBelowOne",
         [] {
             return base().auto_reconnect(ReconnectPolicy{1000ms, 2000ms, 0.5, 0.2});
         },
         "reconnect.multiplier"},
        {"ReconnectMultiplierNaN",
         [] {
             return base().auto_reconnect(ReconnectPolicy{1000ms, 2000ms, not_a_number, 0.2});
         },
         "reconnect.multiplier"},
        {"ReconnectJitterOne",
         [] {
             return base().auto_reconnect(ReconnectPolicy{1000ms, 2000ms, 2.0, 1.0});
         },
         "reconnect.jitter"},
        {"ReconnectJitterNegative",
         [] {
             return base().auto_reconnect(ReconnectPolicy{1000ms, 2000ms, 2.0, -0.1});
         },
         "reconnect.jitter"},
        {"ReconnectJitterNaN",
         [] {
             return base().auto_reconnect(ReconnectPolicy{1000ms, 2000ms, 2.0, not_a_number});
         },
         "reconnect.jitter"},
        {"TlsCaMissing", [] { return base().tls(missing_file()); }, "tls.ca_file"},
        {"TlsCaNotPem", [] { return base().tls(pki().not_pem); }, "tls.ca_file"},
        {"TlsCertNotPem", [] { return base().tls(pki().ca_cert, pki().not_pem, pki().client_key); },
         "tls.cert_file"},
        {"TlsKeyNotPem", [] { return base().tls(pki().ca_cert, pki().client_cert, pki().not_pem); },
         "tls.key_file"},
        {"TlsKeyOfAnotherCertificate",
         [] { return base().tls(pki().ca_cert, pki().client_cert, pki().other_key); },
         "tls.key_file"},
        {"TlsEncryptedKeyWithoutPassword",
         [] { return base().tls(pki().ca_cert, pki().client_cert, pki().client_key_encrypted); },
         "tls.key_file"},
        {"TlsEncryptedKeyWrongPassword",
         [] {
             return base().tls(TlsConfig{.ca_file = pki().ca_cert,
                                         .cert_file = pki().client_cert,
                                         .key_file = pki().client_key_encrypted,
                                         .key_password = "wrong"});
         },
         "tls.key_file"},
        {"TlsPasswordWithoutKey",
         [] { return base().tls(TlsConfig{.ca_file = pki().ca_cert, .key_password = "p"}); },
         "tls.key_password"},
        {"TlsCaPathMissing", [] { return base().tls(TlsConfig{.ca_path = missing_file()}); },
         "tls.ca_path"},
        {"TlsCaPathWithoutCertificates",
         [] { return base().tls(TlsConfig{.ca_path = pki().junk_dir}); }, "tls.ca_path"},
        {"TlsCaFileAndCaPath",
         [] { return base().tls(TlsConfig{.ca_file = pki().ca_cert, .ca_path = pki().ca_dir}); },
         "tls.ca_path"},
        {"TlsUnknownCiphers", [] { return base().tls(TlsConfig{.ciphers = "NO-SUCH-CIPHER"}); },
         "tls.ciphers"},
        {"TlsSecurityLevelZero",
         [] { return base().tls(TlsConfig{.ciphers = "DEFAULT:@SECLEVEL=0"}); }, "tls.ciphers"},
        {"TlsMinimumVersion13",
         [] { return base().tls(TlsConfig{.min_version = TlsVersion::v1_3}); }, "tls.min_version"},
        {"TlsEmptyAlpn",
         [] {
             return base().tls(TlsConfig{.alpn = {"mqtt", ""}});
         },
         "tls.alpn"},
        {"TlsCertMissing",
         [] { return base().tls(pki().ca_cert, missing_file(), pki().client_key); },
         "tls.cert_file"},
        {"TlsKeyMissing",
         [] { return base().tls(pki().ca_cert, pki().client_cert, missing_file()); },
         "tls.key_file"},
        {"TlsCertWithoutKey", [] { return base().tls(pki().ca_cert, pki().client_cert, ""); },
         "tls.key_file"},
        {"TlsKeyWithoutCert", [] { return base().tls(pki().ca_cert, "", pki().client_key); },
         "tls.cert_file"},
        {"BufferKbZero", [] { return base().performance(0, 100); }, "performance.buffer_kb"},
        {"BufferKbTooLarge", [] { return base().performance(256 * 1024 + 1, 100); },
         "performance.buffer_kb"},
        {"MaxPendingZero", [] { return base().performance(1024, 0); }, "performance.max_pending"},
        {"MaxPendingNegative", [] { return base().performance(1024, -1); },
         "performance.max_pending"},
        {"MaxInflightZero", [] { return base().performance(inflight(0)); },
         "performance.max_inflight"},
        {"MaxInflightTooLarge", [] { return base().performance(inflight(65536)); },
         "performance.max_inflight"},
        {"ClientIdControlCharacter", [] { return base().client_id("a\nb"); }, "client_id"},
        {"StorageWithoutPersistent", [] { return base().memory_storage(); }, "storage"},
        {"RestoreWithoutPersistent",
         [] { return base().restore_subscriptions([](const mqttx::Message&) {}); },
         "restored_handler"},
        {"FileStorageWithoutDirectory",
         [] { return base().client_id("c").persistent().file_storage(""); }, "storage.directory"},
        {"WillTopicWildcard", [] { return base().will("a/+/c", "bye"); }, "will.topic"},
        {"WillTopicHash", [] { return base().will("a/#", "bye"); }, "will.topic"},
        {"WillTopicEmpty", [] { return base().will("", "bye"); }, "will.topic"},
        {"WillQos3", [] { return base().will("a/b", "bye", 3); }, "will.qos"},
        {"WillQosNegative", [] { return base().will("a/b", "bye", -1); }, "will.qos"},
        {"SubscriptionFilterInvalid", [] { return base().subscribe("a/#/b", 0, noop); },
         "subscriptions[0].filter"},
        {"SubscriptionFilterEmpty", [] { return base().subscribe("", 0, noop); },
         "subscriptions[0].filter"},
        {"SubscriptionFilterSharedMalformed", [] { return base().subscribe("$share/g", 0, noop); },
         "subscriptions[0].filter"},
        {"SubscriptionQos3", [] { return base().subscribe("a/b", 3, noop); },
         "subscriptions[0].qos"},
        {"SubscriptionHandlerEmpty", [] { return base().subscribe("a/b", 1, nullptr); },
         "subscriptions[0].handler"},
        {"SecondSubscriptionBad",
         [] { return base().subscribe("a/b", 1, noop).subscribe("a+", 1, noop); },
         "subscriptions[1].filter"},
        {"MessageChannelSizeZero", [] { return base().message_channel_size(0); },
         "message_channel_size"},
        {"PasswordWithoutUser", [] { return base().auth("", "s3cr3t"); }, "credentials"},
        {"PersistentWithCleanSession",
         [] { return base().client_id("c").persistent().clean_session(true); }, "clean_session"},
    };
}

// Keeps gtest from dumping the struct's bytes in failure messages.
void PrintTo(const BadInput& input, std::ostream* os) {
    *os << input.label << " -> " << input.field;
}

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputTest, IsRefusedNamingTheField) {
    const BadInput& input = GetParam();
    const auto error = build_error(input.make());
    ASSERT_TRUE(error.has_value()) << "build() accepted " << input.label;
    EXPECT_EQ(error->kind(), ErrorKind::configuration);
    EXPECT_EQ(error->code(), make_error_code(ErrorKind::configuration));
    // Exactly the one problem: a single bad input must not cause unrelated complaints.
    EXPECT_EQ(context_keys(*error), std::vector<std::string>{input.field}) << describe(*error);
    EXPECT_NE(std::string(error->what()).find(input.field), std::string::npos) << describe(*error);
    for (const auto& [key, value] : error->context()) EXPECT_FALSE(value.empty()) << key;
}

INSTANTIATE_TEST_SUITE_P(SessionBuilder, BadInputTest, ::testing::ValuesIn(bad_inputs()),
                         [](const ::testing::TestParamInfo<BadInput>& info) {
                             return info.param.label;
                         });

TEST(SessionBuilder, RedisStorageNeedsAnAddressAndSaneSettings) {
    EXPECT_FALSE(build_error(base().client_id("c").persistent().redis_storage("localhost:6379"))
                     .has_value());
    const auto error =
        build_error(base().client_id("c").persistent().redis_storage("").redis_auth("u", "p", -1));
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(context_keys(*error),
              (std::vector<std::string>{"storage.redis_address", "storage.redis_db"}))
        << describe(*error);
}

TEST(SessionBuilder, ErrorNamesTheSession) {
    const auto error = build_error(SessionBuilder("my-session"));
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->session(), "my-session");
    EXPECT_NE(std::string(error->what()).find("my-session"), std::string::npos);
}

TEST(SessionBuilder, PasswordNeverAppearsInTheError) {
    const auto error = build_error(base().auth("", "s3cr3t-pw"));
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(std::string(error->what()).find("s3cr3t-pw"), std::string::npos) << error->what();
    for (const auto& [key, value] : error->context()) {
        EXPECT_EQ(value.find("s3cr3t-pw"), std::string::npos) << key;
    }
}

TEST(SessionBuilder, BrokerProblemQuotesTheAddress) {
    const auto error = build_error(quick_connect("s", "http://example.org"));
    ASSERT_TRUE(error.has_value());
    ASSERT_EQ(error->context().size(), 1u);
    EXPECT_NE(error->context()[0].second.find("http://example.org"), std::string::npos);
    EXPECT_NE(error->context()[0].second.find("http"), std::string::npos);
}

TEST(SessionBuilder, ValidateOnPlainOptionsWorksLikeBuild) {
    Options options;
    EXPECT_THROW(validate(options), Error);  // no name, no broker
    options.name = "s";
    options.brokers = {"tcp://h:1883"};
    EXPECT_NO_THROW(validate(options));
    options.subscriptions.push_back({"a/+", 1, noop});
    EXPECT_NO_THROW(validate(options));
    options.subscriptions.push_back({"a/+", 1, nullptr});
    try {
        validate(options);
        ADD_FAILURE() << "validate accepted an empty handler";
    } catch (const Error& e) {
        EXPECT_EQ(context_keys(e), std::vector<std::string>{"subscriptions[1].handler"});
    }
}

// ---------------------------------------------------------------------------------------------
// Several problems at once: all reported in one Error.

TEST(SessionBuilder, EveryProblemIsReportedInOneError) {
    const auto builder = SessionBuilder("multi")
                             .keep_alive(-1s)
                             .timeouts(0ms, 1000ms)
                             .message_channel_size(0)
                             .will("a/#", "bye", 5)
                             .subscribe("", 3, nullptr)
                             .auth("", "pw")
                             .performance(0, 0);
    const auto error = build_error(builder);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), ErrorKind::configuration);

    const std::set<std::string> expected = {
        "brokers",
        "keep_alive",
        "connect_timeout",
        "message_channel_size",
        "will.topic",
        "will.qos",
        "subscriptions[0].filter",
        "subscriptions[0].qos",
        "subscriptions[0].handler",
        "credentials",
        "performance.buffer_kb",
        "performance.max_pending",
    };
    const auto keys = context_keys(*error);
    EXPECT_EQ(keys.size(), expected.size()) << describe(*error);
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), expected) << describe(*error);
    const std::string what = error->what();
    for (const auto& field : expected) {
        EXPECT_NE(what.find(field + ":"), std::string::npos) << field << " missing in: " << what;
    }
    // Once each: the message lists them, what() does not repeat them as context.
    for (const auto& field : expected) {
        EXPECT_EQ(what.find(field + "="), std::string::npos) << field << " twice in: " << what;
    }
}

TEST(SessionBuilder, BadBrokersAreEachReported) {
    const auto error =
        build_error(SessionBuilder("s").brokers({"http://a", "tcp://ok:1883", "tcp://b:0", "c:x"}));
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(context_keys(*error),
              (std::vector<std::string>{"brokers[0]", "brokers[2]", "brokers[3]"}))
        << describe(*error);
}

TEST(SessionBuilder, PersistentWithoutClientIdAndWithCleanSessionReportsBoth) {
    const auto error = build_error(base().persistent().clean_session(true));
    ASSERT_TRUE(error.has_value());
    const auto keys = context_keys(*error);
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()),
              (std::set<std::string>{"client_id", "clean_session"}))
        << describe(*error);
}

TEST(SessionBuilder, ErrorIsCatchableAsSystemError) {
    try {
        (void)SessionBuilder("s").build();
        ADD_FAILURE() << "no throw";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), make_error_code(ErrorKind::configuration));
    }
}

// ---------------------------------------------------------------------------------------------
// Fluent setters land in options().

TEST(SessionBuilder, SettersRecordTheirValues) {
    auto handler_calls = std::make_shared<int>(0);
    auto logger = std::shared_ptr<spdlog::logger>();  // empty is fine: only the pointer is kept
    SessionBuilder builder("name");
    builder.broker("tcp://a:1")
        .broker("tcp://b:2")
        .client_id("cid")
        .auth("user", "pass")
        .protocol(Protocol::v5)
        .keep_alive(45s)
        .clean_session(false)
        .timeouts(1500ms, 2500ms)
        .message_channel_size(77)
        .performance(512, 33)
        .will("will/topic", "gone", 1, true)
        .subscribe("x/+", 2, [handler_calls](const Message&) { ++*handler_calls; })
        .logger(logger);
    const Options& o = builder.options();
    EXPECT_EQ(o.name, "name");
    EXPECT_EQ(o.brokers, (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
    EXPECT_EQ(o.client_id, "cid");
    ASSERT_TRUE(o.credentials.has_value());
    EXPECT_EQ(o.credentials->username, "user");
    EXPECT_EQ(o.credentials->password, "pass");
    EXPECT_EQ(o.protocol, Protocol::v5);
    EXPECT_EQ(o.keep_alive, 45s);
    EXPECT_FALSE(o.clean_session);
    EXPECT_EQ(o.connect_timeout, 1500ms);
    EXPECT_EQ(o.write_timeout, 2500ms);
    EXPECT_EQ(o.message_channel_size, 77u);
    EXPECT_EQ(o.performance.buffer_kb, 512u);
    EXPECT_EQ(o.performance.max_pending, 33);
    EXPECT_EQ(o.performance.max_inflight, PerformanceOptions{}.max_inflight);  // untouched
    ASSERT_TRUE(o.will.has_value());
    EXPECT_EQ(o.will->topic, "will/topic");
    EXPECT_EQ(o.will->payload, "gone");
    EXPECT_EQ(o.will->qos, 1);
    EXPECT_TRUE(o.will->retained);
    ASSERT_EQ(o.subscriptions.size(), 1u);
    EXPECT_EQ(o.subscriptions[0].filter, "x/+");
    EXPECT_EQ(o.subscriptions[0].qos, 2);
    ASSERT_TRUE(o.subscriptions[0].handler);
    o.subscriptions[0].handler(Message{});
    EXPECT_EQ(*handler_calls, 1);
    EXPECT_EQ(o.logger, logger);
    EXPECT_NO_THROW((void)builder.build());
}

TEST(SessionBuilder, BrokersReplacesTheList) {
    SessionBuilder builder("s");
    builder.broker("tcp://a:1").brokers({"tcp://b:2", "tcp://c:3"});
    EXPECT_EQ(builder.options().brokers, (std::vector<std::string>{"tcp://b:2", "tcp://c:3"}));
    builder.broker("tcp://d:4");
    EXPECT_EQ(builder.options().brokers.back(), "tcp://d:4");
    EXPECT_EQ(builder.options().brokers.size(), 3u);
}

TEST(SessionBuilder, ReconnectSetters) {
    SessionBuilder builder("s");
    const auto p = ReconnectPolicy{250ms, 9000ms, 1.5, 0.1};
    builder.auto_reconnect(p);
    EXPECT_EQ(builder.options().reconnect.initial, 250ms);
    EXPECT_EQ(builder.options().reconnect.max, 9000ms);
    EXPECT_DOUBLE_EQ(builder.options().reconnect.multiplier, 1.5);
    EXPECT_DOUBLE_EQ(builder.options().reconnect.jitter, 0.1);
    EXPECT_TRUE(builder.options().reconnect.enabled);
    builder.no_reconnect();
    EXPECT_FALSE(builder.options().reconnect.enabled);
    EXPECT_EQ(builder.options().reconnect.initial, 250ms);  // the rest is kept
    builder.auto_reconnect();
    EXPECT_TRUE(builder.options().reconnect.enabled);
    EXPECT_EQ(builder.options().reconnect.initial, ReconnectPolicy{}.initial);
}

TEST(SessionBuilder, TlsSetters) {
    SessionBuilder builder("s");
    builder.tls("ca.pem", "cert.pem", "key.pem", true);
    ASSERT_TRUE(builder.options().tls.has_value());
    EXPECT_EQ(builder.options().tls->ca_file, "ca.pem");
    EXPECT_EQ(builder.options().tls->cert_file, "cert.pem");
    EXPECT_EQ(builder.options().tls->key_file, "key.pem");
    EXPECT_TRUE(builder.options().tls->skip_verify);

    TlsConfig config;
    config.ca_file = "other.pem";
    config.key_password = "kp";
    config.ciphers = "HIGH";
    builder.tls(config);
    EXPECT_EQ(builder.options().tls->ca_file, "other.pem");
    EXPECT_TRUE(builder.options().tls->cert_file.empty());
    EXPECT_EQ(builder.options().tls->key_password, "kp");
    EXPECT_EQ(builder.options().tls->ciphers, "HIGH");
    EXPECT_FALSE(builder.options().tls->skip_verify);
}

TEST(SessionBuilder, PerformanceStructSetter) {
    PerformanceOptions performance;
    performance.buffer_kb = 8;
    performance.max_pending = 9;
    performance.max_inflight = 10;
    performance.overflow = BufferOverflow::drop_oldest;
    SessionBuilder builder("s");
    builder.performance(performance);
    EXPECT_EQ(builder.options().performance.buffer_kb, 8u);
    EXPECT_EQ(builder.options().performance.max_pending, 9);
    EXPECT_EQ(builder.options().performance.max_inflight, 10);
    EXPECT_EQ(builder.options().performance.overflow, BufferOverflow::drop_oldest);
}

TEST(SessionBuilder, PersistentAndStorageSetters) {
    SessionBuilder builder("s");
    builder.persistent();
    EXPECT_TRUE(builder.options().persistent);
    EXPECT_FALSE(builder.options().clean_session);
    EXPECT_FALSE(builder.options().storage.has_value());

    builder.memory_storage();
    ASSERT_TRUE(builder.options().storage.has_value());
    EXPECT_EQ(builder.options().storage->type, StorageType::memory);

    builder.file_storage("/var/lib/mqttx");
    EXPECT_EQ(builder.options().storage->type, StorageType::file);
    EXPECT_EQ(builder.options().storage->directory, "/var/lib/mqttx");

    builder.redis_storage("redis:6379").redis_auth("ru", "rp", 3);
    EXPECT_EQ(builder.options().storage->type, StorageType::redis);
    EXPECT_EQ(builder.options().storage->redis_address, "redis:6379");
    EXPECT_EQ(builder.options().storage->redis_user, "ru");
    EXPECT_EQ(builder.options().storage->redis_password, "rp");
    EXPECT_EQ(builder.options().storage->redis_db, 3);
}

TEST(SessionBuilder, QuickAndSecureConnectFillInOptions) {
    const auto quick = quick_connect("q", "tcp://h:1");
    EXPECT_EQ(quick.options().name, "q");
    EXPECT_EQ(quick.options().brokers, std::vector<std::string>{"tcp://h:1"});
    EXPECT_FALSE(quick.options().tls.has_value());

    const auto secure = secure_connect("t", "h:8883", "/etc/ssl/ca.pem");
    EXPECT_EQ(secure.options().name, "t");
    EXPECT_EQ(secure.options().brokers, std::vector<std::string>{"h:8883"});
    ASSERT_TRUE(secure.options().tls.has_value());
    EXPECT_EQ(secure.options().tls->ca_file, "/etc/ssl/ca.pem");
    EXPECT_FALSE(secure.options().tls->skip_verify);
}

// std::ifstream opens a directory on Linux: validate() must not take one for a file.
TEST(SessionBuilder, CaFileThatIsADirectoryIsRefused) {
    const auto error = build_error(base().tls(fs::temp_directory_path().string()));
    ASSERT_TRUE(error.has_value()) << "a directory was accepted as tls.ca_file";
    EXPECT_EQ(context_keys(*error), std::vector<std::string>{"tls.ca_file"});
}

TEST(SessionBuilder, BrokerAddressWithAPasswordIsRefusedWithoutRepeatingIt) {
    const auto error = build_error(SessionBuilder("s").broker("tcp://user:s3cret@h:1883"));
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(std::string(error->what()).find("s3cret"), std::string::npos) << error->what();
}

TEST(SessionBuilder, SubscriptionOptionsAreChecked) {
    SubscribeOptions no_local;
    no_local.no_local = true;
    auto ignore = [](const Message&) {};
    auto error = build_error(base().subscribe("a/#", 1, ignore, no_local));
    ASSERT_TRUE(error.has_value()) << "no_local accepted on an MQTT 3.1.1 session";
    EXPECT_EQ(context_keys(*error), std::vector<std::string>{"subscriptions[0].options"});
    EXPECT_FALSE(build_error(base().protocol(Protocol::v5).subscribe("a/#", 1, ignore, no_local)));

    SubscribeOptions bad_group;
    bad_group.share_group = "g/+";
    error = build_error(base().subscribe("a/#", 1, ignore, bad_group));
    ASSERT_TRUE(error.has_value()) << "a share group with a wildcard was accepted";
    EXPECT_EQ(context_keys(*error), std::vector<std::string>{"subscriptions[0].filter"});
}

}  // namespace
}  // namespace mqttx
