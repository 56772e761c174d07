// mqttx-bridge end to end: the program, run with a configuration file between two
// mosquitto brokers the tests start, checked on what arrives at the other broker and on
// what its HTTP endpoint and exit status say.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <mqttx/mqttx.hpp>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/collector.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"
#include "support/promtool.hpp"
#include "support/sync.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::test::Background;
using mqttx::test::Collector;
using mqttx::test::wait_until;

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The value of one sample ("name{labels}") in a Prometheus text; -1 when absent.
double sample(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
}

// One mqttx-bridge process, its output in a file, its HTTP endpoint on a free port.
class BridgeProcess {
  public:
    BridgeProcess(const std::string& dir, const std::string& name)
        : log_path_(dir + "/" + name + ".log"), port_(mqttx::test::free_port()) {}

    // `env`: "NAME=value" entries for the program's environment.
    void start(const std::string& config, const std::vector<std::string>& env,
               const std::vector<std::string>& extra = {}) {
        std::vector<std::string> args = env;
        for (const auto& arg : {std::string(MQTTX_BRIDGE), std::string("--config"), config,
                                std::string("--listen"), "127.0.0.1:" + std::to_string(port_)}) {
            args.push_back(arg);
        }
        args.insert(args.end(), extra.begin(), extra.end());
        exit_.reset();
        process_.spawn("/usr/bin/env", args, log_path_);
    }

    httplib::Result get(const std::string& path) const {
        httplib::Client client("127.0.0.1", port_);
        client.set_connection_timeout(5);
        client.set_read_timeout(10);
        return client.Get(path);
    }
    int status(const std::string& path) const {
        auto result = get(path);
        return result ? result->status : -1;
    }
    std::string metrics() const {
        auto result = get("/metrics");
        return result ? "\n" + result->body : std::string();
    }
    bool ready(std::chrono::milliseconds deadline = 30s) const {
        return wait_until([&] { return status("/readyz") == 200; }, deadline);
    }

    // "exited with status N" or "killed by signal N" once the process is gone.
    std::string wait_exit(std::chrono::milliseconds deadline) {
        wait_until(
            [&] {
                if (!exit_) exit_ = process_.exited();
                return exit_.has_value();
            },
            deadline);
        return exit_.value_or("still running");
    }
    void signal(int sig) const { process_.signal(sig); }
    void kill() {
        process_.kill();
        exit_ = "killed";
    }
    std::string log() const { return read_file(log_path_); }
    int port() const { return port_; }

  private:
    std::string log_path_;
    int port_;
    mqttx::test::ChildProcess process_;
    std::optional<std::string> exit_;
};

class BridgeTest : public ::testing::Test {
  protected:
    void TearDown() override { mqttx::test::remove_tree(dir); }

    std::vector<std::string> env() const {
        return {"SITE_BROKER=" + site.uri(), "CLOUD_BROKER=" + cloud.uri(),
                "STATE_DIRECTORY=" + dir};
    }
    // A test's own client on `broker`, connected, that may hold `max_pending` publishes.
    std::shared_ptr<mqttx::Session> client(
        const std::string& name, const std::string& broker,
        int max_pending = mqttx::PerformanceOptions{}.max_pending) {
        auto session = clients.add_session(
            mqttx::quick_connect(name, broker).performance(4096, max_pending).build());
        clients.connect(name);
        clients.wait_for_session(name, 20s);
        return session;
    }
    std::string config(const std::string& text) const {
        const auto path = dir + "/bridge.toml";
        write_file(path, text);
        return path;
    }

    mqttx::test::Mosquitto site;
    mqttx::test::Mosquitto cloud;
    const std::string dir = mqttx::test::make_temp_dir("mqttx-bridge-test-");
    mqttx::SessionManager clients;
};

// Two plain sessions and a forwarder from site to cloud for every test that does not use a
// sample config.
std::string sessions(const std::string& cloud_uri, const std::string& extra_site = "") {
    return "[[sessions]]\nname = \"site\"\nbroker = \"${SITE_BROKER}\"\nclient_id = \"b-site\"\n" +
           extra_site + "\n[[sessions]]\nname = \"cloud\"\nbroker = \"" + cloud_uri +
           "\"\nclient_id = \"b-cloud\"\n";
}

std::string forwarder(const std::string& name, const std::string& filter,
                      const std::string& prefix) {
    return "\n[[forwarders]]\nname = \"" + name + "\"\ntarget = \"cloud\"\nqos = 1\nprefix = \"" +
           prefix + "\"\n[[forwarders.sources]]\nsession = \"site\"\nfilters = [\"" + filter +
           "\"]\n";
}

