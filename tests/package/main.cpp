// Builds against the installed mqttx package and makes one QoS 1 round trip.
#include <mqttx/metrics_server.hpp>
#include <mqttx/mqttx.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    if (argc < 2) {
        std::fprintf(stderr, "usage: consumer <broker-uri>\n");
        return 2;
    }
    try {
        mqttx::SessionManager manager;
        auto session = manager.add_session(mqttx::quick_connect("consumer", argv[1]).build());
        std::mutex mutex;
        std::condition_variable arrived;
        std::string payload;
        auto route = session->subscribe("package/test", 1, [&](const mqttx::Message& message) {
            std::lock_guard lock(mutex);
            payload = message.payload_string();
            arrived.notify_one();
        });
        manager.connect_all();
        manager.wait_for_session("consumer", 10s);
        session->publish("package/test", "installed package works", 1).wait();
        std::unique_lock lock(mutex);
        if (!arrived.wait_for(lock, 10s, [&] { return !payload.empty(); })) {
            std::fprintf(stderr, "no message arrived\n");
            return 1;
        }
        if (payload != "installed package works") {
            std::fprintf(stderr, "wrong payload: %s\n", payload.c_str());
            return 1;
        }
        mqttx::MetricsServer server(manager, {.port = 0});
        if (server.port() <= 0 ||
            manager.prometheus_text().find(
                "mqtt_session_messages_sent_total{session=\"consumer\"} 1\n") ==
                std::string::npos) {
            std::fprintf(stderr, "metrics of the installed package are wrong\n");
            return 1;
        }
        std::printf("round trip and metrics through the installed package: ok\n");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
