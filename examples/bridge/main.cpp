// Bridge: a forwarder carries sensors/+/temperature from a "site" broker to a "cloud"
// broker as storage/<room>/temp, tagged with where it came from. With one broker given,
// both ends use it (the copies then land next to the originals).
//   mqttx-bridge-example [site-uri] [cloud-uri]     (default tcp://127.0.0.1:1883 for both)
#include <mqttx/mqttx.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    const std::string site = argc > 1 ? argv[1] : "tcp://127.0.0.1:1883";
    const std::string cloud = argc > 2 ? argv[2] : site;
    try {
        mqttx::SessionManager manager;
        auto sensor = manager.add_session(mqttx::quick_connect("sensor", site).build());
        manager.add_session(
            mqttx::quick_connect("site", site).persistent().client_id("bridge-site").build());
        manager.add_session(
            mqttx::quick_connect("cloud", cloud).protocol(mqttx::Protocol::v5).build());
        auto dashboard = manager.add_session(
            mqttx::quick_connect("dashboard", cloud).protocol(mqttx::Protocol::v5).build());

        std::mutex mutex;
        std::condition_variable arrived;
        int count = 0;
        auto route = dashboard->subscribe("storage/#", 1, [&](const mqttx::Message& m) {
            std::string origin = "?";
            for (const auto& [key, value] : m.user_properties()) {
                if (key == "origin") origin = value;
            }
            std::printf("cloud got %.*s = %.*s (origin %s)\n", static_cast<int>(m.topic().size()),
                        m.topic().data(), static_cast<int>(m.payload().size()), m.payload().data(),
                        origin.c_str());
            std::lock_guard lock(mutex);
            ++count;
            arrived.notify_one();
        });
        manager.connect_all();
        manager.wait_for_all_sessions(10s);

        auto& bridge =
            manager.forwarders().add(mqttx::ForwarderBuilder("site-to-cloud")
                                         .source("site", {"sensors/+/temperature"})
                                         .target("cloud")
                                         .qos(1)
                                         .map_topic("sensors/+/temperature", "storage/{1}/temp")
                                         .metadata("origin", "site-1")
                                         .build());

        for (const char* room : {"kitchen", "attic", "cellar"}) {
            sensor->publish(std::string("sensors/") + room + "/temperature", "21.5", 1).wait();
        }
        std::unique_lock lock(mutex);
        if (!arrived.wait_for(lock, 10s, [&] { return count == 3; })) {
            std::fprintf(stderr, "only %d of 3 readings reached the cloud\n", count);
            return 1;
        }
        const auto metrics = bridge.metrics();
        std::printf("forwarded %llu, dropped %llu\n",
                    static_cast<unsigned long long>(metrics.forwarded),
                    static_cast<unsigned long long>(metrics.dropped));
        return 0;
    } catch (const mqttx::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
