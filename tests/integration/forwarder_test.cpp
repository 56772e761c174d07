// Forwarders between real brokers: "site" brokers where sensors publish and a "cloud"
// broker that receives what the forwarders carry over. Every test checks the messages
// that arrive on the cloud side, not just the counters.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "support/collector.hpp"
#include "support/error_kind.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"
#include "support/sync.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::ForwarderBuilder;
using mqttx::Protocol;
using mqttx::test::Collector;
using mqttx::test::error_kind_of;
using mqttx::test::wait_until;

std::string property(const mqttx::test::Received& m, const std::string& key) {
    for (const auto& [k, v] : m.properties.user_properties) {
        if (k == key) return v;
    }
    return "<none>";
}

class ForwarderTest : public ::testing::Test {
  protected:
    std::shared_ptr<mqttx::Session> add(const std::string& name, const std::string& broker,
                                        Protocol protocol = Protocol::v5) {
        return manager.add_session(mqttx::quick_connect(name, broker).protocol(protocol).build());
    }
    void connect_all() {
        manager.connect_all();
        manager.wait_for_all_sessions(20s);
    }

    mqttx::test::Mosquitto site;
    mqttx::test::Mosquitto cloud;
    mqttx::SessionManager manager;
};

TEST_F(ForwarderTest, TwoSiteSessionsReachTheCloudThroughAWildcardMapping) {
    mqttx::test::Mosquitto site2;
    auto site_a = add("site-a", site.uri());
    auto site_b = add("site-b", site2.uri());
    auto uplink = add("uplink", cloud.uri());
    auto watcher = add("watcher", cloud.uri());
    Collector inbox;
    auto route = watcher->subscribe("storage/#", 1, inbox.handler());
    connect_all();
    auto& forwarder =
        manager.forwarders().add(ForwarderBuilder("bridge")
                                     .source("site-a", {"sensors/+/temperature"})
                                     .source("site-b", {"sensors/+/temperature"})
                                     .target("uplink")
                                     .map_topic("sensors/+/temperature", "storage/{1}/temp")
                                     .metadata("origin", "edge")
                                     .build());
    EXPECT_TRUE(forwarder.running());

    // Sensors publish on the site brokers through sessions of their own.
    auto sensor_a = add("sensor-a", site.uri());
    auto sensor_b = add("sensor-b", site2.uri());
    connect_all();
    mqttx::PublishProperties props;
    props.user_properties = {{"unit", "C"}};
    sensor_a->publish("sensors/kitchen/temperature", "21.5", 1, false, props).wait();
    sensor_b->publish("sensors/attic/temperature", "17.0", 1).wait();
    sensor_a->publish("sensors/kitchen/humidity", "40", 1).wait();  // not matched: stays

    ASSERT_TRUE(inbox.wait_for(2));
    ASSERT_TRUE(wait_until([&] { return forwarder.metrics().acknowledged == 2; }));
    auto got = inbox.messages();
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.topic < b.topic; });
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].topic, "storage/attic/temp");
    EXPECT_EQ(got[0].payload, "17.0");
    EXPECT_EQ(got[1].topic, "storage/kitchen/temp");
    EXPECT_EQ(got[1].payload, "21.5");
    EXPECT_EQ(got[1].qos, 1);
    for (const auto& m : got) {
        EXPECT_EQ(property(m, "origin"), "edge");
        EXPECT_EQ(property(m, "mqttx-hops"), "1");
    }
    EXPECT_EQ(property(got[1], "unit"), "C");  // the source's own properties travel on

    const auto metrics = forwarder.metrics();
    EXPECT_EQ(metrics.received, 2u);
    EXPECT_EQ(metrics.forwarded, 2u);
    EXPECT_EQ(metrics.dropped, 0u);
    EXPECT_EQ(metrics.latency.count, 2u);
    EXPECT_GT(metrics.latency.sum_seconds, 0.0);
}

