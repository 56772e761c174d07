// Connect latency, with and without the PahoWaker workaround (wake_paho_on_connect):
//   mqttx-connect-bench [broker-uri] [sessions]      (default: own mosquitto, 10)
//     a session added while others are connected and idle, plus a batch at once;
//   mqttx-connect-bench --restart [rounds] [sessions]   (default: 10 rounds, 3 sessions)
//     idle sessions of one process while their broker is killed and started again: the
//     time from the broker accepting again to each session being ready;
//   mqttx-connect-bench --failover [rounds] [sessions]
//     sessions with two brokers, the one they are on killed: the time from the kill to
//     each session being ready on the other.
#include <spdlog/spdlog.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/mosquitto.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Figures {
    double median_ms;
    double max_ms;
    double batch_ms;
};

Figures measure(const std::string& broker, int sessions, bool workaround) {
    mqttx::ManagerOptions options;
    options.wake_paho_on_connect = workaround;
    mqttx::SessionManager manager(options);
    manager.add_session(mqttx::quick_connect("anchor", broker).build());
    manager.connect("anchor");
    manager.wait_for_session("anchor", 30s);

    std::vector<double> one_by_one;
    for (int i = 0; i < sessions; ++i) {
        const std::string name = "late-" + std::to_string(i);
        manager.add_session(mqttx::quick_connect(name, broker).build());
        const auto start = Clock::now();
        manager.connect(name);
        manager.wait_for_session(name, 30s);
        one_by_one.push_back(ms_since(start));
    }
    std::sort(one_by_one.begin(), one_by_one.end());

    for (int i = 0; i < sessions; ++i) {
        manager.add_session(mqttx::quick_connect("batch-" + std::to_string(i), broker).build());
    }
    const auto start = Clock::now();
    manager.connect_all();
    manager.wait_for_all_sessions(60s);
    return {one_by_one[one_by_one.size() / 2], one_by_one.back(), ms_since(start)};
}

// When each session of a manager was last ready.
class ReadyClock {
  public:
    explicit ReadyClock(mqttx::SessionManager& manager)
        : subscription_(manager.on_event(mqttx::EventType::session_ready, [this](const auto& e) {
              std::lock_guard lock(mutex_);
              ready_[e.session] = Clock::now();
          })) {}

    // Waits until every one of `names` was ready after `since`; their delays from `from`.
    std::vector<double> wait_all(const std::vector<std::string>& names, Clock::time_point since,
                                 Clock::time_point from) {
        const auto deadline = Clock::now() + 60s;
        for (;;) {
            std::vector<double> delays;
            {
                std::lock_guard lock(mutex_);
                for (const auto& name : names) {
                    auto it = ready_.find(name);
                    if (it == ready_.end() || it->second < since) break;
                    delays.push_back(
                        std::chrono::duration<double, std::milli>(it->second - from).count());
                }
            }
            if (delays.size() == names.size()) return delays;
            if (Clock::now() > deadline) throw std::runtime_error("sessions not ready in 60 s");
            std::this_thread::sleep_for(1ms);
        }
    }

  private:
    std::mutex mutex_;
    std::map<std::string, Clock::time_point> ready_;
    mqttx::EventSubscription subscription_;
};

struct Spread {
    double median_ms;
    double max_ms;
};

Spread spread(std::vector<double> delays) {
    std::sort(delays.begin(), delays.end());
    return {delays[delays.size() / 2], delays.back()};
}

// The setup of the issue that asked for this: a fast backoff without jitter, so that what
// is left is the library's own delay.
mqttx::SessionBuilder fast_reconnect(mqttx::SessionBuilder builder) {
    builder.auto_reconnect({.initial = 20ms, .max = 50ms, .multiplier = 2.0, .jitter = 0.0});
    return builder;
}

std::vector<std::string> add_idle_sessions(mqttx::SessionManager& manager, int sessions,
                                           const std::vector<std::string>& brokers) {
    std::vector<std::string> names;
    for (int i = 0; i < sessions; ++i) {
        names.push_back("idle-" + std::to_string(i));
        manager.add_session(
            fast_reconnect(mqttx::quick_connect(names.back(), brokers.front()).brokers(brokers))
                .build());
        manager.connect(names.back());
        manager.subscribe_to(names.back(), "bench/idle/" + names.back(), 1,
                             [](const mqttx::Message&) {});
    }
    manager.wait_for_all_sessions(30s);
    return names;
}