int count(const std::string& text, const std::string& part) {
    int n = 0;
    for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
}

bool has_topic(const Collector& inbox, const std::string& topic) {
    for (const auto& m : inbox.messages()) {
        if (m.topic == topic) return true;
    }
    return false;
}

TEST_F(BridgeTest, TheSampleConfigForwardsBothWaysAndServesPrometheusText) {
    BridgeProcess bridge(dir, "bridge");
    bridge.start(MQTTX_BRIDGE_DIR "/bridge.toml", env());
    ASSERT_TRUE(bridge.ready()) << bridge.log();

    Collector at_cloud;
    Collector at_site;
    auto cloud_client = client("cloud-client", cloud.uri());
    auto site_client = client("site-client", site.uri());
    auto r1 = cloud_client->subscribe("storage/#", 1, at_cloud.handler());
    auto r2 = site_client->subscribe("from-cloud/#", 1, at_site.handler());
    ASSERT_TRUE(wait_until([&] { return r1.granted_qos() == 1 && r2.granted_qos() == 1; }));

    ASSERT_TRUE(site_client->publish("sensors/kitchen/temperature", "21.5", 1).wait_for(20s));
    ASSERT_TRUE(site_client->publish("sensors/hall/humidity", "40", 1).wait_for(20s));
    ASSERT_TRUE(cloud_client->publish("commands/reboot", "now", 1).wait_for(20s));
    ASSERT_TRUE(at_cloud.wait_for(2, 30s)) << bridge.log();
    ASSERT_TRUE(at_site.wait_for(1, 30s)) << bridge.log();
    const auto up = at_cloud.messages();
    EXPECT_EQ(up[0].topic, "storage/kitchen/temp");
    EXPECT_EQ(up[0].payload, "21.5");
    EXPECT_EQ(up[1].topic, "storage/hall/humidity");
    EXPECT_EQ(up[1].payload, "40");
    EXPECT_EQ(at_site.messages()[0].topic, "from-cloud/commands/reboot");

    const auto metrics = bridge.metrics();
    EXPECT_EQ(sample(metrics, "mqtt_forwarder_forwarded_total{forwarder=\"sensors-to-cloud\"}"), 2)
        << metrics;
    EXPECT_EQ(sample(metrics, "mqtt_forwarder_forwarded_total{forwarder=\"commands-to-site\"}"), 1);
    EXPECT_EQ(sample(metrics, "mqttx_bridge_config_reloads_total{result=\"failure\"}"), 0);
    EXPECT_NE(metrics.find("\nmqttx_bridge_info{instance=\"\",version=\""), std::string::npos);
    const auto [status, output] = mqttx::test::promtool_check(metrics.substr(1));
    EXPECT_EQ(status, 0) << output;
    EXPECT_EQ(bridge.status("/healthz"), 200);

    bridge.signal(SIGTERM);
    EXPECT_EQ(bridge.wait_exit(30s), "exited with status 0") << bridge.log();
}

TEST_F(BridgeTest, ReadinessFollowsTheBrokers) {
    BridgeProcess bridge(dir, "bridge");
    bridge.start(MQTTX_BRIDGE_DIR "/bridge.toml", env());
    ASSERT_TRUE(bridge.ready()) << bridge.log();

    cloud.kill();
    ASSERT_TRUE(wait_until([&] { return bridge.status("/readyz") == 503; }, 30s));
    const auto reasons = bridge.get("/readyz");
    ASSERT_TRUE(reasons);
    EXPECT_NE(reasons->body.find("session cloud: "), std::string::npos) << reasons->body;
    EXPECT_NE(reasons->body.find("forwarder commands-to-site: not subscribed"), std::string::npos)
        << reasons->body;
    EXPECT_EQ(bridge.status("/healthz"), 200) << "alive while not ready";

    cloud.start();
    EXPECT_TRUE(bridge.ready(60s)) << bridge.log();
}

