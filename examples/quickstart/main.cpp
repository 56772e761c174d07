// Quick start: two sessions on one broker; one subscribes, the other publishes at
// QoS 0, 1 and 2; every message received is printed.
//   mqttx-quickstart [broker-uri]     (default tcp://127.0.0.1:1883)
#include <mqttx/mqttx.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    const std::string broker = argc > 1 ? argv[1] : "tcp://127.0.0.1:1883";
    try {
        mqttx::SessionManager manager;
        auto subscriber = manager.add_session(mqttx::quick_connect("subscriber", broker).build());
        auto publisher = manager.add_session(mqttx::quick_connect("publisher", broker).build());

        std::mutex mutex;
        std::condition_variable received_all;
        int received = 0;
        auto route = subscriber->subscribe("demo/#", 2, [&](const mqttx::Message& message) {
            std::printf("received on %.*s: %.*s (QoS %d)\n",
                        static_cast<int>(message.topic().size()), message.topic().data(),
                        static_cast<int>(message.payload().size()), message.payload().data(),
                        message.qos());
            std::lock_guard lock(mutex);
            ++received;
            received_all.notify_one();
        });

        manager.connect_all();
        manager.wait_for_all_sessions(10s);
        std::printf("connected to %s\n", broker.c_str());

        for (int qos = 0; qos <= 2; ++qos) {
            const std::string topic = "demo/qos" + std::to_string(qos);
            const std::string payload = "hello at QoS " + std::to_string(qos);
            std::printf("sending  on %s: %s\n", topic.c_str(), payload.c_str());
            publisher->publish(topic, payload, qos).wait();  // until the broker has it
        }

        std::unique_lock lock(mutex);
        if (!received_all.wait_for(lock, 10s, [&] { return received == 3; })) {
            std::fprintf(stderr, "only %d of 3 messages arrived\n", received);
            return 1;
        }
        std::printf("all 3 messages went through\n");
        return 0;
    } catch (const mqttx::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
