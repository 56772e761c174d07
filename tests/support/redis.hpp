// A real redis-server for storage tests: its own process on a free loopback port, a
// generated config in a temporary directory, no persistence of its own.
// Not thread-safe: use one instance from one thread.
#pragma once

#include <string>

#include "support/child_process.hpp"

namespace mqttx::test {

struct RedisOptions {
    std::string password;  // requirepass for the default user (empty: none)
    std::string user;      // with password: an ACL user allowed everything
    int port = 0;          // 0: pick a free one
};

class RedisServer {
  public:
    // Starts it and waits (20 s) until it accepts connections; throws std::runtime_error
    // with its output on failure.
    explicit RedisServer(RedisOptions options = {});
    ~RedisServer();
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    int port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    // (Re)starts on the same port. Does nothing if running.
    void start();
    void kill() noexcept;  // SIGKILL (its data is gone: no persistence)
    bool running() const { return process_.running(); }
    std::string output() const;

  private:
    RedisOptions options_;
    std::string dir_;
    int port_ = 0;
    ChildProcess process_;
};

}  // namespace mqttx::test
