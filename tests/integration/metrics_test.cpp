// Metrics against real mosquitto: counters exact after known traffic, the whole
// prometheus_text() checked by promtool, and the /metrics endpoint scraped over loopback.
#include <gtest/gtest.h>
#include <httplib.h>
#include <mqttx/metrics_server.hpp>
#include <mqttx/mqttx.hpp>

#include <stdexcept>

#include "support/collector.hpp"
#include "support/error_kind.hpp"
#include "support/mosquitto.hpp"
#include "support/promtool.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::test::Collector;
using mqttx::test::promtool_check;

class MetricsTest : public ::testing::Test {
  protected:
    std::shared_ptr<mqttx::Session> add(const std::string& name) {
        return manager.add_session(mqttx::quick_connect(name, broker.uri()).build());
    }
    void connect_all() {
        manager.connect_all();
        manager.wait_for_all_sessions(20s);
    }

    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager;
};

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
}

TEST_F(MetricsTest, CountersAreExactAfterKnownTraffic) {
    auto publisher = add("pub");
    auto subscriber = add("sub");
    Collector inbox;
    auto route = subscriber->subscribe("m/#", 1, inbox.handler());
    std::atomic<int> calls{0};
    auto failing = subscriber->subscribe("m/fail", 0, [&](const mqttx::Message&) {
        ++calls;
        throw std::runtime_error("handler failure on purpose");
    });
    connect_all();

    std::vector<mqttx::DeliveryToken> tokens;
    for (int i = 0; i < 50; ++i)
        tokens.push_back(publisher->publish("m/q1", std::string(100, 'a'), 1));
    for (int i = 0; i < 20; ++i)
        tokens.push_back(publisher->publish("m/q0", std::string(10, 'b'), 0));
    tokens.push_back(publisher->publish("m/fail", "xyz", 1));
    for (auto& token : tokens) ASSERT_TRUE(token.wait_for(20s));
    ASSERT_TRUE(inbox.wait_for(71, 20s));
    ASSERT_TRUE(mqttx::test::wait_until([&] { return calls.load() == 1; }, 20s));
    ASSERT_TRUE(mqttx::test::wait_until([&] { return subscriber->metrics().errors == 1; }, 20s));

    const auto p = publisher->metrics();
    EXPECT_EQ(p.messages_sent, 71u);
    EXPECT_EQ(p.bytes_sent, 50u * 100 + 20 * 10 + 3);
    EXPECT_EQ(p.messages_received, 0u);
    EXPECT_EQ(p.publish_latency.count, 51u) << "QoS 1 publishes only";
    EXPECT_EQ(p.publish_latency.buckets.back(), 51u) << "every QoS 1 ack within 2.5 s";
    EXPECT_GT(p.publish_latency.sum_seconds, 0.0);
    EXPECT_EQ(p.in_flight, 0u);
    EXPECT_EQ(p.outbox_waiting, 0u);
    EXPECT_TRUE(p.connected);
    EXPECT_EQ(p.state, mqttx::SessionState::connected);
    EXPECT_GT(p.message_rate, 0.0);
    EXPECT_GT(p.average_message_rate, 0.0);
    EXPECT_NE(p.last_message, std::chrono::system_clock::time_point{});

    const auto s = subscriber->metrics();
    EXPECT_EQ(s.messages_received, 71u);
    EXPECT_EQ(s.bytes_received, 50u * 100 + 20 * 10 + 3);
    EXPECT_EQ(s.messages_sent, 0u);
    EXPECT_EQ(s.errors, 1u);
    EXPECT_NE(s.last_error, std::chrono::system_clock::time_point{});
    EXPECT_EQ(s.active_subscriptions, 2u);
    EXPECT_EQ(s.unrouted, 0u);
    EXPECT_GT(s.bytes_rate, 0.0);

    const auto routes = subscriber->route_metrics();
    ASSERT_EQ(routes.size(), 2u);
    EXPECT_EQ(routes.at("m/#").received, 71u);
    EXPECT_EQ(routes.at("m/#").bytes, 50u * 100 + 20 * 10 + 3);
    EXPECT_EQ(routes.at("m/fail").received, 1u);
    EXPECT_EQ(routes.at("m/fail").errors, 1u);

    const auto m = manager.metrics();
    EXPECT_EQ(m.sessions, 2u);
    EXPECT_EQ(m.sessions_connected, 2u);
    EXPECT_EQ(m.messages_sent, 71u);
    EXPECT_EQ(m.messages_received, 71u);
    EXPECT_EQ(m.bytes_sent, p.bytes_sent);
    EXPECT_EQ(m.bytes_received, s.bytes_received);
    EXPECT_EQ(m.errors, 1u);
    EXPECT_EQ(m.active_subscriptions, 2u);

    // Totals are counters: removing a session does not take its counts away.
    auto extra = add("extra");
    manager.connect("extra");
    manager.wait_for_session("extra", 20s);
    ASSERT_TRUE(extra->publish("elsewhere", "12345", 1).wait_for(20s));
    manager.remove_session("extra");
    EXPECT_EQ(manager.metrics().messages_sent, 72u);
    EXPECT_EQ(manager.metrics().bytes_sent, p.bytes_sent + 5);
    EXPECT_EQ(manager.metrics().sessions, 2u);

    // Reset: counters from zero again, gauges unchanged.
    manager.reset_metrics();
    EXPECT_EQ(publisher->metrics().messages_sent, 0u);
    EXPECT_EQ(publisher->metrics().publish_latency.count, 0u);
    EXPECT_EQ(subscriber->metrics().errors, 0u);
    EXPECT_EQ(subscriber->metrics().active_subscriptions, 2u);
    ASSERT_TRUE(publisher->publish("m/q1", "again", 1).wait_for(20s));
    ASSERT_TRUE(inbox.wait_for(72, 20s));
    EXPECT_EQ(publisher->metrics().messages_sent, 1u);
    EXPECT_EQ(publisher->metrics().bytes_sent, 5u);
    ASSERT_TRUE(
        mqttx::test::wait_until([&] { return subscriber->metrics().messages_received == 1; }, 20s));
}