TEST_F(BridgeTest, AReloadReplacesWhatChangedAndLeavesTheRestRunning) {
    const auto path =
        config(sessions(cloud.uri()) + forwarder("steady", "flow/#", "s/") +
               forwarder("old", "old/#", "o/") + forwarder("changing", "chg/#", "c1/"));
    BridgeProcess bridge(dir, "bridge");
    bridge.start(path, env());
    ASSERT_TRUE(bridge.ready()) << bridge.log();

    Collector at_cloud;
    auto cloud_client = client("cloud-client", cloud.uri());
    auto route = cloud_client->subscribe("#", 1, at_cloud.handler());
    ASSERT_TRUE(wait_until([&] { return route.granted_qos() == 1; }));
    auto site_client = client("site-client", site.uri());
    ASSERT_TRUE(site_client->publish("old/before", "x", 1).wait_for(20s));
    ASSERT_TRUE(wait_until([&] { return has_topic(at_cloud, "o/old/before"); }, 30s));

    // A steady flow on the forwarder that stays, across both reloads.
    std::atomic<int> sent{0};
    Background flow;
    flow.thread = std::thread([&] {
        while (flow.running) {
            if (!site_client->publish("flow/" + std::to_string(sent.load()), "f", 1)
                     .wait_for(20s)) {
                break;
            }
            ++sent;  // one at a time, each acknowledged: the flow spans the reloads
        }
    });
    const auto flowed = [&](int more) {
        const int target = sent.load() + more;
        return wait_until([&] { return sent.load() >= target; }, 30s);
    };

    ASSERT_TRUE(flowed(100));
    write_file(path, sessions(cloud.uri()) + forwarder("steady", "flow/#", "s/") +
                         forwarder("new", "new/#", "n/") + forwarder("changing", "chg/#", "c2/"));
    bridge.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] {
        return sample(bridge.metrics(), "mqttx_bridge_config_reloads_total{result=\"success\"}") ==
               1;
    }));
    ASSERT_TRUE(bridge.ready()) << bridge.log();
    // In order through one source and one target: had "old" still run, o/old/after would
    // arrive before n/new/after.
    ASSERT_TRUE(site_client->publish("old/after", "x", 1).wait_for(20s));
    ASSERT_TRUE(site_client->publish("new/after", "x", 1).wait_for(20s));
    ASSERT_TRUE(wait_until([&] { return has_topic(at_cloud, "n/new/after"); }, 30s))
        << bridge.log();
    EXPECT_FALSE(has_topic(at_cloud, "o/old/after"));
    ASSERT_TRUE(site_client->publish("chg/after", "x", 1).wait_for(20s));
    ASSERT_TRUE(wait_until([&] { return has_topic(at_cloud, "c2/chg/after"); }, 30s));
    EXPECT_FALSE(has_topic(at_cloud, "c1/chg/after")) << "replaced, not added beside";

    // A file with mistakes is refused and the running configuration stays.
    ASSERT_TRUE(flowed(100));
    write_file(path, sessions(cloud.uri()) + forwarder("steady", "flow/#", "s/") +
                         "\n[[forwarders]]\nname = \"broken\"\ntarget = \"clod\"\nqos = \"one\"\n");
    bridge.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] {
        return sample(bridge.metrics(), "mqttx_bridge_config_reloads_total{result=\"failure\"}") ==
               1;
    }));
    ASSERT_TRUE(site_client->publish("new/still", "x", 1).wait_for(20s));
    ASSERT_TRUE(wait_until([&] { return has_topic(at_cloud, "n/new/still"); }, 30s));
    const auto log = bridge.log();
    EXPECT_NE(log.find(path + ":22:10: forwarders[1].target: unknown session 'clod'"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(path + ":23:7: forwarders[1].qos: expected an integer, got a string"),
              std::string::npos)
        << log;

    ASSERT_TRUE(flowed(100));
    flow.stop();
    const int total = sent.load();
    ASSERT_TRUE(wait_until(
        [&] {
            std::set<std::string> seen;
            for (const auto& m : at_cloud.messages()) {
                if (m.topic.starts_with("s/flow/")) seen.insert(m.topic);
            }
            return static_cast<int>(seen.size()) == total;
        },
        60s))
        << "the steady forwarder lost messages across the reloads";
    const auto metrics = bridge.metrics();
    EXPECT_EQ(sample(metrics, "mqtt_session_reconnects_total{session=\"site\"}"), 0) << metrics;
    EXPECT_EQ(sample(metrics, "mqtt_session_reconnects_total{session=\"cloud\"}"), 0);
    EXPECT_EQ(log.find("session site: removed"), std::string::npos) << log;
    EXPECT_NE(log.find("forwarder old: removed"), std::string::npos) << log;
    EXPECT_NE(log.find("forwarder changing: replaced"), std::string::npos) << log;
    EXPECT_EQ(log.find("forwarder steady: removed"), std::string::npos) << log;
    // One connection each for the whole test: nothing reconnected.
    EXPECT_EQ(count(site.log(), " as b-site "), 1) << site.log();
    EXPECT_EQ(count(cloud.log(), " as b-cloud "), 1) << cloud.log();
}

