// PahoWaker: a workaround for Paho C 1.3.12 (Debian 12), whose one receive thread serves
// every client of the process. It waits in poll() for up to 1 s on a snapshot of the
// sockets, reading only: a socket added during that wait, or a connect that completes
// (the socket turns writable), goes unnoticed until the wait ends
// (eclipse/paho.mqtt.c#1430, fixed upstream by PR #1642, in no Debian release). So every
// connect took about 1 s more than the network needs: 2.1 s while other sessions idled,
// and 1.1 s after a broker restart, when no session was connected at all.
//
// Data arriving on a socket of the snapshot ends the wait. The waker keeps one socket
// there: a Paho client of its own, connected over loopback to a listener of the waker's,
// which answers its CONNECT and then, while any session connects, writes a 2-byte
// PINGRESP to it (every millisecond for the first 50 ms, then every 5 ms, for at most a
// few seconds per connect). Paho reads it and takes a new snapshot, which holds the new
// sockets. Nothing goes to a broker, and it works with no session connected. Cost per
// manager: one Paho client (no persistence, no keep-alive), two sockets, no thread.
// Measured in docs/performance.md.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "scheduler.hpp"

namespace mqtt {
class async_client;
}
namespace spdlog {
class logger;
}

namespace mqttx::detail {

class SessionCore;

class PahoWaker {
  public:
    using Clock = std::chrono::steady_clock;
    // A connect needs a few wake-ups in a row (socket added, connected, CONNECT sent):
    // every millisecond at first, then every 5 ms, and none after a few seconds.
    static constexpr std::chrono::milliseconds fast_interval{1};
    static constexpr std::chrono::milliseconds fast_phase{50};
    static constexpr std::chrono::milliseconds interval{5};
    static constexpr std::chrono::milliseconds give_up_after{3000};
    static constexpr std::chrono::milliseconds sweep_interval{100};  // of given-up connects

    // Disabled, it does nothing. Enabled, it starts its loopback link at once (answered
    // on the scheduler), so that the link is usually up before the first session
    // connects; a connect started before that is not woken.
    PahoWaker(Scheduler& scheduler, std::shared_ptr<spdlog::logger> log, bool enabled);
    ~PahoWaker();
    PahoWaker(const PahoWaker&) = delete;
    PahoWaker& operator=(const PahoWaker&) = delete;

    void connect_started(const SessionCore* session);
    void connect_finished(const SessionCore* session);

  private:
    struct Link;  // the loopback connection, our end

    void start_link();
    static void set_up_link(Scheduler& scheduler, std::shared_ptr<spdlog::logger> log,
                            const std::weak_ptr<Link>& link);
    void tick();

    Scheduler& scheduler_;
    const std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<Link> link_;
    std::unique_ptr<mqtt::async_client> client_;  // Paho's end of the link
    std::mutex mutex_;
    std::unordered_map<const SessionCore*, Clock::time_point> connecting_;  // and since when
    Clock::time_point last_started_{};
    Clock::time_point last_swept_{};
    bool ticking_ = false;
};

}  // namespace mqttx::detail
