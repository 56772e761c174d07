// mqttx-crash-child: the "program that crashes" of the storage crash tests.
//   mqttx-crash-child publish <broker> <client-id> <file|redis> <dir|host:port> <count> <qos>
//       publishes <count> messages "0".."count-1" on crash/t, prints "accepted <count>"
//       once publish() has returned for all of them, then waits to be killed.
//   mqttx-crash-child drain <broker> <client-id> <file|redis> <dir|host:port>
//       starts the same persistent session, waits until its outbox and in-flight
//       messages are gone, prints "drained" and exits 0 (1 after 60 s).
#include <mqttx/mqttx.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    using namespace std::chrono_literals;
    if (argc < 6) {
        std::fprintf(stderr, "usage: see the comment at the top of crash_child.cpp\n");
        return 2;
    }
    const std::string mode = argv[1];
    try {
        auto builder = mqttx::quick_connect("crashy", argv[2])
                           .client_id(argv[3])
                           .persistent()
                           .auto_reconnect({50ms, 500ms, 2.0, 0.2});
        if (std::string(argv[4]) == "redis") {
            builder.redis_storage(argv[5]);
        } else {
            builder.file_storage(argv[5]);
        }
        mqttx::SessionManager manager;
        auto session = manager.add_session(builder.build());
        manager.connect_all();
        if (mode == "publish" && argc == 8) {
            const int count = std::stoi(argv[6]);
            const int qos = std::stoi(argv[7]);
            for (int i = 0; i < count; ++i) session->publish("crash/t", std::to_string(i), qos);
            std::printf("accepted %d\n", count);
            std::fflush(stdout);
            for (;;) std::this_thread::sleep_for(1s);  // until SIGKILL
        }
        if (mode == "drain") {
            const auto deadline = std::chrono::steady_clock::now() + 60s;
            while (std::chrono::steady_clock::now() < deadline) {
                const auto m = session->metrics();
                if (session->is_connected() && m.outbox_waiting == 0 && m.in_flight == 0) {
                    std::printf("drained\n");
                    std::fflush(stdout);
                    return 0;
                }
                std::this_thread::sleep_for(10ms);
            }
            std::fprintf(stderr, "not drained within 60 s\n");
            return 1;
        }
        std::fprintf(stderr, "bad arguments\n");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