TEST_F(ForwarderTest, FiltersAreAndedAndTransformsChain) {
    auto source = add("source", site.uri());
    auto target = add("target", cloud.uri());
    auto watcher = add("watcher", cloud.uri());
    Collector inbox;
    auto route = watcher->subscribe("out/#", 1, inbox.handler());
    connect_all();
    auto& forwarder = manager.forwarders().add(
        ForwarderBuilder("picky")
            .source("source", {"in/#"})
            .target("target")
            .prefix("out/")
            .filter_topic("in/+/reading")
            .filter_payload(R"("ok":\s*true)")
            .filter([](const mqttx::Message& m) { return m.payload().size() < 100; })
            .set_json_field("site", "north")
            .transform([](std::string_view p) { return std::string(p) + "\n"; })
            .build());
    auto sensor = add("sensor", site.uri());
    connect_all();
    sensor->publish("in/a/reading", R"({"ok": true})", 1).wait();   // passes
    sensor->publish("in/a/other", R"({"ok": true})", 1).wait();     // topic filter
    sensor->publish("in/b/reading", R"({"ok": false})", 1).wait();  // payload pattern
    sensor->publish("in/c/reading", std::string(200, 'x') + R"("ok":true)", 1).wait();  // predicate
    sensor->publish("in/d/reading", R"({"ok":true})", 1).wait();                        // passes
    ASSERT_TRUE(wait_until([&] { return forwarder.metrics().received == 5; }));
    ASSERT_TRUE(inbox.wait_for(2));
    ASSERT_TRUE(wait_until([&] { return forwarder.metrics().acknowledged == 2; }));
    const auto got = inbox.messages();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].topic, "out/in/a/reading");
    EXPECT_EQ(got[0].payload, "{\"ok\":true,\"site\":\"north\"}\n");
    EXPECT_EQ(got[1].topic, "out/in/d/reading");
    const auto m = forwarder.metrics();
    EXPECT_EQ(m.filtered, 3u);
    EXPECT_EQ(m.transformed, 2u);
    EXPECT_EQ(m.forwarded, 2u);
}

