// PrometheusExporter and the library's families: the exact text, escaping, refusals,
// and output that does not depend on the locale.
#include <gtest/gtest.h>
#include <mqttx/error.hpp>
#include <mqttx/prometheus.hpp>

#include <clocale>
#include <locale>

#include "prometheus_text.hpp"
#include "rate_window.hpp"
#include "support/error_kind.hpp"

namespace {

using mqttx::ErrorKind;
using mqttx::MetricType;
using mqttx::PrometheusExporter;
using mqttx::test::error_kind_of;

TEST(PrometheusExporter, FamiliesAreGroupedWithHelpAndTypeInDeclarationOrder) {
    PrometheusExporter e("app");
    e.declare("jobs_total", MetricType::counter, "Jobs done.");
    e.declare("queue_depth", MetricType::gauge, "Jobs waiting.");
    e.declare("unused", MetricType::gauge, "Never given a sample.");
    e.add("queue_depth", {{"queue", "a"}}, 3);
    e.add("jobs_total", {{"queue", "a"}}, std::uint64_t{7});
    e.add("queue_depth", {{"queue", "b"}}, 0.25);
    e.add("jobs_total", {{"queue", "b"}, {"kind", "x"}}, 9007199254740993ULL);  // 2^53 + 1
    EXPECT_EQ(e.text(),
              "# HELP app_jobs_total Jobs done.\n"
              "# TYPE app_jobs_total counter\n"
              "app_jobs_total{queue=\"a\"} 7\n"
              "app_jobs_total{queue=\"b\",kind=\"x\"} 9007199254740993\n"
              "# HELP app_queue_depth Jobs waiting.\n"
              "# TYPE app_queue_depth gauge\n"
              "app_queue_depth{queue=\"a\"} 3\n"
              "app_queue_depth{queue=\"b\"} 0.25\n");
}

TEST(PrometheusExporter, HistogramsHaveCumulativeBucketsInfSumAndCount) {
    PrometheusExporter e("");
    e.declare("latency_seconds", MetricType::histogram, "Latency.");
    mqttx::LatencyHistogram h;
    h.buckets = {1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3};
    h.count = 4;
    h.sum_seconds = 3.5;
    e.add("latency_seconds", {{"s", "x"}}, h);
    EXPECT_EQ(e.text(),
              "# HELP latency_seconds Latency.\n"
              "# TYPE latency_seconds histogram\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.0005\"} 1\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.001\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.0025\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.005\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.01\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.025\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.05\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.1\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.25\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"0.5\"} 2\n"
              "latency_seconds_bucket{s=\"x\",le=\"1\"} 3\n"
              "latency_seconds_bucket{s=\"x\",le=\"2.5\"} 3\n"
              "latency_seconds_bucket{s=\"x\",le=\"+Inf\"} 4\n"
              "latency_seconds_sum{s=\"x\"} 3.5\n"
              "latency_seconds_count{s=\"x\"} 4\n");
}

TEST(PrometheusExporter, LabelValuesAndHelpAreEscaped) {
    PrometheusExporter e;
    e.declare("x", MetricType::gauge, "Back\\slash and\nnewline.");
    e.add("x", {{"session", "a \"quoted\" back\\slash\nnew line"}}, 1);
    e.add("x", {{"session", std::string_view("bad \xff byte é", 13)}}, 2);
    EXPECT_EQ(e.text(),
              "# HELP mqtt_x Back\\\\slash and\\nnewline.\n"
              "# TYPE mqtt_x gauge\n"
              "mqtt_x{session=\"a \\\"quoted\\\" back\\\\slash\\nnew line\"} 1\n"
              "mqtt_x{session=\"bad \xEF\xBF\xBD byte é\"} 2\n");
}

TEST(PrometheusExporter, SpecialValues) {
    PrometheusExporter e;
    e.declare("g", MetricType::gauge, "G.");
    e.add("g", {}, std::numeric_limits<double>::quiet_NaN());
    e.add("g", {{"a", "b"}}, std::numeric_limits<double>::infinity());
    e.add("g", {{"a", "c"}}, -std::numeric_limits<double>::infinity());
    e.add("g", {{"a", "d"}}, -2);
    EXPECT_EQ(e.text(),
              "# HELP mqtt_g G.\n# TYPE mqtt_g gauge\nmqtt_g NaN\nmqtt_g{a=\"b\"} +Inf\n"
              "mqtt_g{a=\"c\"} -Inf\nmqtt_g{a=\"d\"} -2\n");
}

TEST(PrometheusExporter, BadNamesAndValuesAreConfigurationErrorsThatChangeNothing) {
    EXPECT_EQ(error_kind_of([] { PrometheusExporter("1abc"); }), ErrorKind::configuration);
    EXPECT_EQ(error_kind_of([] { PrometheusExporter("a-b"); }), ErrorKind::configuration);
    PrometheusExporter e;
    e.declare("ok_total", MetricType::counter, "Ok.");
    e.declare("h", MetricType::histogram, "H.");
    e.add("ok_total", {{"a", "1"}}, 1);
    const auto before = e.text();
    const auto kind = [&](auto f) { return error_kind_of(f); };
    EXPECT_EQ(kind([&] { e.declare("ok_total", MetricType::counter, "Again."); }),
              ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.declare("requests", MetricType::counter, "No _total."); }),
              ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.declare("bad name", MetricType::gauge, "Space."); }),
              ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.add("missing", {}, 1); }), ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.add("h", {}, 1); }), ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.add("ok_total", {}, mqttx::LatencyHistogram{}); }),
              ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.add("ok_total", {{"le", "1"}}, 1); }), ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.add("ok_total", {{"__name", "1"}}, 1); }), ErrorKind::configuration);
    EXPECT_EQ(kind([&] {
                  e.add("ok_total", {{"a", "1"}, {"b-c", "2"}}, 1);
              }),
              ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.add("ok_total", {}, -1); }), ErrorKind::configuration);
    EXPECT_EQ(kind([&] { e.add("ok_total", {}, -0.5); }), ErrorKind::configuration);
    EXPECT_EQ(e.text(), before);
}

