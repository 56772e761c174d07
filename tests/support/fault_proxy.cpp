#include "support/fault_proxy.hpp"
#include "support/loopback.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support/mosquitto.hpp"  // listen_on_free_port()

namespace mqttx::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kCommandDeadline = 10s;  // the loop applies a command within this
constexpr auto kLingerDeadline = 2s;    // drop_all(): wait this long for the peer's FIN
constexpr auto kAcceptBackoff = 100ms;  // after accept() failed for lack of resources
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kMaxHeld = 1024 * 1024;  // per direction; read no more beyond this
constexpr int kMaxAccepts = 1024;              // per call of accept_pending()

std::string describe(const std::string& what, int error) {
    return what + ": " + std::generic_category().message(error);
}

void set_nodelay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Closes fd so that the peer gets RST instead of FIN.
void close_abort(int fd) {
    if (fd < 0) return;
    linger lg{};
    lg.l_onoff = 1;
    lg.l_linger = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
}

// Reads and discards what is readable now. False at EOF or on an error.
bool discard_input(int fd) {
    char buffer[16 * 1024];
    for (int i = 0; i < 256; ++i) {  // at most 4 MiB a call
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
}

// Closes fd, discarding unread input first so that the peer gets FIN, not RST.
void close_quietly(int fd) {
    if (fd < 0) return;
    discard_input(fd);
    ::close(fd);
}

enum class Op { set_target, reset_all, drop_all, set_stalled, set_refusing, set_poison };

struct Command {
    Op op;
    int arg = 0;
    std::string text{};
};

// One socket of a pair, with the bytes waiting to be written to it.
struct Side {
    int fd = -1;
    bool eof = false;   // the peer sent FIN (recv returned 0)
    bool shut = false;  // we sent FIN (shutdown SHUT_WR)
    std::string out;
    std::size_t out_pos = 0;

    std::size_t held() const { return out.size() - out_pos; }
};

struct Conn {
    Side client;
    Side server;
    int target = 0;
    std::string client_tail;  // the client's last bytes, for a poison split across reads
    bool connecting = false;  // non-blocking connect to the target in progress
    bool closed = false;      // both sockets closed; to be erased
};

// A socket closed by drop_all() or refusal: FIN sent, peer's input discarded.
struct Lingering {
    int fd;
    Clock::time_point deadline;
};

}  // namespace

struct FaultProxy::Impl {
    explicit Impl(int target_port) : target(target_port) {}

    ~Impl() {
        if (thread.joinable()) {
            stopping.store(true);
            wake();
            try {
                thread.join();
            } catch (...) {
                thread.detach();  // cannot happen; never throw from a destructor
            }
        }
        // Normally closed by the loop; here if the constructor failed.
        if (listen_fd >= 0) ::close(listen_fd);
        if (wake_fd >= 0) ::close(wake_fd);
    }

    // ---- test thread ----

    void post(Op op, int arg, std::string text = {}) {
        std::unique_lock lock(mutex);
        if (finished) return;
        queue.push_back({op, arg, std::move(text)});
        const std::uint64_t seq = ++posted;
        lock.unlock();
        wake();
        lock.lock();
        if (!cv.wait_for(lock, kCommandDeadline, [&] { return done >= seq || finished; })) {
            error_text = "command not applied within 10 s";
        }
    }

    void wake() const {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto ignored = ::write(wake_fd, &one, sizeof one);
    }

    std::string last_error() const {
        std::lock_guard lock(mutex);
        return error_text;
    }

    // ---- loop thread ----

    void note_error(const std::string& text) noexcept {
        try {
            std::lock_guard lock(mutex);
            error_text = text;
        } catch (...) {
        }
    }

    void run() noexcept {
        try {
            loop();
        } catch (const std::exception& e) {
            note_error(std::string("fault proxy loop failed: ") + e.what());
        } catch (...) {
            note_error("fault proxy loop failed");
        }
        close_everything();
        std::lock_guard lock(mutex);
        finished = true;
        cv.notify_all();
    }

