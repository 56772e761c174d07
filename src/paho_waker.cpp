#include "paho_waker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mqtt/async_client.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace mqttx::detail {

namespace {

constexpr std::chrono::milliseconds link_setup_step{2};
constexpr std::chrono::seconds link_setup_deadline{30};

// Bytes of one whole MQTT packet at the start of `data`; 0 while incomplete.
std::size_t whole_packet(const std::vector<char>& data) {
    std::size_t remaining = 0;
    for (std::size_t i = 1, shift = 0; i < data.size() && i <= 4; ++i, shift += 7) {
        const auto byte = static_cast<unsigned char>(data[i]);
        remaining |= static_cast<std::size_t>(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0) return data.size() >= i + 1 + remaining ? i + 1 + remaining : 0;
    }
    return 0;
}

}  // namespace

struct PahoWaker::Link {
    int listen_fd = -1;
    int fd = -1;  // our end of Paho's connection
    std::vector<char> received;
    Clock::time_point deadline;
    std::atomic<bool> up{false};
    std::atomic<bool> broken{false};

    ~Link() {
        if (listen_fd >= 0) ::close(listen_fd);
        if (fd >= 0) ::close(fd);
    }

    // One non-blocking step of the handshake: accept, read CONNECT, answer CONNACK.
    // True once done; throws std::runtime_error when it cannot be done.
    bool step() {
        if (fd < 0) {
            fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
                throw std::runtime_error(std::string("accept: ") + std::strerror(errno));
            }
        }
        char buffer[512];
        for (;;) {
            const auto n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n > 0) {
                received.insert(received.end(), buffer, buffer + n);
                continue;
            }
            if (n == 0) throw std::runtime_error("Paho closed the connection");
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
        }
        if (received.empty() || whole_packet(received) == 0) return false;
        if ((static_cast<unsigned char>(received[0]) & 0xF0) != 0x10) {
            throw std::runtime_error("the first packet is not a CONNECT");
        }
        static constexpr char connack[] = {0x20, 0x02, 0x00, 0x00};  // accepted, no session
        if (::send(fd, connack, sizeof connack, MSG_NOSIGNAL) != sizeof connack) {
            throw std::runtime_error(std::string("send: ") + std::strerror(errno));
        }
        ::close(listen_fd);
        listen_fd = -1;
        received = {};
        up.store(true, std::memory_order_release);
        return true;
    }

    // False when the link broke just now.
    bool wake() noexcept {
        if (!up.load(std::memory_order_acquire) || broken.load(std::memory_order_relaxed)) {
            return true;
        }
        // A PINGRESP: Paho reads it and only clears its ping flag. Unread wake-ups pile
        // up in the socket buffer at worst (EAGAIN), which wakes Paho just the same.
        static constexpr char pingresp[] = {static_cast<char>(0xD0), 0x00};
        if (::send(fd, pingresp, sizeof pingresp, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
            errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            broken.store(true, std::memory_order_relaxed);
            return false;
        }
        return true;
    }
};

PahoWaker::PahoWaker(Scheduler& scheduler, std::shared_ptr<spdlog::logger> log, bool enabled)
    : scheduler_(scheduler), log_(std::move(log)) {
    if (enabled) start_link();
}

PahoWaker::~PahoWaker() {
    if (!client_) return;
    try {
        // Destroying a connected Paho client closes its socket; no DISCONNECT needed.
        client_.reset();
    } catch (const std::exception& e) {
        log_->debug("Paho waker: {}", e.what());
    }
}

// Without the link, connects are as slow as without the waker; nothing else breaks.
void PahoWaker::start_link() {
    auto link = std::make_shared<Link>();
    try {
        link->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (link->listen_fd < 0) throw std::runtime_error(std::strerror(errno));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = 0;
        socklen_t length = sizeof address;
        if (::bind(link->listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            ::listen(link->listen_fd, 1) != 0 ||
            ::getsockname(link->listen_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
            throw std::runtime_error(std::strerror(errno));
        }
        static std::atomic<unsigned> links{0};
        const auto uri = "tcp://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
        const auto id = "mqttx-waker-" + std::to_string(::getpid()) + "-" +
                        std::to_string(links.fetch_add(1, std::memory_order_relaxed));
        client_ = std::make_unique<mqtt::async_client>(
            uri, id, mqtt::create_options(MQTTVERSION_3_1_1), nullptr);
        mqtt::connect_options opts;
        opts.set_mqtt_version(MQTTVERSION_3_1_1);  // else Paho retries with 3.1 on failure
        opts.set_clean_session(true);
        opts.set_keep_alive_interval(0);  // the listener never reads after CONNECT
        opts.set_automatic_reconnect(false);
        client_->connect(opts);
    } catch (const std::exception& e) {
        log_->warn("Paho waker: no loopback link ({}); connects may take a second longer",
                   e.what());
        client_.reset();
        return;
    }
    link->deadline = Clock::now() + link_setup_deadline;
    link_ = link;
    set_up_link(scheduler_, log_, link);
}

// One step of the handshake on the scheduler, then the next until done. The steps hold
// the link weakly: a waker destroyed meanwhile (even one whose Runtime failed to
// construct) ends them.
void PahoWaker::set_up_link(Scheduler& scheduler, std::shared_ptr<spdlog::logger> log,
                            const std::weak_ptr<Link>& weak) {
    scheduler.post_after(link_setup_step, [&scheduler, log, weak] {
        auto link = weak.lock();
        if (!link) return;
        try {
            if (link->step()) return;
            if (Clock::now() > link->deadline) throw std::runtime_error("no CONNECT from Paho");
        } catch (const std::exception& e) {
            log->warn("Paho waker: no loopback link ({}); connects may take a second longer",
                      e.what());
            link->broken.store(true, std::memory_order_relaxed);
            return;
        }
        set_up_link(scheduler, log, weak);
    });
}

void PahoWaker::connect_started(const SessionCore* session) {
    if (!link_ || link_->broken.load(std::memory_order_relaxed)) return;
    {
        std::lock_guard lock(mutex_);
        last_started_ = Clock::now();
        connecting_[session] = last_started_;
        if (ticking_) return;
        ticking_ = true;
    }
    if (!scheduler_.post([this] { tick(); })) {
        std::lock_guard lock(mutex_);
        ticking_ = false;
    }
}

void PahoWaker::connect_finished(const SessionCore* session) {
    std::lock_guard lock(mutex_);
    connecting_.erase(session);
}

// Runs on the scheduler thread.
void PahoWaker::tick() {
    auto next = interval;
    {
        std::lock_guard lock(mutex_);
        const auto now = Clock::now();
        // Not at every tick: with thousands of sessions connecting, a pass over all of
        // them each millisecond would take the CPU their connects need.
        if (now - last_swept_ >= sweep_interval) {
            std::erase_if(connecting_,
                          [now](const auto& entry) { return now - entry.second > give_up_after; });
            last_swept_ = now;
        }
        if (connecting_.empty()) {
            ticking_ = false;
            return;
        }
        if (now - last_started_ < fast_phase) next = fast_interval;
    }
    if (!link_->wake()) {
        log_->warn("Paho waker: the loopback link broke; connects may take a second longer");
    }
    if (!scheduler_.post_after(next, [this] { tick(); })) {
        std::lock_guard lock(mutex_);
        ticking_ = false;
    }
}

}  // namespace mqttx::detail
