// PahoWaker: a workaround for Paho C 1.3.12 (Debian 12). A connect started while other
// clients of the process are connected and idle waits about 2.1 s before CONNECT is
// even sent: Paho's shared receive thread sits in a 1 s poll() on a stale socket list,
// twice (eclipse/paho.mqtt.c#1430, fixed upstream by PR #1642, in no Debian release).
// Only data arriving on an already-polled socket ends the wait. So while a session
// connects, another connected session draws quick broker replies: an UNSUBSCRIBE of a
// topic it never subscribed to, every millisecond for the first 50 ms, then every 5 ms
// until the connect ends (for at most a few seconds per attempt). Measured in
// docs/performance.md.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler.hpp"

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

    PahoWaker(Scheduler& scheduler, bool enabled) : scheduler_(scheduler), enabled_(enabled) {}

    // The filter a session with this client id unsubscribes from to draw a reply. Named
    // after a hash of the id, not the id: an id may hold '#' or '+' or be 65,535 bytes
    // long, and an invalid filter makes the broker close the connection.
    static std::string wake_topic(const std::string& client_id);

    void add(std::weak_ptr<SessionCore> session);
    void connect_started(const SessionCore* session);
    void connect_finished(const SessionCore* session);

  private:
    void tick();
    std::shared_ptr<SessionCore> pick_waker();  // with mutex_ held

    Scheduler& scheduler_;
    const bool enabled_;
    std::mutex mutex_;
    std::vector<std::weak_ptr<SessionCore>> sessions_;
    std::size_t swept_size_ = 16;  // sessions_'s size after its last sweep
    std::unordered_map<const SessionCore*, Clock::time_point> connecting_;  // and since when
    Clock::time_point last_started_{};
    Clock::time_point last_swept_{};
    std::weak_ptr<SessionCore> waker_;
    bool ticking_ = false;
};

}  // namespace mqttx::detail