// A stopped bridge leaves its persistent sessions subscribed at their brokers: what is
// published while it is down is forwarded when it is back.
TEST_F(BridgeTest, WhatArrivesWhileTheBridgeIsStoppedIsForwardedAfterItsRestart) {
    Collector at_cloud;
    auto cloud_client = client("cloud-client", cloud.uri());
    auto route = cloud_client->subscribe("storage/#", 1, at_cloud.handler());
    ASSERT_TRUE(wait_until([&] { return route.granted_qos() == 1; }));
    auto site_client = client("site-client", site.uri());

    BridgeProcess bridge(dir, "bridge");
    bridge.start(MQTTX_BRIDGE_DIR "/bridge.toml", env());
    ASSERT_TRUE(bridge.ready()) << bridge.log();
    bridge.signal(SIGTERM);
    ASSERT_EQ(bridge.wait_exit(30s), "exited with status 0") << bridge.log();

    ASSERT_TRUE(site_client->publish("sensors/cellar/temperature", "12.5", 1).wait_for(20s));
    bridge.start(MQTTX_BRIDGE_DIR "/bridge.toml", env());
    ASSERT_TRUE(at_cloud.wait_for(1, 30s)) << bridge.log();
    EXPECT_EQ(at_cloud.messages()[0].topic, "storage/cellar/temp");
    EXPECT_EQ(at_cloud.messages()[0].payload, "12.5");
}

// The target broker is reached through a proxy that the test stalls, so that QoS 1
// messages are queued in the bridge when SIGTERM comes.
class BridgeDrainTest : public BridgeTest {
  protected:
    // Starts the bridge, stalls the target, and has `count` messages queued in it.
    void queue_messages(BridgeProcess& bridge, const std::string& drain_timeout, int count) {
        const auto path = config("[bridge]\ndrain_timeout = \"" + drain_timeout + "\"\n" +
                                 sessions(proxy.uri(),
                                          "persistent = true\n[sessions.storage]\ntype = \"file\"\n"
                                          "directory = \"${STATE_DIRECTORY}\"\n") +
                                 forwarder("f", "flow/#", ""));
        bridge.start(path, env());
        ASSERT_TRUE(bridge.ready()) << bridge.log();
        auto route = cloud_client->subscribe("flow/#", 1, at_cloud.handler());
        ASSERT_TRUE(wait_until([&] { return route.granted_qos() == 1; }));
        routes.push_back(std::move(route));

        proxy.set_stalled(true);
        auto site_client = client("site-client", site.uri());
        std::vector<mqttx::DeliveryToken> tokens;
        for (int i = 0; i < count; ++i) {
            tokens.push_back(site_client->publish("flow/" + std::to_string(i), "q", 1));
        }
        for (auto& token : tokens) ASSERT_TRUE(token.wait_for(20s));
        ASSERT_TRUE(wait_until([&] {
            return sample(bridge.metrics(), "mqtt_forwarder_forwarded_total{forwarder=\"f\"}") ==
                   count;
        })) << bridge.log();
        EXPECT_EQ(at_cloud.size(), 0u) << "the target is stalled";
        bridge.signal(SIGTERM);
        ASSERT_TRUE(wait_until([&] {
            return bridge.log().find("draining: ") != std::string::npos;
        })) << bridge.log();
        EXPECT_EQ(bridge.log().find("draining: 0 message"), std::string::npos)
            << "the messages must be queued when the drain starts";
    }

    mqttx::test::FaultProxy proxy{cloud.port()};
    std::shared_ptr<mqttx::Session> cloud_client = client("cloud-client", cloud.uri());
    Collector at_cloud;
    std::vector<mqttx::Route> routes;
};

TEST_F(BridgeDrainTest, SigtermHandsOverQueuedQos1MessagesBeforeExitingZero) {
    BridgeProcess bridge(dir, "bridge");
    ASSERT_NO_FATAL_FAILURE(queue_messages(bridge, "60s", 200));
    proxy.set_stalled(false);
    EXPECT_EQ(bridge.wait_exit(90s), "exited with status 0") << bridge.log();
    EXPECT_TRUE(wait_until([&] {
        std::set<std::string> topics;
        for (const auto& m : at_cloud.messages()) topics.insert(m.topic);
        return topics.size() == 200;
    })) << "every queued message reaches the target broker";
}