TEST_F(MetricsTest, ReconnectsAndStatesAreCounted) {
    auto session = add("flappy");
    connect_all();
    broker.stop();
    ASSERT_TRUE(mqttx::test::wait_until([&] { return !session->is_connected(); }, 20s));
    EXPECT_NE(session->metrics().state, mqttx::SessionState::connected);
    EXPECT_EQ(manager.metrics().sessions_connected, 0u);
    const auto text = manager.prometheus_text();
    EXPECT_TRUE(has_line(text, "mqtt_session_connected{session=\"flappy\"} 0")) << text;
    broker.start();
    manager.wait_for_session("flappy", 20s);
    EXPECT_EQ(session->metrics().reconnects, 1u);
    EXPECT_TRUE(
        has_line(manager.prometheus_text(), "mqtt_session_reconnects_total{session=\"flappy\"} 1"));
}

TEST_F(MetricsTest, TheWholeManagerTextPassesPromtool) {
    const auto dir = mqttx::test::make_temp_dir("mqttx-metrics-");
    auto plain = add("plain");
    auto odd = add("odd \"name\" with \\ and\nnewline");
    auto stored = manager.add_session(mqttx::quick_connect("stored", broker.uri())
                                          .client_id("metrics-stored")
                                          .persistent()
                                          .file_storage(dir)
                                          .build());
    auto target = add("target");
    Collector inbox;
    auto route = odd->subscribe("in/#", 1, inbox.handler());
    auto listener = manager.listen("in/+", 1);
    connect_all();
    manager.forwarders().add(mqttx::ForwarderBuilder("copy")
                                 .source("plain", {"in/#"})
                                 .target("target")
                                 .map_topic("in/#", "out/{#}")
                                 .build());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(stored->publish("in/x", "payload", 1).wait_for(20s));
    ASSERT_TRUE(inbox.wait_for(10, 20s));
    ASSERT_TRUE(mqttx::test::wait_until(
        [&] { return manager.forwarders().get("copy").metrics().acknowledged == 10; }, 20s));

    const auto text = manager.prometheus_text();
    const auto [status, output] = promtool_check(text);
    EXPECT_EQ(status, 0) << output << "\n" << text;
    EXPECT_EQ(output, "") << text;

    EXPECT_TRUE(has_line(text, "mqtt_manager_sessions{state=\"connected\"} 4"));
    EXPECT_TRUE(has_line(text, "mqtt_session_messages_sent_total{session=\"stored\"} 10"));
    EXPECT_TRUE(has_line(text,
                         "mqtt_session_messages_received_total{session=\"odd \\\"name\\\" with "
                         "\\\\ and\\nnewline\"} 10"))
        << text;
    EXPECT_TRUE(has_line(text, "mqtt_forwarder_acknowledged_total{forwarder=\"copy\"} 10"));
    EXPECT_TRUE(has_line(text, "mqtt_route_messages_total{session=\"plain\",filter=\"in/+\"} 10"));
    EXPECT_TRUE(
        has_line(text, "mqtt_session_publish_latency_seconds_count{session=\"stored\"} 10"));
    EXPECT_NE(
        text.find("mqtt_session_storage_operations_total{session=\"stored\",operation=\"put\"}"),
        std::string::npos);
    // Each token completed only once a group commit made its message durable.
    const auto synced = text.find("mqtt_session_storage_synced_records_total{session=\"stored\"} ");
    ASSERT_NE(synced, std::string::npos) << text;
    EXPECT_GE(std::stod(text.substr(text.find('}', synced) + 2)), 10.0) << text;
    EXPECT_TRUE(has_line(text, "mqtt_session_storage_segments{session=\"stored\"} 1")) << text;
    // Every family once, with its help and type.
    EXPECT_EQ(text.find("# TYPE mqtt_session_messages_sent_total counter"),
              text.rfind("# TYPE mqtt_session_messages_sent_total counter"));
    EXPECT_EQ(text.find("in/x"), std::string::npos) << "topic names must not be labels";

    // One session's text: its own lines only.
    const auto one = stored->prometheus_metrics();
    EXPECT_EQ(promtool_check(one).first, 0) << one;
    EXPECT_TRUE(has_line(one, "mqtt_session_messages_sent_total{session=\"stored\"} 10"));
    EXPECT_EQ(one.find("session=\"plain\""), std::string::npos);
    mqttx::test::remove_tree(dir);
}

