// mqttx-crash-child: the "program that crashes" of the storage crash tests.
//   mqttx-crash-child publish <broker> <client-id> <file|file-nosync|redis> <dir|host:port> <count>
//   <qos>
//       publishes <count> messages "0".."count-1" on crash/t, prints "accepted <count>"
//       once publish() has returned for all of them, then waits to be killed.
//   mqttx-crash-child drain <broker> <client-id> <file|file-nosync|redis> <dir|host:port>
//       starts the same persistent session, waits until its outbox and in-flight
//       messages are gone, publishes "end" (QoS 2) on crash/t, prints "drained" and
//       exits 0 (1 after 60 s).
//   mqttx-crash-child forward <site> <cloud> <file|file-nosync|redis> <dir|host:port>
//       forwards fwd/# from the site broker to the cloud broker (at-least-once, both
//       sessions persistent with the given storage), prints "forwarding", runs until killed.
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
    const std::string storage = argv[4];
    auto with_storage = [&](mqttx::SessionBuilder builder) {
        if (storage == "redis") return std::move(builder.redis_storage(argv[5]));
        return std::move(builder.file_storage(argv[5], storage != "file-nosync"));
    };
    try {
        if (mode == "forward") {
            mqttx::SessionManager manager;
            const mqttx::ReconnectPolicy quick{50ms, 500ms, 2.0, 0.2};
            manager.add_session(with_storage(mqttx::quick_connect("site", argv[2])
                                                 .client_id("crash-forward-site")
                                                 .persistent()
                                                 .auto_reconnect(quick))
                                    .build());
            manager.add_session(with_storage(mqttx::quick_connect("cloud", argv[3])
                                                 .client_id("crash-forward-cloud")
                                                 .persistent()
                                                 .auto_reconnect(quick))
                                    .build());
            // Before connecting: the site broker redelivers what the last run had not
            // acknowledged as soon as the session connects, and a message with no route
            // yet would be acknowledged and dropped.
            manager.forwarders().add(mqttx::ForwarderBuilder("crashy")
                                         .source("site", {"fwd/#"})
                                         .target("cloud")
                                         .qos(1)
                                         .build());
            manager.connect_all();
            manager.wait_for_all_sessions(20s);
            std::printf("forwarding\n");
            std::fflush(stdout);
            for (;;) std::this_thread::sleep_for(1s);  // until SIGKILL
        }
        auto builder = mqttx::quick_connect("crashy", argv[2])
                           .client_id(argv[3])
                           .persistent()
                           .auto_reconnect({50ms, 500ms, 2.0, 0.2});
        mqttx::SessionManager manager;
        auto session = manager.add_session(with_storage(std::move(builder)).build());
        if (mode == "publish" && argc == 8) {
            // Accepted (stored) before connecting, so that the whole burst is still to
            // go when the test starts watching it.
            const int count = std::stoi(argv[6]);
            const int qos = std::stoi(argv[7]);
            for (int i = 0; i < count; ++i) session->publish("crash/t", std::to_string(i), qos);
            std::printf("accepted %d\n", count);
            std::fflush(stdout);
            manager.connect_all();
            for (;;) std::this_thread::sleep_for(1s);  // until SIGKILL
        }
        manager.connect_all();
        if (mode == "drain") {
            const auto deadline = std::chrono::steady_clock::now() + 60s;
            while (std::chrono::steady_clock::now() < deadline) {
                const auto m = session->metrics();
                if (session->is_connected() && m.outbox_waiting == 0 && m.in_flight == 0) {
                    // Paho's own resends went out first on this connection: once this
                    // marker is in, so are they.
                    session->publish("crash/t", "end", 2).wait();
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
