// ChildProcess: a server process started by a test fixture (mosquitto, redis-server).
// The child gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the thread that started
// it, and none of the test's file descriptors. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mqttx::test {

// The full path of `name` from PATH or the sbin directories; throws std::runtime_error
// naming the Debian package to install.
std::string find_executable(std::string_view name, std::string_view package);

// Runs `command` through the shell to its end; its exit status (-1 if it did not exit)
// and everything it wrote to stdout and stderr. Throws std::runtime_error if it cannot
// be started. For short tools (openssl, promtool), not servers.
std::pair<int, std::string> run_command(const std::string& command);

class ChildProcess {
  public:
    ChildProcess() = default;
    ~ChildProcess() { kill(); }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // Starts `exe` with `args` (argv[1..]); stdin is /dev/null, stdout and stderr are
    // appended to `output_path`. Throws std::system_error.
    void spawn(const std::string& exe, const std::vector<std::string>& args,
               const std::string& output_path);
    // When the child has exited: reaps it and says how ("exited with status 1").
    std::optional<std::string> exited();
    bool running() const;
    pid_t pid() const noexcept { return pid_; }
    void signal(int sig) const noexcept;
    // SIGTERM, waits up to `grace`, then SIGKILL. Never throws.
    void stop(std::chrono::milliseconds grace) noexcept;
    // SIGKILL now and reap. Never throws.
    void kill() noexcept;

  private:
    void reap(bool block) noexcept;

    pid_t pid_ = -1;
};

}  // namespace mqttx::test
