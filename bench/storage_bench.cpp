// Storage backends: put/get/remove per second, then QoS 1 publishing through a
// persistent session with each backend, next to raw Paho with and without its own
// file persistence, against the same private mosquitto in one run.
//   mqttx-storage-bench [messages]      (default 2000)
#include <mqtt/async_client.h>
#include <mqttx/mqttx.hpp>
#include <mqttx/storage.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <string>

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

double through_mqttx(const std::string& broker, std::function<void(mqttx::SessionBuilder&)> storage,
                     int count) {
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
    return per_second(count, start);
}

}  // namespace

int main(int argc, char** argv) {
    const int count = argc > 1 ? std::atoi(argv[1]) : 2000;
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
        std::printf("%-40s %10.0f\n", "mqttx, clean session",
                    through_mqttx(
                        broker.uri(), [](auto&) {}, count));
        std::printf(
            "%-40s %10.0f\n", "mqttx, persistent, memory storage",
            through_mqttx(
                broker.uri(), [](auto& b) { b.client_id("bench-mem").persistent(); }, count));
        std::printf("%-40s %10.0f\n", "mqttx, persistent, file storage",
                    through_mqttx(
                        broker.uri(),
                        [&](auto& b) {
                            b.client_id("bench-file").persistent().file_storage(dir + "/mqttx");
                        },
                        count));
        std::printf("%-40s %10.0f\n", "mqttx, persistent, file storage, no sync",
                    through_mqttx(
                        broker.uri(),
                        [&](auto& b) {
                            b.client_id("bench-file-nosync")
                                .persistent()
                                .file_storage(dir + "/mqttx-nosync", false);
                        },
                        count));
        std::printf("%-40s %10.0f\n", "mqttx, persistent, Redis storage",
                    through_mqttx(
                        broker.uri(),
                        [&](auto& b) {
                            b.client_id("bench-redis").persistent().redis_storage(redis.address());
                        },
                        count));
        mqttx::test::remove_tree(dir);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