TEST_F(ForwarderTest, TransformFailureDropsAndReportsOnlyThatMessage) {
    auto source = add("source", site.uri());
    auto target = add("target", cloud.uri());
    auto watcher = add("watcher", cloud.uri());
    Collector inbox;
    auto route = watcher->subscribe("#", 1, inbox.handler());
    std::atomic<int> error_events{0};
    auto events = manager.on_event(mqttx::EventType::error, [&](const mqttx::Event& e) {
        const auto& info = std::get<mqttx::ErrorInfo>(e.data);
        if (info.message.find("forwarder 'json'") != std::string::npos) ++error_events;
    });
    connect_all();
    auto& forwarder = manager.forwarders().add(ForwarderBuilder("json")
                                                   .source("source", {"j"})
                                                   .target("target")
                                                   .set_json_field("seen", "yes")
                                                   .build());
    auto sensor = add("sensor", site.uri());
    connect_all();
    sensor->publish("j", "not json", 1).wait();
    sensor->publish("j", "{}", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    EXPECT_EQ(inbox.messages()[0].payload, R"({"seen":"yes"})");
    ASSERT_TRUE(wait_until([&] { return error_events == 1; }));
    const auto m = forwarder.metrics();
    EXPECT_EQ(m.dropped_transform, 1u);
    EXPECT_EQ(m.errors, 1u);
    EXPECT_EQ(m.forwarded, 1u);
}

TEST_F(ForwarderTest, Mqtt311TargetTakesMetadataOnlyInAJsonEnvelope) {
    auto source = add("source", site.uri());
    auto target = add("target311", cloud.uri(), Protocol::v311);
    auto watcher = add("watcher", cloud.uri(), Protocol::v311);
    Collector inbox;
    auto route = watcher->subscribe("#", 1, inbox.handler());
    connect_all();
    auto config = ForwarderBuilder("meta")
                      .source("source", {"m/#"})
                      .target("target311")
                      .metadata("origin", "site \"7\"")
                      .build();
    try {
        manager.forwarders().add(config);
        FAIL() << "metadata on a 3.1.1 target without an envelope was accepted";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::configuration);
        EXPECT_NE(std::string(e.what()).find("json_envelope"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(manager.forwarders().list().empty());

    config.json_envelope = true;
    manager.forwarders().add(config);
    auto sensor = add("sensor", site.uri());
    connect_all();
    sensor->publish("m/x", "raw \x01 bytes", 1).wait();
    ASSERT_TRUE(inbox.wait_for(1));
    const auto doc = nlohmann::json::parse(inbox.messages()[0].payload);
    EXPECT_EQ(doc["payload"], "raw \x01 bytes");
    EXPECT_EQ(doc["metadata"]["origin"], "site \"7\"");
    EXPECT_EQ(inbox.messages()[0].topic, "m/x");
}

TEST_F(ForwarderTest, HopLimitEndsALoopBetweenTwoBrokers) {
    auto a = add("a", site.uri());
    auto b = add("b", cloud.uri());
    Collector on_cloud;
    auto watcher = add("watcher", cloud.uri());
    auto route = watcher->subscribe("loop", 1, on_cloud.handler());
    connect_all();
    auto& there = manager.forwarders().add(
        ForwarderBuilder("there").source("a", {"loop"}).target("b").max_hops(3).build());
    auto& back = manager.forwarders().add(
        ForwarderBuilder("back").source("b", {"loop"}).target("a").max_hops(3).build());
    auto sensor = add("sensor", site.uri());
    connect_all();
    sensor->publish("loop", "round", 1).wait();
    // site -> cloud (hop 1) -> site (2) -> cloud (3) -> site: stopped there.
    ASSERT_TRUE(wait_until(
        [&] { return there.metrics().dropped_hop_limit + back.metrics().dropped_hop_limit == 1; }));
    ASSERT_TRUE(on_cloud.wait_for(2));
    EXPECT_EQ(there.metrics().forwarded + back.metrics().forwarded, 3u);
    // Nothing more comes: a later marker through the cloud arrives, the count stays.
    Collector markers;
    auto marker_route = watcher->subscribe("marker", 1, markers.handler());
    b->publish("marker", "m", 1).wait();
    ASSERT_TRUE(markers.wait_for(1));
    EXPECT_EQ(on_cloud.size(), 2u);
}

TEST_F(ForwarderTest, SameSessionAsSourceAndTargetDoesNotHearItself) {
    auto both = add("both", site.uri());
    auto watcher = add("watcher", site.uri());
    Collector inbox;
    auto route = watcher->subscribe("echo/#", 1, inbox.handler());
    connect_all();
    // Without no_local the copy on echo/x/... would match echo/# again, for ever.
    auto& forwarder = manager.forwarders().add(ForwarderBuilder("self")
                                                   .source("both", {"echo/#"})
                                                   .target("both")
                                                   .prefix("echo/x/")
                                                   .build());
    watcher->publish("echo/start", "1", 1).wait();
    ASSERT_TRUE(inbox.wait_for(2));
    watcher->publish("echo/marker", "2", 1).wait();
    ASSERT_TRUE(inbox.wait_for(4));  // marker and its one copy
    EXPECT_EQ(forwarder.metrics().received, 2u);
    std::set<std::string> topics;
    for (const auto& m : inbox.messages()) topics.insert(m.topic);
    EXPECT_EQ(topics, (std::set<std::string>{"echo/start", "echo/x/echo/start", "echo/marker",
                                             "echo/x/echo/marker"}));
}

// A stalled target must not hold up the sources in decoupled mode: the queue applies
// its policy, other routes of the source keep receiving, and what was kept arrives
// once the target moves again.
TEST_F(ForwarderTest, DecoupledForwarderWithAStalledTargetDropsOldestAndBlocksNoOne) {
    mqttx::test::FaultProxy proxy(cloud.port());
    auto source = add("source", site.uri());
    mqttx::PerformanceOptions small;
    small.max_pending = 2;  // the target's outbox fills at once
    small.max_inflight = 1;
    auto target = manager.add_session(mqttx::quick_connect("target", proxy.uri())
                                          .protocol(Protocol::v5)
                                          .performance(small)
                                          .keep_alive(60s)
                                          .build());
    auto watcher = add("watcher", cloud.uri());
    Collector forwarded;
    auto route = watcher->subscribe("d/#", 1, forwarded.handler());
    Collector local;
    auto local_route = source->subscribe("d/#", 1, local.handler());
    connect_all();
    auto& forwarder = manager.forwarders().add(ForwarderBuilder("decoupled")
                                                   .source("source", {"d/#"})
                                                   .target("target")
                                                   .mode(mqttx::ForwardMode::decoupled)
                                                   .buffer(5, mqttx::Overflow::drop_oldest)
                                                   .build());
    proxy.set_stalled(true);
    auto sensor = add("sensor", site.uri());
    connect_all();
    constexpr int count = 50;
    for (int i = 0; i < count; ++i) sensor->publish("d/n", std::to_string(i), 1).wait();
    // The source session is not held up: its other route got everything.
    ASSERT_TRUE(local.wait_for(count));
    // While the target is stalled at most 1 + 2 + 1 + 5 messages are held: 1 in flight
    // in Paho (window 1), 2 in the target's outbox, 1 in the worker's hands, 5 in the
    // forwarder's queue. How many exactly depends on how far the worker got before the
    // source stopped: on a busy machine it may still be filling the target from the
    // queue. So: every message ends acknowledged or dropped for a full buffer, at most
    // the 9 are acknowledged, and drop_oldest keeps the newest.
    constexpr std::uint64_t most_held = 1 + 2 + 1 + 5;
    ASSERT_TRUE(wait_until([&] {
        const auto m = forwarder.metrics();
        return m.received == count && m.dropped_buffer_full >= count - most_held;
    })) << "dropped "
        << forwarder.metrics().dropped_buffer_full << ", expected at least " << count - most_held;
    proxy.set_stalled(false);
    ASSERT_TRUE(wait_until(
        [&] {
            const auto m = forwarder.metrics();
            return m.acknowledged + m.dropped_buffer_full == count;
        },
        30s))
        << "acknowledged " << forwarder.metrics().acknowledged << ", dropped "
        << forwarder.metrics().dropped_buffer_full;
    const auto metrics = forwarder.metrics();
    EXPECT_EQ(metrics.dropped, metrics.dropped_buffer_full) << "no drop for another reason";
    EXPECT_LE(metrics.acknowledged, most_held);
    // What was held arrives, in order, ending with the newest message.
    ASSERT_TRUE(forwarded.wait_for(metrics.acknowledged, 30s)) << forwarded.size() << " arrived";
    const auto arrived = forwarded.messages();
    EXPECT_EQ(arrived.size(), metrics.acknowledged);
    for (std::size_t i = 1; i < arrived.size(); ++i) {
        EXPECT_LT(std::stoi(arrived[i - 1].payload), std::stoi(arrived[i].payload)) << i;
    }
    EXPECT_EQ(arrived.back().payload, std::to_string(count - 1));
}

TEST_F(ForwarderTest, ForwardedQos1MessagesSurviveTargetConnectionResets) {
    mqttx::test::FaultProxy proxy(cloud.port());
    auto source = add("source", site.uri());
    auto target = manager.add_session(mqttx::quick_connect("target", proxy.uri())
                                          .protocol(Protocol::v5)
                                          .auto_reconnect({50ms, 500ms, 2.0, 0.2})
                                          .build());
    auto watcher = add("watcher", cloud.uri());
    Collector inbox;
    auto route = watcher->subscribe("r/#", 1, inbox.handler());
    connect_all();
    auto& forwarder = manager.forwarders().add(
        ForwarderBuilder("resilient").source("source", {"r/#"}).target("target").qos(1).build());
    auto sensor = add("sensor", site.uri());
    connect_all();
    constexpr int count = 300;
    for (int i = 0; i < count; ++i) {
        if (i == 100 || i == 200) proxy.reset_all();
        sensor->publish("r/n", std::to_string(i), 1).wait();
    }
    ASSERT_TRUE(wait_until([&] { return inbox.distinct_payloads() == count; }, 30s))
        << inbox.size() << " received";
    EXPECT_EQ(forwarder.metrics().dropped, 0u);
}

// The cloud broker dies (kill -9) and comes back mid-stream. As in the fault tests, the
// proxies freeze and the broker saves its state just before the kill, so what is tested
// is the forwarder's side: nothing it accepted is lost.
TEST_F(ForwarderTest, CloudBrokerKilledMidStreamLosesNoQos1Message) {
    mqttx::test::BrokerOptions persistent;
    persistent.persistence = true;
    mqttx::test::Mosquitto cloud2(persistent);
    mqttx::test::FaultProxy target_proxy(cloud2.port());
    mqttx::test::FaultProxy watcher_proxy(cloud2.port());
    const mqttx::ReconnectPolicy quick{50ms, 500ms, 2.0, 0.2};
    auto source = add("source", site.uri());
    manager.add_session(mqttx::quick_connect("target", target_proxy.uri())
                            .protocol(Protocol::v5)
                            .client_id("fwd-kill-target")
                            .persistent()
                            .auto_reconnect(quick)
                            .build());
    auto watcher = manager.add_session(mqttx::quick_connect("watcher", watcher_proxy.uri())
                                           .client_id("fwd-kill-watcher")
                                           .persistent()
                                           .auto_reconnect(quick)
                                           .build());
    Collector inbox;
    auto route = watcher->subscribe("r/#", 1, inbox.handler());  // stops before inbox goes
    auto sensor = add("sensor", site.uri());
    connect_all();
    auto& forwarder = manager.forwarders().add(
        ForwarderBuilder("through").source("source", {"r/#"}).target("target").qos(1).build());

    // Half the stream, the kill while part of it is on its way, the other half while the
    // cloud broker is down and after it is back.
    constexpr int count = 400;
    for (int i = 0; i < count / 2; ++i) sensor->publish("r/n", std::to_string(i), 1);
    ASSERT_TRUE(inbox.wait_for(50)) << "the stream never reached the cloud";
    target_proxy.set_stalled(true);
    watcher_proxy.set_stalled(true);
    cloud2.save_when_idle();
    cloud2.kill();
    target_proxy.reset_all();
    watcher_proxy.reset_all();
    target_proxy.set_stalled(false);
    watcher_proxy.set_stalled(false);
    for (int i = count / 2; i < 3 * count / 4; ++i) sensor->publish("r/n", std::to_string(i), 1);
    cloud2.start();
    for (int i = 3 * count / 4; i < count; ++i) sensor->publish("r/n", std::to_string(i), 1);
    std::map<std::string, int> copies;
    ASSERT_TRUE(wait_until(
        [&] {
            copies.clear();
            for (const auto& m : inbox.messages()) ++copies[m.payload];
            return copies.size() == count;
        },
        60s))
        << copies.size() << " of " << count << " distinct messages arrived";
    int duplicates = 0;
    for (const auto& [payload, n] : copies) duplicates += n - 1;
    std::printf("cloud broker killed mid-stream: %d messages, 0 lost, %d duplicates\n", count,
                duplicates);
    EXPECT_EQ(forwarder.metrics().dropped, 0u);
}

TEST_F(ForwarderTest, ManagerAddsListsStopsAndRemoves) {
    auto source = add("source", site.uri());
    auto target = add("target", cloud.uri());
    auto watcher = add("watcher", cloud.uri());
    Collector inbox;
    auto route = watcher->subscribe("x", 1, inbox.handler());
    connect_all();
    auto& forwarders = manager.forwarders();
    auto config =
        ForwarderBuilder("f").source("source", {"x"}).target("target").enabled(false).build();
    auto& f = forwarders.add(config);
    EXPECT_FALSE(f.running());
    EXPECT_EQ(error_kind_of([&] { forwarders.add(config); }), ErrorKind::duplicate_forwarder);
    EXPECT_EQ(error_kind_of([&] { forwarders.get("nope"); }), ErrorKind::forwarder_not_found);
    auto unknown = config;
    unknown.name = "g";
    unknown.target = "missing";
    EXPECT_EQ(error_kind_of([&] { forwarders.add(unknown); }), ErrorKind::session_not_found);
    EXPECT_EQ(forwarders.list(), std::vector<std::string>{"f"});

    forwarders.start("f");
    source->publish("x", "1", 1);  // the source's own publish reaches its subscription
    auto sensor = add("sensor", site.uri());
    connect_all();
    sensor->publish("x", "2", 1).wait();
    ASSERT_TRUE(inbox.wait_for(2));
    forwarders.stop("f");
    EXPECT_FALSE(forwarders.get("f").running());
    sensor->publish("x", "3", 1).wait();
    EXPECT_EQ(forwarders.all_metrics().at("f").received, 2u);
    forwarders.remove("f");
    EXPECT_TRUE(forwarders.list().empty());
}

// replace() starts the new forwarder before it stops the old one: the source filter stays
// subscribed, so every message of a steady stream is forwarded by one or the other.
TEST_F(ForwarderTest, ReplaceSwapsAForwarderWithoutMissingAMessage) {
    auto source = add("source", site.uri());
    auto target = add("target", cloud.uri());
    auto watcher = add("watcher", cloud.uri());
    auto sensor = add("sensor", site.uri());
    Collector inbox;
    auto route = watcher->subscribe("#", 1, inbox.handler());
    connect_all();
    auto config = ForwarderBuilder("f").source("source", {"x/#"}).target("target").qos(1);
    manager.forwarders().add(config.prefix("old/").build());

    std::atomic<int> sent{0};
    mqttx::test::Background flow;
    flow.thread = std::thread([&] {
        while (flow.running &&
               sensor->publish("x/" + std::to_string(sent.load()), "", 1).wait_for(20s)) {
            ++sent;
        }
    });
    const auto flowed = [&](int more) {
        const int until = sent.load() + more;
        return wait_until([&] { return sent.load() >= until; });
    };
    const bool before = flowed(200);
    auto& replaced = manager.forwarders().replace(config.prefix("new/").build());
    const int sent_after_replace = sent.load() + 1;  // the one in flight may still go the old way
    const bool after = flowed(200);
    flow.stop();
    ASSERT_TRUE(before && after);
    EXPECT_EQ(replaced.config().prefix, "new/");
    EXPECT_TRUE(replaced.running());

    const int total = sent.load();
    ASSERT_TRUE(wait_until([&] {
        std::set<std::string> seen;
        for (const auto& m : inbox.messages()) seen.insert(m.topic.substr(m.topic.find('/') + 1));
        return static_cast<int>(seen.size()) == total;
    })) << "a message published during the swap was not forwarded";
    for (const auto& m : inbox.messages()) {
        const int n = std::stoi(m.topic.substr(m.topic.rfind('/') + 1));
        if (n > sent_after_replace) {
            EXPECT_EQ(m.topic.rfind("new/", 0), 0u) << m.topic;
        }
    }
    EXPECT_EQ(error_kind_of([&] {
                  manager.forwarders().replace(
                      ForwarderBuilder("g").source("source", {"x"}).target("target").build());
              }),
              ErrorKind::forwarder_not_found);
    EXPECT_EQ(
        error_kind_of([&] { manager.forwarders().replace(config.target("missing").build()); }),
        ErrorKind::session_not_found);
    EXPECT_TRUE(manager.forwarders().get("f").running()) << "a refused replace leaves the old one";
}

TEST_F(ForwarderTest, RemovingASourceSessionStopsItsForwardersWithAnEvent) {
    auto source = add("source", site.uri());
    auto target = add("target", cloud.uri());
    connect_all();
    std::mutex mutex;
    std::vector<mqttx::ForwarderStopped> stopped;
    auto events = manager.on_event(mqttx::EventType::forwarder_stopped, [&](const mqttx::Event& e) {
        std::lock_guard lock(mutex);
        stopped.push_back(std::get<mqttx::ForwarderStopped>(e.data));
    });
    auto& f = manager.forwarders().add(
        ForwarderBuilder("f").source("source", {"x"}).target("target").build());
    manager.remove_session("source");
    EXPECT_FALSE(f.running());
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard lock(mutex);
        return stopped.size() == 1;
    }));
    std::lock_guard lock(mutex);
    EXPECT_EQ(stopped[0].forwarder, "f");
    EXPECT_NE(stopped[0].reason.find("source"), std::string::npos);
}

