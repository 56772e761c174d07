// The public config structs are aggregates whose every member has a default member
// initialiser: a designated initialiser names only what it sets, compiles without
// -Wmissing-field-initializers (this file turns that warning into an error), and
// leaves the rest at the documented defaults.
#include <gtest/gtest.h>
#include <mqttx/metrics_server.hpp>
#include <mqttx/mqttx.hpp>

namespace {

using namespace std::chrono_literals;

TEST(ConfigStructs, DesignatedInitialisersKeepTheOtherDefaults) {
    const auto options = mqttx::Options{.name = "n"};
    EXPECT_EQ(options.name, "n");
    EXPECT_TRUE(options.brokers.empty());
    EXPECT_EQ(options.keep_alive, 30s);
    EXPECT_TRUE(options.clean_session);
    EXPECT_FALSE(options.tls.has_value());
    EXPECT_EQ(options.performance.max_inflight, 20);

    EXPECT_FALSE(mqttx::ReconnectPolicy{.enabled = false}.enabled);
    EXPECT_EQ(mqttx::TlsConfig{.skip_verify = true}.min_version, mqttx::TlsVersion::v1_2);
    EXPECT_EQ(mqttx::PerformanceOptions{.max_inflight = 5}.max_pending, 10000);
    EXPECT_EQ(mqttx::StorageOptions{.file_sync = false}.redis_prefix, "mqttx:");
    EXPECT_TRUE(mqttx::Credentials{.username = "u"}.password.empty());
    EXPECT_EQ(mqttx::Will{.topic = "t"}.qos, 0);
    EXPECT_FALSE(mqttx::SubscriptionSpec{.filter = "f"}.handler);
    EXPECT_EQ(mqttx::ManagerOptions{.inline_handlers = true}.dispatcher_threads, 2u);
    EXPECT_EQ(mqttx::ChannelOptions{.capacity = 5}.overflow, mqttx::Overflow::drop_oldest);
    EXPECT_EQ(mqttx::SubscribeOptions{.no_local = true}.handler_thread,
              mqttx::HandlerThread::dispatcher);
    EXPECT_FALSE(mqttx::PublishProperties{.content_type = "x"}.message_expiry.has_value());
    EXPECT_TRUE(mqttx::ForwarderSource{.session = "s"}.filters.empty());
    EXPECT_TRUE(mqttx::TopicMapping{.from = "a"}.to.empty());
    EXPECT_EQ(mqttx::ForwarderConfig{.name = "f"}.max_hops, 8);
    EXPECT_EQ(mqttx::MetricsServerOptions{.port = 1}.port, 1);
}

}  // namespace
