#include "support/mosquitto.hpp"
#include "support/child_process.hpp"
#include "support/loopback.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace mqttx::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kStartDeadline = 20s;
constexpr auto kBindRetry = 5s;  // restart on a port whose old socket may linger
constexpr auto kStopGrace = 5s;
constexpr auto kPollInterval = 5ms;

// Closes a file descriptor when it goes out of scope.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// Binds 127.0.0.1:port (port 0: any) without SO_REUSEADDR, so a port held by a
// listener or a lingering connection counts as taken. Returns the bound port or 0.
int try_bind(int port) {
    Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0) throw_errno("socket");
    sockaddr_in addr = loopback(port);
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
    socklen_t len = sizeof addr;
    if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw_errno("getsockname");
    }
    return ntohs(addr.sin_port);
}

// The lowest port of the kernel's ephemeral range (used for outgoing connections).
int ephemeral_low() {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    int low = 0;
    int high = 0;
    if (in >> low >> high && low > 0) return low;
    return 32768;
}

std::string read_from(const std::string& path, std::uintmax_t offset) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in) return {};
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uintmax_t size_of(const std::string& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    return ec ? 0 : size;
}

std::string last_lines(const std::string& text, int lines) {
    std::size_t pos = text.size();
    if (pos > 0 && text[pos - 1] == '\n') --pos;
    while (pos > 0 && lines > 0) {
        pos = text.rfind('\n', pos - 1);
        if (pos == std::string::npos) return text;
        --lines;
    }
    return lines > 0 ? text : text.substr(pos + 1);
}

}  // namespace

int free_port() {
    static std::mutex mutex;
    static std::set<int> given;  // never hand out the same port twice in a process
    static std::mt19937 rng{std::random_device{}()};
    std::lock_guard lock(mutex);

    constexpr int low = 20000;
    const int high = ephemeral_low() - 1;
    if (high - low >= 1000) {
        std::uniform_int_distribution<int> pick(low, high);
        for (int attempt = 0; attempt < 200; ++attempt) {
            const int port = pick(rng);
            if (given.count(port) == 0 && try_bind(port) == port) {
                given.insert(port);
                return port;
            }
        }
    }
    for (int attempt = 0; attempt < 200; ++attempt) {
        const int port = try_bind(0);
        if (port != 0 && given.count(port) == 0) {
            given.insert(port);
            return port;
        }
    }
    throw std::runtime_error("mqttx::test::free_port: no free loopback port found");
}

int listen_on_free_port(const char* owner, int& port) {
    int last_errno = 0;
    for (int attempt = 0; attempt < 20; ++attempt) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const int candidate = free_port();
        const sockaddr_in addr = loopback(candidate);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
            ::listen(fd, SOMAXCONN) == 0) {
            port = candidate;
            return fd;
        }
        last_errno = errno;  // someone took the port in between: try another
        ::close(fd);
    }
    throw std::system_error(last_errno, std::generic_category(),
                            std::string(owner) + ": cannot listen on 127.0.0.1");
}

std::string make_temp_dir(std::string_view prefix) {
    std::string pattern = "/tmp/";
    pattern.append(prefix);
    pattern += "XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) throw_errno("mkdtemp " + pattern);
    return buffer.data();
}

void remove_tree(const std::string& path) noexcept {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
    const auto end = Clock::now() + deadline;
    for (;;) {
        if (pred()) return true;
        if (Clock::now() >= end) return pred();
        std::this_thread::sleep_for(kPollInterval);
    }
}

bool port_accepts(int port) {
    Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (sock.get() < 0) return false;
    sockaddr_in addr = loopback(port);
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
    if (errno != EINPROGRESS) return false;
    pollfd pfd{sock.get(), POLLOUT, 0};
    if (::poll(&pfd, 1, 1000) != 1) return false;
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) return false;
    return error == 0;
}

Mosquitto::Mosquitto(BrokerOptions options) : options_(std::move(options)) {
    dir_ = make_temp_dir("mqttx-mosquitto-");
    config_path_ = dir_ + "/mosquitto.conf";
    log_path_ = dir_ + "/mosquitto.log";
    output_path_ = dir_ + "/mosquitto.out";
    try {
        port_ = options_.port != 0 ? options_.port : free_port();
        start();
    } catch (...) {
        kill();
        remove_tree(dir_);
        throw;
    }
}

Mosquitto::~Mosquitto() {
    stop();
    remove_tree(dir_);
}

std::string Mosquitto::uri() const {
    return "tcp://" + host_port();
}

std::string Mosquitto::host_port() const {
    return "127.0.0.1:" + std::to_string(port_);
}

void Mosquitto::write_config() const {
    std::ofstream out(config_path_, std::ios::trunc);
    out << "# Generated by mqttx::test::Mosquitto\n"
        << "listener " << port_ << " 127.0.0.1\n"
        << "allow_anonymous true\n"
        // As root mosquitto would switch to the user mosquitto, which cannot
        // read or write our root-only temporary directory.
        << "user root\n"
        << "log_dest file " << log_path_ << "\n"
        << "log_type error\n"
        << "log_type warning\n"
        << "log_type notice\n"
        << "log_type information\n"
        << "log_timestamp_format %H:%M:%S\n"
        << "max_queued_messages 100000\n"
        << "set_tcp_nodelay true\n";
    if (options_.persistence) {
        out << "persistence true\n"
            << "persistence_location " << dir_
            << "/\n"
            // A kill() loses at most the last second; stop() saves everything.
            << "autosave_interval 1\n";
    } else {
        out << "persistence false\n";
    }
    if (!options_.extra_config.empty()) {
        out << options_.extra_config;
        if (options_.extra_config.back() != '\n') out << '\n';
    }
    out.close();
    if (!out) throw std::runtime_error("mqttx::test::Mosquitto: cannot write " + config_path_);
}