// The expected "lost its connection" and "connect failed" lines of every round are not
// printed.
mqttx::ManagerOptions outage_options(bool workaround) {
    mqttx::ManagerOptions options;
    options.wake_paho_on_connect = workaround;
    options.logger = spdlog::default_logger()->clone("mqttx-bench");
    options.logger->set_level(spdlog::level::err);
    return options;
}

Spread measure_restart(int rounds, int sessions, bool workaround) {
    mqttx::test::Mosquitto broker;
    mqttx::SessionManager manager(outage_options(workaround));
    ReadyClock clock(manager);
    const auto names = add_idle_sessions(manager, sessions, {broker.uri()});
    std::vector<double> delays;
    for (int round = 0; round < rounds; ++round) {
        broker.kill();
        const auto killed = Clock::now();
        std::this_thread::sleep_for(400ms);
        broker.start();  // returns once the broker accepts TCP (a few ms late at most)
        const auto accepting = Clock::now();
        for (double d : clock.wait_all(names, killed, accepting)) delays.push_back(d);
    }
    return spread(delays);
}

Spread measure_failover(int rounds, int sessions, bool workaround) {
    mqttx::test::Mosquitto first;
    mqttx::test::Mosquitto second;
    mqttx::SessionManager manager(outage_options(workaround));
    ReadyClock clock(manager);
    const auto names = add_idle_sessions(manager, sessions, {first.uri(), second.uri()});
    std::vector<double> delays;
    mqttx::test::Mosquitto* on = &first;  // every session starts on its first broker
    mqttx::test::Mosquitto* other = &second;
    for (int round = 0; round < rounds; ++round) {
        on->kill();
        const auto killed = Clock::now();
        for (double d : clock.wait_all(names, killed, killed)) delays.push_back(d);
        on->start();  // back for the next round, which kills the other
        std::swap(on, other);
    }
    return spread(delays);
}

int run_outage(const char* mode, int argc, char** argv) {
    const bool restart = std::strcmp(mode, "--restart") == 0;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
    const int sessions = argc > 3 ? std::atoi(argv[3]) : 3;
    if (rounds < 1 || sessions < 1) throw std::runtime_error("rounds and sessions must be > 0");
    if (restart) {
        std::printf(
            "%d idle sessions, broker killed and started again 0.4 s later, %d rounds;\n"
            "from the broker accepting again to each session ready\n",
            sessions, rounds);
    } else {
        std::printf(
            "%d idle sessions with two brokers, the one they are on killed, %d rounds;\n"
            "from the kill to each session ready on the other broker\n",
            sessions, rounds);
    }
    std::printf("%-22s %14s %14s\n", "wake_paho_on_connect", "median (ms)", "max (ms)");
    for (bool workaround : {true, false}) {
        const auto s = restart ? measure_restart(rounds, sessions, workaround)
                               : measure_failover(rounds, sessions, workaround);
        std::printf("%-22s %14.1f %14.1f\n", workaround ? "on" : "off", s.median_ms, s.max_ms);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc > 1 &&
            (std::strcmp(argv[1], "--restart") == 0 || std::strcmp(argv[1], "--failover") == 0)) {
            return run_outage(argv[1], argc, argv);
        }
        std::unique_ptr<mqttx::test::Mosquitto> own;
        std::string broker = argc > 1 ? argv[1] : "";
        const int sessions = argc > 2 ? std::atoi(argv[2]) : 10;
        if (broker.empty() || broker == "-") {
            own = std::make_unique<mqttx::test::Mosquitto>();
            broker = own->uri();
        }
        std::printf("broker %s, %d sessions connected one at a time, then %d at once\n",
                    broker.c_str(), sessions, sessions);
        std::printf("%-22s %14s %14s %16s\n", "wake_paho_on_connect", "median (ms)", "max (ms)",
                    "batch (ms)");
        for (bool workaround : {true, false}) {
            const auto f = measure(broker, sessions, workaround);
            std::printf("%-22s %14.2f %14.2f %16.2f\n", workaround ? "on" : "off", f.median_ms,
                        f.max_ms, f.batch_ms);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
