// Storage backends: put/get/remove per second, then QoS 1 publishing through a
// persistent session with each backend, next to raw Paho with and without its own
// file persistence, against the same private mosquitto in one run; then an outage:
// messages published while the broker is away, what they cost in memory, and how
// fast they go once it is back.
//   mqttx-storage-bench [messages] [outage messages]      (defaults 2000, 300000)
#include <mqtt/async_client.h>
#include <mqttx/mqttx.hpp>
#include <mqttx/storage.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "support/collector.hpp"
#include "support/fault_proxy.hpp"
#include "support/mosquitto.hpp"
#include "support/redis.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double per_second(int count, Clock::time_point start) {
    return count / std::chrono::duration<double>(Clock::now() - start).count();
}

void operations(const char* name, mqttx::Storage& storage, int count) {
    storage.open("bench-client");
    const std::string value(256, 'v');
    auto start = Clock::now();
    for (int i = 0; i < count; ++i) storage.put("k" + std::to_string(i), value);
    const double puts = per_second(count, start);
    start = Clock::now();
    for (int i = 0; i < count; ++i) {
        if (!storage.get("k" + std::to_string(i))) std::abort();
    }
    const double gets = per_second(count, start);
    start = Clock::now();
    for (int i = 0; i < count; ++i) storage.remove("k" + std::to_string(i));
    const double removes = per_second(count, start);
    std::printf("%-14s %12.0f %12.0f %12.0f\n", name, puts, gets, removes);
}

// QoS 1 publishes with at most 20 unconfirmed, as the sessions do.
double raw_paho(const std::string& broker, const std::string& persist_dir, int count) {
    mqtt::create_options create(MQTTVERSION_3_1_1, 20);
    auto client =
        persist_dir.empty()
            ? std::make_unique<mqtt::async_client>(broker, "bench-raw", create, nullptr)
            : std::make_unique<mqtt::async_client>(broker, "bench-raw-file", create, persist_dir);
    client->connect(mqtt::connect_options_builder().clean_session(persist_dir.empty()).finalize())
        ->wait();
    std::deque<mqtt::delivery_token_ptr> window;
    const std::string payload(64, 'x');
    const auto start = Clock::now();
    for (int i = 0; i < count; ++i) {
        if (window.size() >= 20) {
            window.front()->wait();
            window.pop_front();
        }
        window.push_back(client->publish("bench/storage", payload, 1, false));
    }
    for (auto& token : window) token->wait();
    const double rate = per_second(count, start);
    client->disconnect()->wait();
    return rate;
}

void through_mqttx(const char* name, const std::string& broker,
                   std::function<void(mqttx::SessionBuilder&)> storage, int count) {
    mqttx::SessionManager manager;
    auto builder = mqttx::quick_connect("bench", broker);
    storage(builder);
    auto session = manager.add_session(builder.build());
    manager.connect_all();
    manager.wait_for_all_sessions(30s);
    std::deque<mqttx::DeliveryToken> tokens;
    const std::string payload(64, 'x');
    const auto start = Clock::now();
    for (int i = 0; i < count; ++i) tokens.push_back(session->publish("bench/storage", payload, 1));
    for (auto& token : tokens) token.wait();
    const double rate = per_second(count, start);
    std::printf("%-40s %10.0f", name, rate);
    if (const auto storage_metrics = session->storage_metrics();
        storage_metrics && storage_metrics->syncs > 0) {
        std::printf("   %.1f records per fsync",
                    static_cast<double>(storage_metrics->synced_records) / storage_metrics->syncs);
    }
    std::printf("\n");
}

std::size_t resident_kib() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
    }
    return 0;
}