TEST_F(BridgeDrainTest, ADrainDeadlineWithMessagesLeftExitsNonZeroSayingHowMany) {
    BridgeProcess bridge(dir, "bridge");
    ASSERT_NO_FATAL_FAILURE(queue_messages(bridge, "1s", 50));
    EXPECT_EQ(bridge.wait_exit(60s), "exited with status 1") << bridge.log();
    EXPECT_NE(bridge.log().find("message(s) left at the drain deadline"), std::string::npos)
        << bridge.log();
}

TEST_F(BridgeTest, ABadFileIsRefusedAtStartAndByCheck) {
    const auto path =
        config(sessions(cloud.uri()) + "keep_alive = true\n" + forwarder("f", "a/#/b", ""));
    for (const bool check : {true, false}) {
        BridgeProcess bridge(dir, check ? "check" : "start");
        bridge.start(path, env(),
                     check ? std::vector<std::string>{"--check"} : std::vector<std::string>{});
        EXPECT_EQ(bridge.wait_exit(30s), "exited with status 2");
        const auto log = bridge.log();
        EXPECT_NE(log.find(path + ":10:14: sessions[1].keep_alive: expected a duration"),
                  std::string::npos)
            << log;
        EXPECT_NE(log.find(path + ":19:11: forwarders[0].sources[0].filters"), std::string::npos)
            << log;
    }
    BridgeProcess good(dir, "good");
    good.start(config(sessions(cloud.uri())), env(), {"--check"});
    EXPECT_EQ(good.wait_exit(30s), "exited with status 0") << good.log();
    EXPECT_NE(good.log().find(": ok: 2 session(s), 0 forwarder(s)"), std::string::npos);
}

// Scale-out: two instances of the sample scale-out config split one stream through a
// shared subscription; one is killed with SIGKILL mid-stream and started again.
TEST_F(BridgeTest, TwoInstancesShareAStreamAndAKilledOneLosesNothing) {
    constexpr int total = 20000;
    const std::string config = MQTTX_BRIDGE_DIR "/scale-out.toml";
    BridgeProcess one(dir, "one");
    BridgeProcess two(dir, "two");
    one.start(config, env(), {"--instance", "1"});
    two.start(config, env(), {"--instance", "2"});
    ASSERT_TRUE(one.ready()) << one.log();
    ASSERT_TRUE(two.ready()) << two.log();

    Collector at_cloud;
    auto cloud_client = client("cloud-client", cloud.uri());
    auto route = cloud_client->subscribe("storage/#", 1, at_cloud.handler());
    ASSERT_TRUE(wait_until([&] { return route.granted_qos() == 1; }));
    auto site_client = client("site-client", site.uri(), total);
    std::vector<mqttx::DeliveryToken> tokens;  // published on by the session meanwhile
    tokens.reserve(total);
    for (int i = 0; i < total; ++i) {
        tokens.push_back(site_client->publish("sensors/s" + std::to_string(i % 16) + "/temperature",
                                              std::to_string(i), 1));
    }

    ASSERT_TRUE(at_cloud.wait_for(total / 4, 60s)) << one.log() << two.log();
    two.kill();
    const auto at_kill = at_cloud.size();
    EXPECT_TRUE(at_cloud.wait_for(at_kill + 1000, 60s)) << "instance 1 goes on alone";
    two.start(config, env(), {"--instance", "2"});
    for (auto& token : tokens) ASSERT_TRUE(token.wait_for(60s));
    ASSERT_TRUE(wait_until([&] { return at_cloud.distinct_payloads() == total; }, 180s))
        << at_cloud.distinct_payloads() << " of " << total << " arrived\n"
        << two.log();
    ASSERT_TRUE(two.ready()) << two.log();

    const double by_one =
        sample(one.metrics(), "mqtt_forwarder_forwarded_total{forwarder=\"site-to-cloud\"}");
    const auto arrived = at_cloud.size();
    const double by_two = static_cast<double>(arrived) - by_one;  // before and after its kill
    const auto duplicates = arrived - total;
    std::cout << "scale-out: instance 1 forwarded " << by_one << ", instance 2 " << by_two
              << ", duplicates " << duplicates << " of " << total << "\n";
    RecordProperty("duplicates", static_cast<int>(duplicates));
    // Without a shared subscription each instance would forward everything.
    EXPECT_GE(by_one, total / 5) << "each instance forwards a real share";
    EXPECT_LE(by_one, total * 4 / 5) << "each instance forwards a real share";
    EXPECT_GE(by_two, total / 5) << "each instance forwards a real share";
    EXPECT_LT(duplicates, total / 20u) << "only around the kill";
}

}  // namespace
