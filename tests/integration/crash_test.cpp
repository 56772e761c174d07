// Crash tests: a child program with a persistent session and file or Redis storage is
// killed with SIGKILL; a new one with the same client id and storage must deliver
// everything the first one accepted.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "support/child_process.hpp"
#include "support/collector.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"
#include "support/redis.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::test::Collector;
using mqttx::test::wait_until;

enum class Backend { file, file_nosync, redis };

// The child's storage argument: file without sync still survives the program's crash
// (the kernel has every write); only a crash of the machine needs the syncs.
const char* storage_name(Backend backend) {
    switch (backend) {
        case Backend::file:
            return "file";
        case Backend::file_nosync:
            return "file-nosync";
        case Backend::redis:
            return "redis";
    }
    return "?";
}

class Crash : public ::testing::TestWithParam<Backend> {
  protected:
    void SetUp() override {
        dir_ = mqttx::test::make_temp_dir("mqttx-crash-");
        if (GetParam() == Backend::redis) {
            redis_ = std::make_unique<mqttx::test::RedisServer>();
            storage_ = redis_->address();
        } else {
            storage_ = dir_ + "/storage";
        }
    }
    void TearDown() override { mqttx::test::remove_tree(dir_); }

    std::vector<std::string> args(const std::string& mode, const std::string& broker) {
        return {mode, broker, "crash-test-client", storage_name(GetParam()), storage_};
    }
    std::string output() const {
        std::ifstream in(dir_ + "/child.out");
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }
    // Runs the child and waits until it prints `line` (or exits).
    bool run_until(mqttx::test::ChildProcess& child, std::vector<std::string> arguments,
                   const std::string& line, std::chrono::milliseconds deadline = 60s) {
        child.spawn(MQTTX_CRASH_CHILD, arguments, dir_ + "/child.out");
        return wait_until(
                   [&] { return output().find(line) != std::string::npos || !child.running(); },
                   deadline) &&
               output().find(line) != std::string::npos;
    }

    std::string dir_;
    std::string storage_;
    std::unique_ptr<mqttx::test::RedisServer> redis_;
};

// QoS 1 messages published while the broker is down, then a crash: they were only in
// the outbox and the storage.
TEST_P(Crash, Qos1AcceptedWhileTheBrokerWasDownArriveAfterTheRestart) {
    const int port = mqttx::test::free_port();
    const std::string broker_uri = "tcp://127.0.0.1:" + std::to_string(port);
    constexpr int count = 100;
    {
        mqttx::test::ChildProcess child;
        auto a = args("publish", broker_uri);
        a.push_back(std::to_string(count));
        a.push_back("1");
        ASSERT_TRUE(run_until(child, a, "accepted " + std::to_string(count))) << output();
        child.kill();  // SIGKILL: no destructor, no flush
    }
    mqttx::test::BrokerOptions options;
    options.port = port;
    mqttx::test::Mosquitto broker(options);
    Collector inbox;
    mqttx::SessionManager manager;
    auto watcher = manager.add_session(mqttx::quick_connect("watcher", broker.uri()).build());
    auto route = watcher->subscribe("crash/t", 1, inbox.handler());
    manager.connect_all();
    manager.wait_for_all_sessions(20s);

    mqttx::test::ChildProcess second;
    ASSERT_TRUE(run_until(second, args("drain", broker_uri), "drained")) << output();
    // count messages and the drain's "end" marker
    ASSERT_TRUE(wait_until([&] { return inbox.distinct_payloads() == count + 1; }, 30s))
        << inbox.distinct_payloads() - 1 << " of " << count << " arrived";
    std::printf("crash with the broker down: %d accepted, %zu delivered (%zu copies)\n", count,
                inbox.distinct_payloads() - 1, inbox.size() - 1);
}