// A sample whose every number has a fraction, a large integer or a timestamp, so a
// locale's decimal comma or digit grouping would show.
mqttx::detail::SessionSample busy_session() {
    mqttx::detail::SessionSample s;
    s.name = "plant \"7\"";
    s.metrics.messages_sent = 1234567;
    s.metrics.bytes_sent = 9876543210;
    s.metrics.message_rate = 1234.5;
    s.metrics.bytes_rate = 0.125;
    s.metrics.average_message_rate = 98765.4321;
    s.metrics.state = mqttx::SessionState::connected;
    s.metrics.connected = true;
    s.metrics.last_message =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(1764100000123));
    s.metrics.publish_latency.count = 3;
    s.metrics.publish_latency.sum_seconds = 0.0045;
    s.routes["a/+"] = {1000000, 0, 2000000, 3, {}};
    s.storage = mqttx::StorageMetrics{1, 2, 3, 4, 5};
    return s;
}

std::string render(const mqttx::detail::SessionSample& s) {
    PrometheusExporter e;
    mqttx::detail::declare_session_families(e);
    mqttx::detail::add_session(e, s);
    return e.text();
}

// Decimal comma and digit grouping in the C++ global locale.
struct CommaDecimals : std::numpunct<char> {
    char do_decimal_point() const override { return ','; }
    char do_thousands_sep() const override { return '.'; }
    std::string do_grouping() const override { return "\3"; }
};

TEST(PrometheusText, IdenticalUnderANonCLocale) {
    const auto sample = busy_session();
    const auto classic = render(sample);
    const auto old_global =
        std::locale::global(std::locale(std::locale::classic(), new CommaDecimals));
    // And the C locale, where the system has one with a decimal comma.
    const std::string old_c = std::setlocale(LC_ALL, nullptr);
    for (const char* name : {"de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8"}) {
        if (std::setlocale(LC_ALL, name)) break;
    }
    const auto localised = render(sample);
    std::setlocale(LC_ALL, old_c.c_str());
    std::locale::global(old_global);
    EXPECT_EQ(localised, classic);
    EXPECT_NE(
        classic.find("mqtt_session_messages_per_second{session=\"plant \\\"7\\\"\"} 1234.5\n"),
        std::string::npos)
        << classic;
    EXPECT_NE(
        classic.find("mqtt_session_bytes_sent_total{session=\"plant \\\"7\\\"\"} 9876543210\n"),
        std::string::npos);
    EXPECT_NE(classic.find("mqtt_session_last_message_timestamp_seconds{session=\"plant "
                           "\\\"7\\\"\"} 1764100000.123\n"),
              std::string::npos);
}

