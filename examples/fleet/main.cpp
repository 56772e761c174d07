// Fleet: many sessions in one program. Ten "devices" publish readings; a manager-wide
// route counts the command each session sees (on Paho's receive thread: a counter needs
// no other thread), a channel collects the readings for one consumer thread, and
// events report connects and reconnects.
//   mqttx-fleet [broker-uri] [devices]      (default tcp://127.0.0.1:1883, 10)
#include <mqttx/mqttx.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    const std::string broker = argc > 1 ? argv[1] : "tcp://127.0.0.1:1883";
    const int devices = argc > 2 ? std::atoi(argv[2]) : 10;
    try {
        mqttx::SessionManager manager;
        auto connected =
            manager.on_event(mqttx::EventType::session_connected, [](const mqttx::Event& e) {
                const auto& info = std::get<mqttx::ConnectInfo>(e.data);
                std::printf("%s connected to %s\n", e.session.c_str(), info.broker.c_str());
            });

        manager.add_session(mqttx::quick_connect("collector", broker).build());
        for (int i = 0; i < devices; ++i) {
            manager.add_session(
                mqttx::quick_connect("device-" + std::to_string(i), broker).build());
        }

        // Readings from every device, into one bounded channel on the collector only.
        auto [readings, route] = manager.listen_to("collector", "fleet/+/temperature", 1);
        // Commands to every session, present and future. The handler only counts, so it
        // runs where Paho delivers the message, without a hand-off to a dispatcher thread.
        std::atomic<int> commands{0};
        auto command_route = manager.handle(
            "fleet/all/command", [&](const mqttx::Message&) { ++commands; }, 0,
            mqttx::SubscribeOptions{.handler_thread = mqttx::HandlerThread::receive_thread});

        manager.connect_all();  // all at once; returns immediately
        manager.wait_for_all_sessions(30s);

        for (int i = 0; i < devices; ++i) {
            const std::string name = "device-" + std::to_string(i);
            manager.publish_to(name, "fleet/" + name + "/temperature",
                               std::to_string(20 + i) + ".5", 1);
        }
        manager.publish_to("collector", "fleet/all/command", "report", 1).wait();

        for (int received = 0; received < devices; ++received) {
            auto message = readings.pop_for(10s);
            if (!message) {
                std::fprintf(stderr, "only %d of %d readings arrived\n", received, devices);
                return 1;
            }
            std::printf("reading %.*s = %.*s\n", static_cast<int>(message->topic().size()),
                        message->topic().data(), static_cast<int>(message->payload().size()),
                        message->payload().data());
        }
        const auto sessions = devices + 1;
        for (auto start = std::chrono::steady_clock::now();
             commands < sessions && std::chrono::steady_clock::now() - start < 10s;) {
            std::this_thread::sleep_for(10ms);
        }
        std::printf("the command reached %d of %d sessions\n", commands.load(), sessions);
        return commands == sessions ? 0 : 1;
    } catch (const mqttx::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