    void loop() {
        std::vector<pollfd> fds;
        for (;;) {
            const auto now = Clock::now();
            const bool listening = now >= accept_paused_until;
            fds.clear();
            fds.push_back({wake_fd, POLLIN, 0});
            fds.push_back({listening ? listen_fd : -1, POLLIN, 0});
            const std::size_t conn_count = conns.size();
            for (const auto& c : conns) {
                const short client_events = stalled ? 0 : events_of_client(*c);
                const short server_events = stalled ? 0 : events_of_server(*c);
                // A socket we want nothing from is left out, so that a lasting
                // POLLHUP cannot make poll() spin.
                fds.push_back({client_events != 0 ? c->client.fd : -1, client_events, 0});
                fds.push_back({server_events != 0 ? c->server.fd : -1, server_events, 0});
            }
            const std::size_t linger_count = lingering.size();
            for (const auto& l : lingering) fds.push_back({l.fd, POLLIN, 0});

            auto until = Clock::time_point::max();
            if (!listening) until = accept_paused_until;
            for (const auto& l : lingering) until = std::min(until, l.deadline);
            int timeout = -1;
            if (until != Clock::time_point::max()) {
                const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
                timeout = static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
            }

            if (::poll(fds.data(), fds.size(), timeout) < 0) {
                if (errno == EINTR) continue;
                note_error(describe("poll", errno));
                std::this_thread::sleep_for(10ms);
                continue;
            }

            for (std::size_t i = 0; i < conn_count; ++i) {
                service(*conns[i], fds[2 + 2 * i].revents, fds[3 + 2 * i].revents);
            }
            for (std::size_t i = 0; i < linger_count; ++i) {
                if (fds[2 + 2 * conn_count + i].revents != 0 && !discard_input(lingering[i].fd)) {
                    ::close(lingering[i].fd);
                    lingering[i].fd = -1;
                }
            }
            expire_lingering();
            if (fds[1].revents != 0) accept_pending();

            std::size_t applied = 0;
            if (fds[0].revents != 0) {
                std::uint64_t count = 0;
                [[maybe_unused]] auto ignored = ::read(wake_fd, &count, sizeof count);
                std::deque<Command> commands;
                {
                    std::lock_guard lock(mutex);
                    commands.swap(queue);
                }
                // Connections whose handshake finished before the call are
                // accepted first, so that the command applies to them too.
                if (!commands.empty()) accept_pending();
                for (const Command& command : commands) apply(command);
                applied = commands.size();
            }

            std::erase_if(conns, [](const auto& c) { return c->closed; });
            open.store(conns.size());
            if (applied != 0) {
                std::lock_guard lock(mutex);
                done += applied;
                cv.notify_all();
            }
            if (stopping.load()) return;
        }
    }

    short events_of_client(const Conn& c) const {
        short events = 0;
        if (!c.client.eof && c.server.held() < kMaxHeld) events |= POLLIN;
        if (c.client.held() > 0) events |= POLLOUT;
        return events;
    }

    short events_of_server(const Conn& c) const {
        if (c.connecting) return POLLOUT;
        short events = 0;
        if (!c.server.eof && c.client.held() < kMaxHeld) events |= POLLIN;
        if (c.server.held() > 0) events |= POLLOUT;
        return events;
    }

    static constexpr short kReadable = POLLIN | POLLHUP | POLLERR;

    void service(Conn& c, short client_revents, short server_revents) {
        if (c.closed || stalled) return;
        if (c.connecting && server_revents != 0) {
            finish_connect(c, server_revents);
            if (c.closed) return;
            server_revents = 0;  // the POLLOUT was about the connect
        }
        if ((client_revents & kReadable) != 0 && !c.client.eof) {
            if (!read_into(c, c.client, c.server, "client")) return;
        }
        if ((server_revents & kReadable) != 0 && !c.connecting && !c.server.eof) {
            if (!read_into(c, c.server, c.client, "server")) return;
        }
        advance(c);
    }

