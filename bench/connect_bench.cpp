// Connect latency of a session added while others are connected and idle, with and
// without the PahoWaker workaround, plus the time to connect a batch at once.
//   mqttx-connect-bench [broker-uri] [sessions]      (default: own mosquitto, 10)
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
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

}  // namespace

int main(int argc, char** argv) {
    try {
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
