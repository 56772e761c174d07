// Metrics: two sessions exchange messages while a MetricsServer serves the manager's
// Prometheus text at http://127.0.0.1:<port>/metrics with /healthz and /readyz. The
// example scrapes itself once and prints the session lines, then keeps serving.
//   mqttx-metrics [broker-uri] [seconds to serve, 0: exit after the scrape] [port]
//   curl http://127.0.0.1:9464/metrics
#include <httplib.h>
#include <mqttx/metrics_server.hpp>
#include <mqttx/mqttx.hpp>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    const std::string broker = argc > 1 ? argv[1] : "tcp://127.0.0.1:1883";
    const int seconds = argc > 2 ? std::stoi(argv[2]) : 60;
    const int port = argc > 3 ? std::stoi(argv[3]) : 9464;
    try {
        mqttx::SessionManager manager;
        auto sensor = manager.add_session(mqttx::quick_connect("sensor", broker).build());
        auto dashboard = manager.add_session(mqttx::quick_connect("dashboard", broker).build());
        auto route = dashboard->subscribe("plant/+/temperature", 1, [](const mqttx::Message&) {});
        manager.connect_all();
        manager.wait_for_all_sessions(10s);

        mqttx::MetricsServer server(manager, {.port = port});
        std::printf("serving http://127.0.0.1:%d/metrics, /healthz and /readyz\n", server.port());

        for (int i = 0; i < 100; ++i) {
            sensor->publish("plant/" + std::to_string(i % 4) + "/temperature", "21.5", 1).wait();
        }
        // What Prometheus would see, fetched the way it would.
        httplib::Client client("127.0.0.1", server.port());
        auto response = client.Get("/metrics");
        if (!response || response->status != 200) {
            std::fprintf(stderr, "scraping /metrics failed\n");
            return 1;
        }
        std::istringstream lines(response->body);
        std::string line;
        bool saw_sent = false;
        while (std::getline(lines, line)) {
            if (line.starts_with("mqtt_session_messages_") || line.starts_with("mqtt_route_")) {
                std::printf("%s\n", line.c_str());
            }
            saw_sent =
                saw_sent || line == "mqtt_session_messages_sent_total{session=\"sensor\"} 100";
        }
        if (!saw_sent) {
            std::fprintf(stderr, "the scrape did not count the 100 messages sent\n");
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
