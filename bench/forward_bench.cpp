// End-to-end forwarding between two brokers: an mqttx Forwarder against the forwarder
// people write by hand (two raw Paho C++ clients, the message callback of one
// publishing on the other), same brokers, same load, interleaved in one run; and, when
// built with the bridge, the mqttx-bridge program as one instance and as two sharing
// the stream (share_group).
//   mqttx-forward-bench [messages] [rounds] [mqttx-bridge path]   (default 20000, 3)
// Starts two private mosquittos. A raw Paho publisher sends QoS 1 messages to the
// "site" broker (at most 20 in flight); a raw Paho subscriber on the "cloud" broker
// counts them. Prints messages/s end to end and heap allocations per message (a
// counting operator new; in-process forwarders only), for each forwarder and their ratio.
#include <httplib.h>
#include <mqtt/async_client.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "allocation_counter.hpp"
#include "support/child_process.hpp"
#include "support/mosquitto.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Counts what reaches the cloud broker's subscriber.
class Sink {
  public:
    explicit Sink(const std::string& broker) : client_(broker, "bench-sink") {
        client_.set_message_callback([this](mqtt::const_message_ptr) {
            if (received_.fetch_add(1) + 1 >= target_.load()) {
                std::lock_guard lock(mutex_);
                done_.notify_all();
            }
        });
        client_.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
        client_.subscribe("bench/out/#", 1)->wait();
    }
    ~Sink() { client_.disconnect()->wait(); }
    void expect(long count) {
        received_ = 0;
        target_ = count;
    }
    bool wait() {
        std::unique_lock lock(mutex_);
        return done_.wait_for(lock, 120s, [this] { return received_.load() >= target_.load(); });
    }

  private:
    mqtt::async_client client_;
    std::atomic<long> received_{0};
    std::atomic<long> target_{0};
    std::mutex mutex_;
    std::condition_variable done_;
};

// Publishes QoS 1 messages on the site broker, at most 20 unacknowledged.
void publish_all(mqtt::async_client& publisher, int count) {
    std::deque<mqtt::delivery_token_ptr> window;
    const std::string payload(64, 'x');
    for (int i = 0; i < count; ++i) {
        if (window.size() >= 20) {
            window.front()->wait();
            window.pop_front();
        }
        window.push_back(
            publisher.publish("bench/in/" + std::to_string(i % 10), payload, 1, false));
    }
    for (auto& token : window) token->wait();
}

// The hand-written forwarder: what the message callback of one client does with the other.
class RawForwarder {
  public:
    RawForwarder(const std::string& site, const std::string& cloud)
        : source_(site, "bench-raw-source"), target_(cloud, "bench-raw-target") {
        target_.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
        source_.set_message_callback([this](mqtt::const_message_ptr message) {
            try {
                target_.publish("bench/out/" + message->get_topic().substr(9),
                                message->get_payload_ref(), message->get_qos(), false);
            } catch (const mqtt::exception&) {
                // buffer full: the usual hand-written forwarder drops it
            }
        });
        source_.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
        source_.subscribe("bench/in/#", 1)->wait();
    }
    ~RawForwarder() {
        source_.disconnect()->wait();
        target_.disconnect()->wait();
    }

  private:
    mqtt::async_client source_;
    mqtt::async_client target_;
};

class MqttxForwarder {
  public:
    MqttxForwarder(const std::string& site, const std::string& cloud) {
        manager_.add_session(mqttx::quick_connect("site", site).build());
        manager_.add_session(mqttx::quick_connect("cloud", cloud).build());
        manager_.forwarders().add(mqttx::ForwarderBuilder("bench")
                                      .source("site", {"bench/in/#"})
                                      .target("cloud")
                                      .map_topic("bench/in/#", "bench/out/{#}")
                                      .build());
        manager_.connect_all();
        manager_.wait_for_all_sessions(30s);
    }

  private:
    mqttx::SessionManager manager_;
};

// mqttx-bridge processes running one config between the two brokers; with several,
// the forwarder's share_group splits the stream between them.
class BridgeProcesses {
  public:
    static inline std::string program;  // empty: no bridge runs

