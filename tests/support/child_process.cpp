#include "support/child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace mqttx::test {

std::pair<int, std::string> run_command(const std::string& command) {
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run " + command);
    std::string output;
    char buffer[4096];
    while (auto n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

namespace {

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "stopped";
}

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void exec_child(const char* exe, char* const argv[], int in, int out, pid_t parent) {
    // Die with the parent (more exactly: with the thread that forked us).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    // The test's own sockets (Paho's, a proxy's) must not live on in the server.
    if (::close_range(3, ~0U, 0) != 0) {
        for (int fd = 3; fd < 65536; ++fd) ::close(fd);
    }
    // Undo whatever the test process did to signals.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGUSR1, SIGUSR2}) {
        ::sigaction(sig, &dfl, nullptr);
    }
    ::execv(exe, argv);
    constexpr char msg[] = "mqttx::test::ChildProcess: execv failed\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
}

}  // namespace

std::string find_executable(std::string_view name, std::string_view package) {
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
        std::istringstream in(path);
        for (std::string dir; std::getline(in, dir, ':');) {
            if (!dir.empty()) dirs.push_back(dir);
        }
    }
    for (const char* dir : {"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"}) {
        dirs.emplace_back(dir);
    }
    for (const auto& dir : dirs) {
        std::string candidate = dir + "/" + std::string(name);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    throw std::runtime_error("no " + std::string(name) +
                             " executable in PATH or /usr/sbin (install the Debian package " +
                             std::string(package) + "; scripts/setup.sh does)");
}

void ChildProcess::spawn(const std::string& exe, const std::vector<std::string>& args,
                         const std::string& output_path) {
    kill();
    // Everything the child needs is prepared before fork(): after it, only
    // async-signal-safe calls are allowed (the test process has threads).
    std::vector<std::string> strings{exe};
    strings.insert(strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (in < 0 || out < 0) {
        const int error = errno;
        if (in >= 0) ::close(in);
        if (out >= 0) ::close(out);
        throw std::system_error(error, std::generic_category(), "open " + output_path);
    }
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child == 0) exec_child(exe.c_str(), argv.data(), in, out, parent);
    const int error = errno;
    ::close(in);
    ::close(out);
    if (child < 0) throw std::system_error(error, std::generic_category(), "fork");
    pid_ = child;
}

std::optional<std::string> ChildProcess::exited() {
    if (pid_ <= 0) return "not running";
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) {
        pid_ = -1;
        return describe_status(status);
    }
    if (reaped < 0 && errno == ECHILD) {
        pid_ = -1;
        return "reaped elsewhere";
    }
    return std::nullopt;
}

bool ChildProcess::running() const {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    // WNOWAIT: look without reaping, so this stays const and stop() still reaps.
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        return false;
    }
    return info.si_pid == 0;
}

void ChildProcess::signal(int sig) const noexcept {
    if (pid_ > 0) ::kill(pid_, sig);
}

void ChildProcess::reap(bool block) noexcept {
    if (pid_ <= 0) return;
    for (;;) {
        int status = 0;
        const pid_t reaped = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
        if (reaped < 0 && errno == EINTR) continue;
        if (reaped == pid_ || reaped < 0) pid_ = -1;  // reaped, or not our child any more
        return;
    }
}

void ChildProcess::stop(std::chrono::milliseconds grace) noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto end = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < end) {
        reap(false);
        if (pid_ <= 0) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill();
}

void ChildProcess::kill() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap(true);
}

}  // namespace mqttx::test
