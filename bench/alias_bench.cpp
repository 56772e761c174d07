// What MQTT 5 topic aliases save (PerformanceOptions::topic_aliases): bytes on the wire
// and time, publishing QoS 0 messages on long topics, aliases off and on interleaved.
//   mqttx-alias-bench [messages] [rounds] [topic_bytes]   (default 100000, 3, 200)
// Starts a private mosquitto (which accepts 10 aliases per client). The mqttx publisher
// connects through a counting TCP proxy and sends `messages` QoS 0 messages of 16 bytes,
// round-robin over 8 topics of `topic_bytes` bytes; a raw Paho subscriber counts them.
// Prints, per mode, the bytes the publisher sent, per message, and messages/s from the
// first publish to the last message received.
#include <mqtt/async_client.h>
#include <mqttx/mqttx.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class Sink {
  public:
    explicit Sink(const std::string& broker)
        : client_(broker, "alias-bench-sink", mqtt::create_options(MQTTVERSION_5)) {
        client_.set_message_callback([this](mqtt::const_message_ptr) {
            if (received_.fetch_add(1) + 1 >= target_.load()) {
                std::lock_guard lock(mutex_);
                done_.notify_all();
            }
        });
        client_.connect(mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).finalize())
            ->wait();
        client_.subscribe("alias/#", 0)->wait();
    }
    ~Sink() { client_.disconnect()->wait(); }
    void expect(long count) {
        received_ = 0;
        target_ = count;
    }
    long wait() {
        std::unique_lock lock(mutex_);
        done_.wait_for(lock, 120s, [this] { return received_.load() >= target_.load(); });
        return received_.load();
    }

  private:
    mqtt::async_client client_;
    std::atomic<long> received_{0};
    std::atomic<long> target_{0};
    std::mutex mutex_;
    std::condition_variable done_;
};

struct Result {
    double bytes_per_message = 0;
    double rate = 0;
    long received = 0;
};

Result run(mqttx::test::FaultProxy& proxy, Sink& sink, const std::vector<std::string>& topics,
           long messages, std::uint16_t aliases) {
    mqttx::SessionManager manager;
    mqttx::PerformanceOptions performance;
    performance.topic_aliases = aliases;
    performance.max_pending = static_cast<int>(messages) + 1;  // never full
    auto session = manager.add_session(mqttx::quick_connect("pub", proxy.uri())
                                           .protocol(mqttx::Protocol::v5)
                                           .performance(performance)
                                           .build());
    manager.connect_all();
    manager.wait_for_all_sessions(20s);
    const std::string payload(16, 'p');
    sink.expect(messages);
    const auto bytes_before = proxy.bytes_from_clients();
    const auto start = Clock::now();
    mqttx::DeliveryToken last;
    for (long i = 0; i < messages; ++i) {
        last = session->publish(topics[static_cast<std::size_t>(i) % topics.size()], payload);
    }
    last.wait();
    Result result;
    result.received = sink.wait();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result.bytes_per_message =
        static_cast<double>(proxy.bytes_from_clients() - bytes_before) / messages;
    result.rate = static_cast<double>(result.received) / seconds;
    return result;
}

}  // namespace

int main(int argc, char** argv) {
    const long messages = argc > 1 ? std::atol(argv[1]) : 100000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    const std::size_t topic_bytes = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 200;
    mqttx::test::Mosquitto broker;
    mqttx::test::FaultProxy proxy(broker.port());
    Sink sink(broker.uri());
    std::vector<std::string> topics;
    for (int i = 0; i < 8; ++i) {
        std::string topic = "alias/" + std::to_string(i) + "/";
        topic.resize(std::max(topic.size(), topic_bytes), 'x');
        topics.push_back(topic);
    }
    std::printf("%ld QoS 0 messages of 16 bytes on 8 topics of %zu bytes, %d rounds\n", messages,
                topic_bytes, rounds);
    std::vector<double> off_rates, on_rates, off_bytes, on_bytes;
    for (int round = 0; round < rounds; ++round) {
        for (const std::uint16_t aliases : {std::uint16_t{0}, std::uint16_t{10}}) {
            const auto r = run(proxy, sink, topics, messages, aliases);
            std::printf(
                "round %d aliases %-3s %8.1f bytes/message %10.0f messages/s (%ld received)\n",
                round + 1, aliases ? "on" : "off", r.bytes_per_message, r.rate, r.received);
            (aliases ? on_rates : off_rates).push_back(r.rate);
            (aliases ? on_bytes : off_bytes).push_back(r.bytes_per_message);
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::printf(
        "median: off %.1f bytes/message %.0f messages/s; on %.1f bytes/message %.0f "
        "messages/s; bytes x%.2f, rate x%.2f\n",
        median(off_bytes), median(off_rates), median(on_bytes), median(on_rates),
        median(on_bytes) / median(off_bytes), median(on_rates) / median(off_rates));
    return 0;
}