    void finish_connect(Conn& c, short revents) {
        int error = 0;
        socklen_t len = sizeof error;
        if (::getsockopt(c.server.fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
        if (error == 0 && (revents & POLLOUT) == 0) error = ECONNABORTED;
        if (error != 0) {
            note_error(describe("connect to 127.0.0.1:" + std::to_string(c.target), error));
            abort_pair(c);
            return;
        }
        c.connecting = false;
    }

    // One recv() from `from`, appended to what waits for `to`. False if the
    // pair was closed.
    bool read_into(Conn& c, Side& from, Side& to, const char* name) {
        const ssize_t n = ::recv(from.fd, chunk.data(), chunk.size(), 0);
        if (n > 0 && &from == &c.client && !poison.empty()) {
            std::string seen = c.client_tail;
            seen.append(chunk.data(), static_cast<std::size_t>(n));
            if (seen.find(poison) != std::string::npos) {
                drop_pair(c);  // as a broker closes on a packet it refuses
                return false;
            }
            c.client_tail = seen.substr(seen.size() - std::min(seen.size(), poison.size() - 1));
        }
        if (n > 0) {
            if (&from == &c.client) from_clients.fetch_add(static_cast<std::uint64_t>(n));
            to.out.append(chunk.data(), static_cast<std::size_t>(n));
        } else if (n == 0) {
            from.eof = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            note_error(describe(std::string(name) + " recv", errno));
            abort_pair(c);
            return false;
        }
        return true;
    }

    // Writes what is held for `side` as far as it goes. False if the pair was
    // closed.
    bool flush(Conn& c, Side& side, const char* name) {
        while (side.held() > 0) {
            const ssize_t n =
                ::send(side.fd, side.out.data() + side.out_pos, side.held(), MSG_NOSIGNAL);
            if (n > 0) {
                side.out_pos += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            note_error(describe(std::string(name) + " send", n < 0 ? errno : EIO));
            abort_pair(c);
            return false;
        }
        if (side.held() == 0) {
            side.out.clear();
            side.out_pos = 0;
        } else if (side.out_pos >= kChunk && side.out_pos * 2 >= side.out.size()) {
            side.out.erase(0, side.out_pos);
            side.out_pos = 0;
        }
        return true;
    }

    // Sends FIN to `to` once `from` has ended and everything before it is written.
    bool pass_fin(Conn& c, const Side& from, Side& to, const char* name) {
        if (!from.eof || to.shut || to.held() > 0) return true;
        if (::shutdown(to.fd, SHUT_WR) != 0 && errno != ENOTCONN) {
            note_error(describe(std::string(name) + " shutdown", errno));
            abort_pair(c);
            return false;
        }
        to.shut = true;
        return true;
    }

    void advance(Conn& c) {
        if (c.connecting) return;
        if (!flush(c, c.server, "server") || !flush(c, c.client, "client")) return;
        if (!pass_fin(c, c.client, c.server, "server") ||
            !pass_fin(c, c.server, c.client, "client")) {
            return;
        }
        if (c.client.shut && c.server.shut) {
            // Both directions ended: nothing unread is left, close() sends no RST.
            ::close(c.client.fd);
            ::close(c.server.fd);
            c.client.fd = c.server.fd = -1;
            c.closed = true;
        }
    }

    void abort_pair(Conn& c) {
        close_abort(c.client.fd);
        close_abort(c.server.fd);
        c.client.fd = c.server.fd = -1;
        c.closed = true;
    }

    void drop_pair(Conn& c) {
        linger_close(c.client.fd);
        if (c.connecting) {
            ::close(c.server.fd);
        } else {
            linger_close(c.server.fd);
        }
        c.client.fd = c.server.fd = -1;
        c.closed = true;
    }

    // Sends FIN and keeps the socket, discarding input, until the peer closes
    // too or the deadline passes; a socket closed with unread input sends RST.
    void linger_close(int fd) {
        if (fd < 0) return;
        if (!discard_input(fd) || ::shutdown(fd, SHUT_WR) != 0) {
            ::close(fd);
            return;
        }
        lingering.push_back({fd, Clock::now() + kLingerDeadline});
    }

    void expire_lingering() {
        const auto now = Clock::now();
        for (auto& l : lingering) {
            if (l.fd >= 0 && now >= l.deadline) {
                close_quietly(l.fd);
                l.fd = -1;
            }
        }
        std::erase_if(lingering, [](const Lingering& l) { return l.fd < 0; });
    }

    void accept_pending() {
        for (int i = 0; i < kMaxAccepts; ++i) {
            const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                const int error = errno;
                if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
                if (error == EAGAIN || error == EWOULDBLOCK) return;
                note_error(describe("accept", error));
                // Out of descriptors or memory: the pending connection stays
                // readable, so stop looking for a while instead of spinning.
                accept_paused_until = Clock::now() + kAcceptBackoff;
                return;
            }
            accepted.fetch_add(1);
            if (refusing) {
                linger_close(fd);
            } else {
                start_conn(fd);
            }
        }
    }

    void start_conn(int client_fd) {
        set_nodelay(client_fd);
        auto c = std::make_unique<Conn>();
        c->client.fd = client_fd;
        c->target = target;
        if (target <= 0 || target > 65535) {
            note_error("invalid target port " + std::to_string(target));
            close_abort(client_fd);
            return;
        }
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            note_error(describe("socket", errno));
            close_abort(client_fd);
            return;
        }
        set_nodelay(fd);
        c->server.fd = fd;
        const sockaddr_in addr = loopback(target);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            if (errno != EINPROGRESS && errno != EINTR) {
                note_error(describe("connect to 127.0.0.1:" + std::to_string(target), errno));
                abort_pair(*c);
                return;
            }
            c->connecting = true;
        }
        conns.push_back(std::move(c));
    }