// A forwarder whose source subscription is shared ("$share/grp/...") maps topics by the
// inner filter; its mapping `from` is that same shared filter. Run for a v3.1.1 and a v5
// source session: mosquitto 2 takes $share from both.
class SharedSourceTest : public ForwarderTest, public ::testing::WithParamInterface<Protocol> {
  protected:
    // Forwards from the site's "src" (subscribed on `from`) to the cloud's "dst" with
    // the mapping from -> to, publishes each of `sent` (topic, payload) on the site
    // and returns what a watcher on the cloud's out/# received, sorted by topic, once
    // `expected` messages arrived and the forwarder has them acknowledged.
    std::vector<mqttx::test::Received> forward(
        const std::string& from, const std::string& to,
        const std::vector<std::pair<std::string, std::string>>& sent, std::size_t expected,
        const std::string& share_group = "") {
        auto source = add("src", site.uri(), GetParam());
        auto target = add("dst", cloud.uri());
        auto watcher = add("watcher", cloud.uri());
        auto route = watcher->subscribe("out/#", 1, inbox.handler());
        connect_all();
        auto& forwarder = manager.forwarders().add(ForwarderBuilder("f")
                                                       .source("src", {from})
                                                       .target("dst")
                                                       .map_topic(from, to)
                                                       .share_group(share_group)
                                                       .build());
        EXPECT_TRUE(forwarder.running());
        auto sensor = add("sensor", site.uri());
        connect_all();
        for (const auto& [topic, payload] : sent) sensor->publish(topic, payload, 1).wait();
        EXPECT_TRUE(inbox.wait_for(expected)) << inbox.size() << " arrived";
        EXPECT_TRUE(wait_until([&] { return forwarder.metrics().acknowledged == expected; }));
        const auto m = forwarder.metrics();
        EXPECT_EQ(m.received, expected);
        EXPECT_EQ(m.forwarded, expected);
        EXPECT_EQ(m.dropped, 0u);
        auto got = inbox.messages();
        std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.topic < b.topic; });
        return got;
    }

    Collector inbox;
};