// `count` QoS 1 messages of 64 bytes published while the publisher's broker is away (a
// proxy that refuses), tokens let go as a fire-and-forget publisher does; then the
// proxy lets it through and a subscriber on the broker counts them and checks order.
void outage(const char* name, const mqttx::test::Mosquitto& broker,
            std::function<void(mqttx::SessionBuilder&)> storage, int count) {
    mqttx::test::FaultProxy proxy(broker.port());
    proxy.set_refusing(true);
    mqttx::SessionManager manager;
    auto watcher = manager.add_session(mqttx::quick_connect("watcher", broker.uri()).build());
    std::atomic<int> received{0};
    std::atomic<int> out_of_order{0};
    auto route = watcher->subscribe("bench/outage", 1, [&](const mqttx::Message& message) {
        const int expected = received.load();
        if (message.payload().substr(0, message.payload().find(' ')) != std::to_string(expected)) {
            ++out_of_order;
        }
        received.fetch_add(1);
    });
    mqttx::PerformanceOptions performance;
    performance.max_pending = count;
    auto builder = mqttx::quick_connect("outage", proxy.uri())
                       .performance(performance)
                       .auto_reconnect(mqttx::ReconnectPolicy{50ms, 200ms, 2.0, 0.0});
    storage(builder);
    auto publisher = manager.add_session(builder.build());
    manager.connect_all();
    manager.wait_for_session("watcher", 30s);
    const auto before = resident_kib();
    std::string payload(64, 'x');
    const auto start = Clock::now();
    for (int i = 0; i < count; ++i) {
        const auto number = std::to_string(i) + ' ';
        payload.replace(0, number.size(), number);
        publisher->publish("bench/outage", payload, 1);
    }
    const double accepted = per_second(count, start);
    const auto grown = resident_kib() - before;
    const auto spilled = publisher->metrics().outbox_spilled;
    const auto back = Clock::now();
    proxy.set_refusing(false);
    while (received.load() < count && Clock::now() - back < 600s) {
        std::this_thread::sleep_for(10ms);
    }
    const double drained = per_second(received.load(), back);
    std::printf("%-32s %9.0f %9.1f MiB %8.0f B %9llu %9.0f %6d/%d %5d\n", name, accepted,
                grown / 1024.0, grown * 1024.0 / count, static_cast<unsigned long long>(spilled),
                drained, received.load(), count, out_of_order.load());
}

}  // namespace

int main(int argc, char** argv) {
    const int count = argc > 1 ? std::atoi(argv[1]) : 2000;
    const int outage_count = argc > 2 ? std::atoi(argv[2]) : 300000;
    try {
        mqttx::test::RedisServer redis;
        mqttx::test::Mosquitto broker;
        const std::string dir = mqttx::test::make_temp_dir("mqttx-storage-bench-");
        mqttx::StorageOptions redis_options;
        redis_options.type = mqttx::StorageType::redis;
        redis_options.redis_address = redis.address();

        std::printf("storage operations per second (values of 256 bytes, %d of each)\n", count);
        std::printf("%-14s %12s %12s %12s\n", "backend", "put/s", "get/s", "remove/s");
        operations("memory", *mqttx::make_memory_storage(), count);
        operations("file", *mqttx::make_file_storage(dir + "/ops"), count);
        operations("file, no sync", *mqttx::make_file_storage(dir + "/ops-nosync", false), count);
        operations("redis", *mqttx::make_redis_storage(redis_options), count);

        std::printf("\nQoS 1 publishing, %d messages of 64 bytes, 20 in flight (messages/s)\n",
                    count);
        std::printf("%-40s %10.0f\n", "raw Paho, no persistence",
                    raw_paho(broker.uri(), "", count));
        std::printf("%-40s %10.0f\n", "raw Paho, its own file persistence",
                    raw_paho(broker.uri(), dir + "/paho", count));
        through_mqttx(
            "mqttx, clean session", broker.uri(), [](auto&) {}, count);
        through_mqttx(
            "mqttx, persistent, memory storage", broker.uri(),
            [](auto& b) { b.client_id("bench-mem").persistent(); }, count);
        through_mqttx(
            "mqttx, persistent, file storage", broker.uri(),
            [&](auto& b) { b.client_id("bench-file").persistent().file_storage(dir + "/mqttx"); },
            count);
        through_mqttx(
            "mqttx, persistent, file storage, no sync", broker.uri(),
            [&](auto& b) {
                b.client_id("bench-file-nosync")
                    .persistent()
                    .file_storage(dir + "/mqttx-nosync", false);
            },
            count);
        through_mqttx(
            "mqttx, persistent, Redis storage", broker.uri(),
            [&](auto& b) {
                b.client_id("bench-redis").persistent().redis_storage(redis.address());
            },
            count);

        if (outage_count > 0) {
            std::printf(
                "\nAn outage: %d QoS 1 messages of 64 bytes published while the broker is away,\n"
                "tokens let go; then the broker is back (accepted and delivered: messages/s)\n",
                outage_count);
            std::printf("%-32s %9s %13s %10s %9s %9s %13s %5s\n", "session", "accepted",
                        "memory grew", "per msg", "spilled", "delivered", "arrived", "order");
            // The persistent one first: memory the other frees stays in the process.
            outage(
                "persistent, file storage", broker,
                [&](auto& b) {
                    b.client_id("bench-outage-file").persistent().file_storage(dir + "/outage");
                },
                outage_count);
            outage(
                "clean session (memory)", broker, [](auto&) {}, outage_count);
        }
        mqttx::test::remove_tree(dir);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
