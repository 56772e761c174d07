#include "scenarios.hpp"

#include <sys/resource.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <stdexcept>

#include "../allocation_counter.hpp"

namespace mqttx::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

long rss_kb() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// Wall time, CPU and allocations between start() and finish().
class Meter {
  public:
    void start() {
        wall_ = Clock::now();
        cpu_ = cpu_seconds();
        allocations_ = allocations();
    }
    void finish(Result& r, std::uint64_t messages) const {
        r.seconds = std::chrono::duration<double>(Clock::now() - wall_).count();
        r.messages = messages;
        const double n = static_cast<double>(std::max<std::uint64_t>(messages, 1));
        r.cpu_per_million = (cpu_seconds() - cpu_) / n * 1e6;
        r.allocs_per_message = static_cast<double>(allocations() - allocations_) / n;
    }

  private:
    Clock::time_point wall_;
    double cpu_ = 0.0;
    std::uint64_t allocations_ = 0;
};

// Disconnects the fleet when a scenario ends, also by an exception: declared after the
// state its handlers use, so they stop before that state goes.
class Disconnect {
  public:
    explicit Disconnect(Fleet& fleet) : fleet_(fleet) {}
    ~Disconnect() {
        try {
            fleet_.disconnect();
        } catch (...) {
            // Already failing or done; nothing more to do.
        }
    }
    Disconnect(const Disconnect&) = delete;
    Disconnect& operator=(const Disconnect&) = delete;

  private:
    Fleet& fleet_;
};

// Counts what a subscriber receives; waiters wake every 64 messages and at the target.
class Counter {
  public:
    OnMessage handler() {
        return [this](std::string_view) {
            const auto n = received_.fetch_add(1, std::memory_order_relaxed) + 1;
            if (n % 64 == 0 || n >= target_.load(std::memory_order_relaxed)) {
                std::lock_guard lock(mutex_);
                changed_.notify_all();
            }
        };
    }
    void expect(std::int64_t target) { target_ = target; }
    std::int64_t received() const { return received_.load(); }
    // Until `count` arrived, or nothing arrived for 5 s.
    bool wait_for(std::int64_t count) {
        std::unique_lock lock(mutex_);
        auto last = received_.load();
        while (received_.load() < count) {
            if (!changed_.wait_for(lock, 5s, [&] { return received_.load() >= count; })) {
                if (received_.load() == last) return false;
                last = received_.load();
            }
        }
        return true;
    }

  private:
    std::atomic<std::int64_t> received_{0};
    std::atomic<std::int64_t> target_{1};
    std::mutex mutex_;
    std::condition_variable changed_;
};

Result latency(Fleet& fleet, const Broker& broker, int qos, int samples) {
    fleet.connect(broker.host, broker.port, 2, 1);
    std::mutex mutex;
    std::condition_variable arrived;
    long arrived_number = -1;  // the sequence number in the last payload that came back
    Clock::time_point at;
    Disconnect disconnect(fleet);
    fleet.subscribe(1, "bench/s1", qos, [&](std::string_view payload) {
        const auto now = Clock::now();
        const long number = std::stol(std::string(payload.substr(0, payload.find(' '))));
        std::lock_guard lock(mutex);
        at = now;
        arrived_number = number;
        arrived.notify_one();
    });
    std::vector<double> us;
    Result r;
    Meter meter;
    const int warmup = std::max(20, samples / 10);
    for (int i = 0; i < warmup + samples; ++i) {
        if (i == warmup) meter.start();
        auto payload = std::to_string(i) + ' ';
        payload.resize(std::max<std::size_t>(payload.size(), 16), 'p');
        const auto sent = Clock::now();
        fleet.publish(0, "bench/s1", payload, qos);
        std::unique_lock lock(mutex);
        // A late answer to an earlier message does not count for this one.
        if (!arrived.wait_for(lock, 5s, [&] { return arrived_number == i; })) {
            ++r.lost;
            continue;
        }
        if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(at - sent).count());
    }
    meter.finish(r, static_cast<std::uint64_t>(samples));
    fleet.drain(0);
    std::sort(us.begin(), us.end());
    if (!us.empty()) {
        r.value = us[us.size() / 2];
        r.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
        r.max_us = us.back();
    }
    return r;
}

// The end of every throughput case: waits for `expected` arrivals (or for them to
// stop), then reports arrivals per second, the losses and the meter's figures.
Result arrivals(Counter& counter, const Meter& meter, long expected) {
    counter.wait_for(expected);
    Result r;
    meter.finish(r, static_cast<std::uint64_t>(expected));
    r.lost = expected - counter.received();
    r.value = static_cast<double>(counter.received()) / r.seconds;
    return r;
}

// One publisher to one subscriber. QoS 0 is paced by the receiver (at most 1,000
// messages between them, or the broker would drop); QoS 1 by the window.
Result stream(Fleet& fleet, const Broker& broker, int qos, int window, std::size_t payload_size,
              long messages) {
    fleet.connect(broker.host, broker.port, 2, window);
    Counter counter;
    counter.expect(messages);
    Disconnect disconnect(fleet);
    fleet.subscribe(1, "bench/s2", qos, counter.handler());
    const std::string payload(payload_size, 'x');
    Meter meter;
    meter.start();
    for (long i = 0; i < messages; ++i) {
        if (qos == 0 && i - counter.received() > 1000) {
            if (!counter.wait_for(i - 1000)) break;
        }
        fleet.publish(0, "bench/s2", payload, qos);
    }
    fleet.drain(0);
    return arrivals(counter, meter, messages);
}