TEST_P(SharedSourceTest, HashMappingCarriesWhatTheHashMatched) {
    const auto got = forward("$share/grp/sensors/#", "out/{#}",
                             {{"sensors/a/b/c0", "deep"}, {"sensors/t0", "flat"}}, 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].topic, "out/a/b/c0");
    EXPECT_EQ(got[0].payload, "deep");
    EXPECT_EQ(got[1].topic, "out/t0");
    EXPECT_EQ(got[1].payload, "flat");
}

TEST_P(SharedSourceTest, PlusMappingCarriesTheLevelThePlusMatched) {
    // sensors/a/b/c0 does not match sensors/+: the broker never sends it.
    const auto got = forward("$share/grp/sensors/+", "out/{1}",
                             {{"sensors/a/b/c0", "deep"},
                              {"sensors/t0", "first"},
                              {"sensors/a-much-longer-level-name", "second"}},
                             2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].topic, "out/a-much-longer-level-name");
    EXPECT_EQ(got[0].payload, "second");
    EXPECT_EQ(got[1].topic, "out/t0");
    EXPECT_EQ(got[1].payload, "first");
}

// ForwarderConfig::share_group subscribes "$share/<group>/<filter>" for every filter,
// which then maps as a plain filter does (tests/bridge shows two programs splitting a
// stream this way).
TEST_P(SharedSourceTest, AShareGroupSharesEveryFilterThatThenMapsAsWritten) {
    const auto got =
        forward("sensors/+", "out/{1}", {{"sensors/a/b", "deep"}, {"sensors/t0", "t"}}, 1, "grp");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "out/t0");
    EXPECT_EQ(got[0].payload, "t");
}

INSTANTIATE_TEST_SUITE_P(Protocols, SharedSourceTest,
                         ::testing::Values(Protocol::v311, Protocol::v5), [](const auto& info) {
                             return info.param == Protocol::v5 ? "v5" : "v311";
                         });

}  // namespace
