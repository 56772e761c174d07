// A real mosquitto broker for integration tests, plus small helpers for ports,
// temporary directories and waiting.
//
// Each Mosquitto instance runs its own `mosquitto` process with a generated
// config in its own temporary directory, listening on 127.0.0.1 only. The
// child gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the thread that
// started it (start brokers from the test's main thread, as gtest fixtures do).
//
// Not thread-safe: use one instance from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "support/child_process.hpp"

namespace mqttx::test {

// A loopback TCP port that nothing is bound to right now. Ports come from below
// the kernel's ephemeral range (so a client's outgoing connection cannot take it
// while a broker restarts) and one process never gets the same port twice.
int free_port();

// A non-blocking socket listening on 127.0.0.1 at a free port, which it stores in
// `port`; `owner` names the caller in the std::system_error it throws when it cannot.
int listen_on_free_port(const char* owner, int& port);

// Creates a fresh directory /tmp/<prefix>XXXXXX (mode 0700); throws
// std::system_error on failure.
std::string make_temp_dir(std::string_view prefix);

// Removes path and everything under it; ignores errors.
void remove_tree(const std::string& path) noexcept;

// Polls pred every few ms until it returns true or the deadline passes;
// returns pred's last value.
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds deadline = std::chrono::seconds(20));

// True if one TCP connect to 127.0.0.1:port succeeds (within 1 s).
bool port_accepts(int port);

struct BrokerOptions {
    bool persistence = false;  // persistence to dir(), saved every second and on stop()
    std::string extra_config;  // appended verbatim to the generated config
    int port = 0;              // 0: pick a free one
};

class Mosquitto {
  public:
    // Starts the broker and waits (deadline 20 s) until it accepts TCP. Throws
    // std::runtime_error with mosquitto's log tail on failure.
    explicit Mosquitto(BrokerOptions options = {});
    // stop(), then removes dir(). Never throws.
    ~Mosquitto();

    Mosquitto(const Mosquitto&) = delete;
    Mosquitto& operator=(const Mosquitto&) = delete;

    int port() const { return port_; }
    std::string uri() const;        // "tcp://127.0.0.1:<port>"
    std::string host_port() const;  // "127.0.0.1:<port>"
    const std::string& dir() const { return dir_; }

    // (Re)starts on the same port and waits until it accepts TCP (deadline 20 s),
    // retrying for up to 5 s while the port is in use. Does nothing if running.
    // Throws std::runtime_error with mosquitto's log tail on failure.
    void start();
    // SIGTERM, waits up to 5 s, then SIGKILL; reaps the process. Never throws.
    void stop() noexcept;
    // SIGKILL now and reap (for crash tests). Never throws.
    void kill() noexcept;
    // Once the broker has handled everything it has read (it sleeps in epoll_wait),
    // makes it write its persistence file (SIGUSR1) and waits until the file is
    // replaced. Mosquitto saves only now and then, and a state change such as a
    // PUBREC does not count as a change to save: a kill() right after this loses none
    // of the broker's state, as if its storage were durable. Needs
    // BrokerOptions::persistence; throws std::runtime_error after 20 s.
    void save_when_idle();
    bool running() const;
    // The log file (appended across restarts), then anything mosquitto wrote to
    // stdout/stderr (config errors, exec failure).
    std::string log() const;

  private:
    enum class Launch { ok, bind_failed, failed, timed_out };

    void write_config() const;
    // One fork/exec and wait; on failure `detail` says why and `said` holds what
    // mosquitto logged during this attempt.
    Launch launch(std::chrono::steady_clock::time_point deadline, std::string& detail,
                  std::string& said);

    BrokerOptions options_;
    std::string dir_;
    std::string config_path_;
    std::string log_path_;
    std::string output_path_;
    int port_ = 0;
    ChildProcess process_;
    bool ever_started_ = false;  // a failed first bind may move to another free port
};

}  // namespace mqttx::test
