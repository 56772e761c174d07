// The aedes broker (Node.js; scripts/setup.sh installs it into scripts/aedes) for the
// interop tests: a second MQTT implementation, so that mosquitto's habits do not hide
// the library's assumptions. Each instance runs aedes_broker.js on 127.0.0.1; it keeps
// sessions in memory only, so a restart forgets them.
//
// Not thread-safe: use one instance from one thread (start it from the test's main
// thread: the child dies with the thread that started it).
#pragma once

#include <string>

#include "support/child_process.hpp"

namespace mqttx::test {

class Aedes {
  public:
    // Starts the broker on a free port (or `port`) and waits (deadline 20 s) until it
    // accepts TCP. Throws std::runtime_error with its output on failure, and when aedes
    // is not installed (scripts/setup.sh installs it).
    explicit Aedes(int port = 0);
    ~Aedes();  // stops it and removes its directory
    Aedes(const Aedes&) = delete;
    Aedes& operator=(const Aedes&) = delete;

    int port() const { return port_; }
    std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

    // (Re)starts on the same port, as the constructor. Does nothing if running.
    void start();
    void stop() noexcept;  // SIGTERM, then SIGKILL after 5 s
    void kill() noexcept;  // SIGKILL now
    std::string output() const;

  private:
    int port_ = 0;
    std::string dir_;
    ChildProcess process_;
};

}  // namespace mqttx::test