    BridgeProcesses(const std::string& site, const std::string& cloud, int instances)
        : dir_(mqttx::test::make_temp_dir("mqttx-forward-bench-")) {
        const auto config = dir_ + "/bridge.toml";
        std::ofstream(config) << "[[sessions]]\nname = \"site\"\nbroker = \"" << site
                              << "\"\nclient_id = \"bench-site\"\n\n[[sessions]]\nname = "
                                 "\"cloud\"\nbroker = \""
                              << cloud
                              << "\"\nclient_id = \"bench-cloud\"\n\n[[forwarders]]\nname = "
                                 "\"bench\"\ntarget = \"cloud\"\n"
                              << (instances > 1 ? "share_group = \"bench\"\n" : "")
                              << "[[forwarders.sources]]\nsession = \"site\"\nfilters = "
                                 "[\"bench/in/#\"]\n[[forwarders.mappings]]\nfrom = "
                                 "\"bench/in/#\"\nto = \"bench/out/{#}\"\n";
        for (int i = 0; i < instances; ++i) {
            const int port = mqttx::test::free_port();
            auto& process = processes_.emplace_back(std::make_unique<mqttx::test::ChildProcess>());
            process->spawn(program,
                           {"--config", config, "--instance", std::to_string(i), "--listen",
                            "127.0.0.1:" + std::to_string(port), "--log-level", "warn"},
                           dir_ + "/bridge-" + std::to_string(i) + ".log");
            httplib::Client http("127.0.0.1", port);
            const bool ready = mqttx::test::wait_until(
                [&] {
                    auto answer = http.Get("/readyz");
                    return answer && answer->status == 200;
                },
                30s);
            if (!ready) {
                stop();  // a constructor that throws gets no destructor
                throw std::runtime_error("mqttx-bridge did not get ready within 30 s");
            }
        }
    }
    ~BridgeProcesses() { stop(); }

  private:
    void stop() noexcept {
        for (auto& process : processes_) process->stop(10s);
        processes_.clear();
        mqttx::test::remove_tree(dir_);
    }

    std::string dir_;
    std::vector<std::unique_ptr<mqttx::test::ChildProcess>> processes_;
};

struct OneBridge : BridgeProcesses {
    OneBridge(const std::string& site, const std::string& cloud)
        : BridgeProcesses(site, cloud, 1) {}
};
struct TwoBridges : BridgeProcesses {
    TwoBridges(const std::string& site, const std::string& cloud)
        : BridgeProcesses(site, cloud, 2) {}
};

struct Figures {
    double per_second;
    double allocations_per_message;
};

template <class Forwarder>
Figures run(const std::string& site, const std::string& cloud, mqtt::async_client& publisher,
            Sink& sink, int count) {
    Forwarder forwarder(site, cloud);
    sink.expect(count);
    const auto allocations = mqttx::bench::allocations();
    const auto start = Clock::now();
    publish_all(publisher, count);
    if (!sink.wait()) {
        std::fprintf(stderr, "not every message arrived within 120 s\n");
        std::exit(1);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return {count / seconds,
            static_cast<double>(mqttx::bench::allocations() - allocations) / count};
}

}  // namespace

int main(int argc, char** argv) {
    const int count = argc > 1 ? std::atoi(argv[1]) : 20000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
#ifdef MQTTX_BRIDGE
    BridgeProcesses::program = MQTTX_BRIDGE;
#endif
    if (argc > 3) BridgeProcesses::program = argv[3];
    const bool bridge = !BridgeProcesses::program.empty();
    try {
        mqttx::test::Mosquitto site_broker;
        mqttx::test::Mosquitto cloud_broker;
        const auto site = site_broker.uri();
        const auto cloud = cloud_broker.uri();
        Sink sink(cloud);
        mqtt::async_client publisher(site, "bench-publisher");
        publisher.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();

        std::printf("%d QoS 1 messages of 64 bytes per run, %d rounds\n", count, rounds);
        std::printf("%-6s %14s %14s %12s %12s %8s", "round", "raw Paho msg/s", "mqttx msg/s",
                    "raw allocs", "mqttx allocs", "ratio");
        if (bridge) std::printf(" %15s %15s", "bridge x1 msg/s", "bridge x2 msg/s");
        std::printf("\n");
        std::vector<double> ratios;
        std::vector<double> bridge_ratios[2];
        for (int round = 1; round <= rounds; ++round) {
            const auto raw = run<RawForwarder>(site, cloud, publisher, sink, count);
            const auto ours = run<MqttxForwarder>(site, cloud, publisher, sink, count);
            ratios.push_back(ours.per_second / raw.per_second);
            std::printf("%-6d %14.0f %14.0f %12.1f %12.1f %8.2f", round, raw.per_second,
                        ours.per_second, raw.allocations_per_message, ours.allocations_per_message,
                        ratios.back());
            if (bridge) {
                const auto one = run<OneBridge>(site, cloud, publisher, sink, count);
                const auto two = run<TwoBridges>(site, cloud, publisher, sink, count);
                bridge_ratios[0].push_back(one.per_second / ours.per_second);
                bridge_ratios[1].push_back(two.per_second / ours.per_second);
                std::printf(" %15.0f %15.0f", one.per_second, two.per_second);
            }
            std::printf("\n");
        }
        const auto median = [](std::vector<double> values) {
            std::sort(values.begin(), values.end());
            return values[values.size() / 2];
        };
        std::printf("median ratio (mqttx / raw Paho): %.2f\n", median(ratios));
        if (bridge) {
            std::printf("median ratio (bridge x1 / mqttx): %.2f, (bridge x2 / mqttx): %.2f\n",
                        median(bridge_ratios[0]), median(bridge_ratios[1]));
        }
        publisher.disconnect()->wait();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