TEST(PrometheusText, SessionFamiliesCarryRoutesStorageAndOneStateSet) {
    const auto text = render(busy_session());
    EXPECT_NE(text.find("mqtt_route_messages_total{session=\"plant \\\"7\\\"\",filter=\"a/+\"} "
                        "1000000\n"),
              std::string::npos);
    EXPECT_NE(text.find("mqtt_session_storage_operations_total{session=\"plant \\\"7\\\"\","
                        "operation=\"remove\"} 3\n"),
              std::string::npos);
    EXPECT_NE(text.find("{session=\"plant \\\"7\\\"\",state=\"connected\"} 1\n"),
              std::string::npos);
    EXPECT_NE(text.find("{session=\"plant \\\"7\\\"\",state=\"reconnecting\"} 0\n"),
              std::string::npos);
    EXPECT_NE(text.find("mqtt_session_connected{session=\"plant \\\"7\\\"\"} 1\n"),
              std::string::npos);
}

TEST(RateWindow, RatesCoverTheLastWindowOfSamples) {
    using Clock = mqttx::detail::RateWindow::Clock;
    const auto t0 = Clock::time_point{} + std::chrono::hours(1);
    mqttx::detail::RateWindow window(std::chrono::seconds(10), t0);
    // Nothing sampled yet: the rate since the start.
    auto r = window.rates(t0 + std::chrono::seconds(4), 400, 4000);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 100.0);
    EXPECT_DOUBLE_EQ(r.bytes_per_second, 1000.0);
    for (int s = 1; s <= 20; ++s) {
        window.sample(t0 + std::chrono::seconds(s), static_cast<std::uint64_t>(s) * 100, 0);
    }
    // 100 per second until second 20, then 500 more in the next second.
    r = window.rates(t0 + std::chrono::seconds(21), 2500, 0);
    EXPECT_DOUBLE_EQ(r.messages_per_second, (2500.0 - 1100.0) / 10.0);
    // Idle for longer than the window: 0.
    window.sample(t0 + std::chrono::seconds(40), 2500, 0);
    r = window.rates(t0 + std::chrono::seconds(55), 2500, 0);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 0.0);
    window.reset(t0 + std::chrono::seconds(60));
    r = window.rates(t0 + std::chrono::seconds(62), 10, 0);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 5.0);
    // Sampled every 100 ms, more often than the ring holds a window's worth: the rate
    // covers the newest samples only, and stays right.
    for (int tenth = 1; tenth <= 100; ++tenth) {
        window.sample(t0 + std::chrono::seconds(70) + std::chrono::milliseconds(100 * tenth),
                      static_cast<std::uint64_t>(tenth) * 30, 0);
    }
    r = window.rates(t0 + std::chrono::seconds(80) + std::chrono::milliseconds(100), 3030, 0);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 300.0);
}

TEST(RateWindow, AnIdleStretchCountsFromTheStartOfTheWindow) {
    using Clock = mqttx::detail::RateWindow::Clock;
    const auto t0 = Clock::time_point{} + std::chrono::hours(1);
    mqttx::detail::RateWindow window(std::chrono::seconds(10), t0);
    for (int s = 1; s <= 30; ++s) window.sample(t0 + std::chrono::seconds(s), 0, 0);
    // Idle for 30 s, then 100 messages before the next sample: the totals were 0 where
    // the window starts (20.5 s), so the rate is over the whole window.
    auto r = window.rates(t0 + std::chrono::milliseconds(30500), 100, 800);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 10.0);
    EXPECT_DOUBLE_EQ(r.bytes_per_second, 80.0);
    window.sample(t0 + std::chrono::seconds(31), 100, 800);
    r = window.rates(t0 + std::chrono::seconds(31), 100, 800);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 10.0);
    // Traffic, then idle again: the busy second still counts until it leaves the window.
    for (int s = 32; s <= 40; ++s) window.sample(t0 + std::chrono::seconds(s), 100, 800);
    r = window.rates(t0 + std::chrono::seconds(40), 100, 800);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 10.0);
    window.sample(t0 + std::chrono::seconds(45), 100, 800);
    r = window.rates(t0 + std::chrono::seconds(45), 100, 800);
    EXPECT_DOUBLE_EQ(r.messages_per_second, 0.0);
}

}  // namespace