// QoS 2 messages in flight at the crash: the program reaches the broker through a
// proxy that freezes mid-burst, so messages sit between the two in every stage of the
// QoS 2 exchange when the program is killed. Each must arrive exactly once: Paho
// resends what it had written (same packet identifier, which the broker recognises)
// and the new program's outbox leaves those to it.
TEST_P(Crash, Qos2InFlightAtTheCrashArrivesExactlyOnce) {
    mqttx::test::Mosquitto broker;
    mqttx::test::FaultProxy proxy(broker.port());
    Collector inbox;
    mqttx::SessionManager manager;
    auto watcher = manager.add_session(mqttx::quick_connect("watcher", broker.uri()).build());
    auto route = watcher->subscribe("crash/t", 2, inbox.handler());
    manager.connect_all();
    manager.wait_for_all_sessions(20s);
    constexpr int count = 300;
    {
        mqttx::test::ChildProcess child;
        auto a = args("publish", proxy.uri());
        a.push_back(std::to_string(count));
        a.push_back("2");
        ASSERT_TRUE(run_until(child, a, "accepted " + std::to_string(count))) << output();
        ASSERT_TRUE(inbox.wait_for(30)) << output();
        proxy.set_stalled(true);  // whatever is on the way stays on the way
        child.kill();
        proxy.reset_all();  // and is lost with the connection
        proxy.set_stalled(false);
    }
    const auto before_restart = inbox.size();
    mqttx::test::ChildProcess second;
    ASSERT_TRUE(run_until(second, args("drain", proxy.uri()), "drained")) << output();
    ASSERT_TRUE(wait_until([&] {
        for (const auto& m : inbox.messages()) {
            if (m.payload == "end") return true;
        }
        return false;
    }));
    std::map<std::string, int> copies;
    for (const auto& m : inbox.messages()) ++copies[m.payload];
    int missing = 0, duplicated = 0;
    for (int i = 0; i < count; ++i) {
        const int n = copies[std::to_string(i)];
        missing += n == 0;
        duplicated += n > 1 ? n - 1 : 0;
    }
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(duplicated, 0);
    std::printf("QoS 2 crash: %zu arrived before the kill, %d missing, %d duplicated\n",
                before_restart, missing, duplicated);
}

// A forwarding program (at-least-once, persistent sessions) is killed mid-stream and
// started again: every QoS 1 message published at the site reaches the cloud. The site
// broker redelivers what the dead program had not acknowledged; what it had
// acknowledged was already in the cloud session's stored outbox.
TEST_P(Crash, ForwardingProgramKilledMidStreamLosesNothing) {
    mqttx::test::Mosquitto site;
    mqttx::test::Mosquitto cloud;
    Collector inbox;
    mqttx::SessionManager manager;
    auto watcher = manager.add_session(mqttx::quick_connect("watcher", cloud.uri()).build());
    auto route = watcher->subscribe("fwd/#", 1, inbox.handler());
    auto sensor = manager.add_session(mqttx::quick_connect("sensor", site.uri()).build());
    manager.connect_all();
    manager.wait_for_all_sessions(20s);
    const std::vector<std::string> forward{"forward", site.uri(), cloud.uri(),
                                           storage_name(GetParam()), storage_};
    mqttx::test::ChildProcess first;
    ASSERT_TRUE(run_until(first, forward, "forwarding")) << output();

    constexpr int count = 300;
    for (int i = 0; i < 100; ++i) sensor->publish("fwd/n", std::to_string(i), 1).wait();
    ASSERT_TRUE(inbox.wait_for(20)) << "nothing was forwarded";
    first.kill();  // mid-stream: it had a backlog; the site broker keeps queueing for it
    const auto killed_at = inbox.size();
    for (int i = 100; i < count; ++i) sensor->publish("fwd/n", std::to_string(i), 1).wait();
    mqttx::test::ChildProcess second;
    ASSERT_TRUE(run_until(second, forward, "forwarding")) << output();
    ASSERT_TRUE(wait_until([&] { return inbox.distinct_payloads() == count; }, 60s))
        << inbox.distinct_payloads() << " of " << count << " arrived";
    std::printf("forwarder killed after %zu of %d: all arrived, %zu duplicate(s)\n", killed_at,
                count, inbox.size() - count);
}

INSTANTIATE_TEST_SUITE_P(Storage, Crash,
                         ::testing::Values(Backend::file, Backend::file_nosync, Backend::redis),
                         [](const auto& info) {
                             return info.param == Backend::file_nosync
                                        ? std::string("file_nosync")
                                        : std::string(storage_name(info.param));
                         });

}  // namespace