// `publishers` sessions to one subscriber, QoS 1, round-robin from one thread.
Result fan_in(Fleet& fleet, const Broker& broker, int publishers, long messages) {
    fleet.connect(broker.host, broker.port, publishers + 1, 100);
    Counter counter;
    counter.expect(messages);
    Disconnect disconnect(fleet);
    fleet.subscribe(publishers, "bench/s4/#", 1, counter.handler());
    const std::string payload(64, 'x');
    Meter meter;
    meter.start();
    for (long i = 0; i < messages; ++i) {
        const int from = static_cast<int>(i % publishers);
        fleet.publish(from, "bench/s4/" + std::to_string(from), payload, 1);
    }
    for (int i = 0; i < publishers; ++i) fleet.drain(i);
    return arrivals(counter, meter, messages);
}

// One publisher to `subscribers` sessions, QoS 1: deliveries per second.
Result fan_out(Fleet& fleet, const Broker& broker, int subscribers, long messages) {
    fleet.connect(broker.host, broker.port, subscribers + 1, 100);
    const long published = std::max<long>(10, messages / subscribers);
    const long deliveries = published * subscribers;
    Counter counter;
    counter.expect(deliveries);
    Disconnect disconnect(fleet);
    for (int i = 1; i <= subscribers; ++i) fleet.subscribe(i, "bench/s5", 1, counter.handler());
    const std::string payload(64, 'x');
    Meter meter;
    meter.start();
    for (long i = 0; i < published; ++i) fleet.publish(0, "bench/s5", payload, 1);
    fleet.drain(0);
    return arrivals(counter, meter, deliveries);
}

// S7: connection 0 publishes QoS 1 (window 100) on bench/s7/in/<k>; connection 1 takes
// it and forwards it through connection 2 to bench/s7/out/<k>, where connection 3 counts.
Result forwarding(Fleet& fleet, const Broker& broker, long messages) {
    fleet.connect(broker.host, broker.port, 4, 100);
    Counter counter;
    counter.expect(messages);
    Disconnect disconnect(fleet);
    fleet.subscribe(3, "bench/s7/out/#", 1, counter.handler());
    fleet.forward(1, 2, "bench/s7/in/", "bench/s7/out/", 1);
    const std::string payload(64, 'x');
    Meter meter;
    meter.start();
    for (long i = 0; i < messages; ++i) {
        fleet.publish(0, "bench/s7/in/" + std::to_string(i % 10), payload, 1);
    }
    fleet.drain(0);
    return arrivals(counter, meter, messages);
}

}  // namespace

Result measure_idle(Fleet& fleet, const Broker& broker, int count) {
    const long before = rss_kb();
    Result r;
    Meter meter;
    meter.start();
    fleet.connect(broker.host, broker.port, count, 20);
    meter.finish(r, static_cast<std::uint64_t>(count));
    r.value = r.seconds;
    r.rss_kb_per_session = static_cast<double>(rss_kb() - before) / count;
    fleet.disconnect();
    return r;
}

std::vector<Case> all_cases(long messages) {
    std::vector<Case> cases;
    const int samples = static_cast<int>(std::clamp<long>(messages / 10, 50, 5000));
    for (int qos : {0, 1}) {
        cases.push_back({"S1", "ping-pong, QoS " + std::to_string(qos), "p50 us", true,
                         [=](Fleet& f, const Broker& b) { return latency(f, b, qos, samples); }});
    }
    for (std::size_t size : {16, 256, 1024}) {
        cases.push_back(
            {"S2", "QoS 0, " + std::to_string(size) + " B", "msg/s", true,
             [=](Fleet& f, const Broker& b) { return stream(f, b, 0, 1000, size, messages); }});
    }
    for (int window : {10, 100, 1000}) {
        cases.push_back(
            {"S3", "QoS 1, window " + std::to_string(window), "msg/s", true,
             [=](Fleet& f, const Broker& b) { return stream(f, b, 1, window, 64, messages); }});
    }
    for (int n : {10, 100, 1000}) {
        cases.push_back({"S4", "fan-in, " + std::to_string(n) + " publishers", "msg/s", true,
                         [=](Fleet& f, const Broker& b) { return fan_in(f, b, n, messages); }, n});
    }
    for (int n : {10, 100, 1000}) {
        cases.push_back({"S5", "fan-out, " + std::to_string(n) + " subscribers", "deliveries/s",
                         true,
                         [=](Fleet& f, const Broker& b) { return fan_out(f, b, n, messages); }, n});
    }
    cases.push_back({"S7", "forwarding, QoS 1", "msg/s", true,
                     [=](Fleet& f, const Broker& b) { return forwarding(f, b, messages); }});
    for (int n : {1000, 10000}) {
        cases.push_back(
            {"S6", std::to_string(n) + " idle sessions", "connect s", false, {}, n, true});
    }
    return cases;
}

}  // namespace mqttx::bench