TEST_F(MetricsTest, MetricsServerServesMetricsHealthAndReadinessOverLoopback) {
    auto session = add("served");
    int checks = 0;
    mqttx::MetricsServer server(
        manager,
        {.port = 0,
         .extra_metrics =
             [] {
                 return std::string(
                     "# HELP app_up 1 when the app is up.\n# TYPE app_up gauge\napp_up 1\n");
             },
         .not_ready =
             [&checks] {
                 return ++checks == 1 ? std::vector<std::string>{"app: warming up"}
                                      : std::vector<std::string>{};
             }});
    ASSERT_GT(server.port(), 0);
    httplib::Client client("127.0.0.1", server.port());
    client.set_connection_timeout(10);
    client.set_read_timeout(10);

    auto health = client.Get("/healthz");
    ASSERT_TRUE(health) << httplib::to_string(health.error());
    EXPECT_EQ(health->status, 200) << "alive, even before any session is connected";
    EXPECT_EQ(health->body, "ok\n");
    auto ready = client.Get("/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 503) << "not connected yet";
    EXPECT_EQ(ready->body, "session served: disconnected\napp: warming up\n");

    connect_all();
    ASSERT_TRUE(session->publish("x", "1234", 0).wait_for(20s));
    auto metrics = client.Get("/metrics");
    ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
    EXPECT_EQ(metrics->status, 200);
    EXPECT_EQ(metrics->get_header_value("Content-Type"),
              "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_TRUE(has_line(metrics->body, "mqtt_session_bytes_sent_total{session=\"served\"} 4"))
        << metrics->body;
    EXPECT_TRUE(has_line(metrics->body, "app_up 1")) << "the program's own families follow";
    EXPECT_EQ(promtool_check(metrics->body).first, 0);

    ready = client.Get("/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200) << ready->body;
    EXPECT_EQ(ready->body, "ready\n");
    EXPECT_EQ(client.Get("/other")->status, 404);

    server.stop();
    EXPECT_FALSE(client.Get("/metrics")) << "stopped servers do not answer";
}

TEST_F(MetricsTest, MetricsServerRefusesBadOptionsAndABusyPort) {
    EXPECT_EQ(mqttx::test::error_kind_of([&] { mqttx::MetricsServer(manager, {.port = 70000}); }),
              ErrorKind::configuration);
    EXPECT_EQ(mqttx::test::error_kind_of(
                  [&] { mqttx::MetricsServer(manager, {.port = 0, .metrics_path = "metrics"}); }),
              ErrorKind::configuration);
    // Routes are regular expressions inside cpp-httplib: only plain paths are taken.
    EXPECT_EQ(mqttx::test::error_kind_of(
                  [&] { mqttx::MetricsServer(manager, {.port = 0, .metrics_path = "/m(etrics"}); }),
              ErrorKind::configuration);
    mqttx::MetricsServer first(manager, {.port = 0});
    EXPECT_EQ(
        mqttx::test::error_kind_of([&] { mqttx::MetricsServer(manager, {.port = first.port()}); }),
        ErrorKind::connection);
}

}  // namespace