void Mosquitto::start() {
    if (running()) return;
    process_.exited();  // reaps a broker that died on its own
    const auto deadline = Clock::now() + kStartDeadline;
    const auto bind_deadline = Clock::now() + kBindRetry;
    for (;;) {
        write_config();
        std::string detail;
        std::string said;
        const Launch result = launch(deadline, detail, said);
        if (result == Launch::ok) {
            ever_started_ = true;
            return;
        }
        if (result == Launch::bind_failed) {
            if (!ever_started_ && options_.port == 0 && Clock::now() < deadline) {
                port_ = free_port();  // someone took the port we picked
                continue;
            }
            if (Clock::now() < bind_deadline) {
                std::this_thread::sleep_for(100ms);  // the old socket may linger
                continue;
            }
            detail += ", port in use";
        }
        throw std::runtime_error("mqttx::test::Mosquitto: mosquitto did not start on " +
                                 host_port() + " (" + detail + "), config " + config_path_ +
                                 "; it said:\n" + last_lines(said, 40));
    }
}

Mosquitto::Launch Mosquitto::launch(Clock::time_point deadline, std::string& detail,
                                    std::string& said) {
    const std::string exe = find_executable("mosquitto", "mosquitto");
    const std::uintmax_t log_offset = size_of(log_path_);
    const std::uintmax_t output_offset = size_of(output_path_);
    process_.spawn(exe, {"-c", config_path_}, output_path_);

    for (;;) {
        if (auto how = process_.exited()) {
            detail = "mosquitto " + *how;
            said = read_from(log_path_, log_offset) + read_from(output_path_, output_offset);
            return said.find("Address already in use") != std::string::npos ? Launch::bind_failed
                                                                            : Launch::failed;
        }
        if (read_from(log_path_, log_offset).find(" running") != std::string::npos &&
            port_accepts(port_)) {
            return Launch::ok;
        }
        if (Clock::now() >= deadline) {
            kill();
            detail = "no connection accepted within " +
                     std::to_string(std::chrono::seconds(kStartDeadline).count()) + " s";
            said = read_from(log_path_, log_offset) + read_from(output_path_, output_offset);
            return Launch::timed_out;
        }
        std::this_thread::sleep_for(kPollInterval);
    }
}

void Mosquitto::stop() noexcept {
    process_.stop(kStopGrace);
}

void Mosquitto::kill() noexcept {
    process_.kill();
}

namespace {

// The system call the process sleeps in (from /proc/<pid>/syscall), or -1 when running.
long current_syscall(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
    std::string first;
    if (!(in >> first) || first == "running") return -1;
    try {
        return std::stol(first);
    } catch (const std::exception&) {
        return -1;
    }
}

// How often the process has been switched out (voluntarily or not): unchanged between
// two looks means it did not run in between.
long long context_switches(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    long long total = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.find("ctxt_switches:") != std::string::npos) {
            total += std::stoll(line.substr(line.find(':') + 1));
        }
    }
    return total;
}

// Inode and modification time: a rename over the file changes the inode.
std::pair<ino_t, std::int64_t> file_identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {0, 0};
    return {st.st_ino, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
}

}  // namespace

void Mosquitto::save_when_idle() {
    if (!options_.persistence) {
        throw std::runtime_error("mqttx::test::Mosquitto::save_when_idle needs persistence");
    }
    if (!running()) throw std::runtime_error("mqttx::test::Mosquitto::save_when_idle: not running");
    // Asleep in epoll_wait at two looks a poll interval apart, without having run in
    // between: a single look can catch it on its way into epoll_wait with data still to
    // read, most likely on a loaded machine, and the saved state would miss that data.
    long long switches_then = -1;
    const bool idle = wait_until([&] {
        const long call = current_syscall(process_.pid());
        const long long switches = context_switches(process_.pid());
        const bool waiting = call == SYS_epoll_wait || call == SYS_epoll_pwait;
        const bool settled = waiting && switches == switches_then;
        switches_then = waiting ? switches : -1;
        return settled;
    });
    if (!idle) throw std::runtime_error("mosquitto never went idle in epoll_wait");
    const std::string db = dir_ + "/mosquitto.db";
    const auto before = file_identity(db);
    process_.signal(SIGUSR1);
    if (!wait_until([&] { return file_identity(db) != before; })) {
        throw std::runtime_error("mosquitto did not save " + db + "\n" + log());
    }
}

bool Mosquitto::running() const {
    return process_.running();
}

std::string Mosquitto::log() const {
    std::string text = read_from(log_path_, 0);
    const std::string output = read_from(output_path_, 0);
    if (!output.empty()) text += "--- mosquitto stdout/stderr ---\n" + output;
    return text;
}

}  // namespace mqttx::test