    void apply(const Command& command) {
        switch (command.op) {
            case Op::set_target:
                target = command.arg;
                break;
            case Op::reset_all:
                for (auto& c : conns) {
                    if (!c->closed) abort_pair(*c);
                }
                break;
            case Op::drop_all:
                for (auto& c : conns) {
                    if (!c->closed) drop_pair(*c);
                }
                break;
            case Op::set_stalled:
                stalled = command.arg != 0;
                break;
            case Op::set_refusing:
                refusing = command.arg != 0;
                break;
            case Op::set_poison:
                poison = command.text;
                break;
        }
    }

    void close_everything() noexcept {
        for (auto& c : conns) {
            if (c->closed) continue;
            close_quietly(c->client.fd);
            close_quietly(c->server.fd);
            c->closed = true;
        }
        conns.clear();
        for (auto& l : lingering) close_quietly(l.fd);
        lingering.clear();
        if (listen_fd >= 0) ::close(listen_fd);
        listen_fd = -1;
        open.store(0);
    }

    // Set up by the constructor, then owned by the loop thread.
    int listen_fd = -1;
    int wake_fd = -1;  // eventfd; closed by ~Impl
    int target;
    bool stalled = false;
    bool refusing = false;
    std::string poison;
    Clock::time_point accept_paused_until{};
    std::vector<std::unique_ptr<Conn>> conns;
    std::vector<Lingering> lingering;
    std::vector<char> chunk = std::vector<char>(kChunk);

    // Shared between the test thread(s) and the loop.
    mutable std::mutex mutex;
    std::condition_variable cv;
    std::deque<Command> queue;          // guarded by mutex
    std::uint64_t posted = 0;           // guarded by mutex
    std::uint64_t done = 0;             // guarded by mutex
    bool finished = false;              // guarded by mutex: the loop has ended
    std::string error_text;             // guarded by mutex
    std::atomic<bool> stopping{false};  // set by ~Impl
    std::atomic<std::size_t> open{0};
    std::atomic<std::size_t> accepted{0};
    std::atomic<std::uint64_t> from_clients{0};
    std::thread thread;
};

FaultProxy::FaultProxy(int target_port) : impl_(std::make_unique<Impl>(target_port)) {
    Impl& impl = *impl_;
    impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl.wake_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    impl.listen_fd = listen_on_free_port("mqttx::test::FaultProxy", port_);
    impl.thread = std::thread([&impl] { impl.run(); });
}

FaultProxy::~FaultProxy() = default;

std::string FaultProxy::uri() const {
    return "tcp://" + host_port();
}

std::string FaultProxy::host_port() const {
    return "127.0.0.1:" + std::to_string(port_);
}

void FaultProxy::set_target(int target_port) {
    impl_->post(Op::set_target, target_port);
}

void FaultProxy::reset_all() {
    impl_->post(Op::reset_all, 0);
}

void FaultProxy::drop_all() {
    impl_->post(Op::drop_all, 0);
}

void FaultProxy::set_stalled(bool on) {
    impl_->post(Op::set_stalled, on ? 1 : 0);
}

void FaultProxy::set_refusing(bool on) {
    impl_->post(Op::set_refusing, on ? 1 : 0);
}

void FaultProxy::set_poison(std::string bytes) {
    impl_->post(Op::set_poison, 0, std::move(bytes));
}

std::size_t FaultProxy::connection_count() const {
    return impl_->open.load();
}

std::size_t FaultProxy::accepted_total() const {
    return impl_->accepted.load();
}

std::uint64_t FaultProxy::bytes_from_clients() const {
    return impl_->from_clients.load();
}

std::string FaultProxy::last_error() const {
    return impl_->last_error();
}

}  // namespace mqttx::test
