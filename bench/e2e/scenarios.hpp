// The scenarios of mqttx-bench. Each runs one fleet against the broker and measures
// what its table row needs; main.cpp interleaves the fleets and prints the rows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fleet.hpp"

namespace mqttx::bench {

struct Broker {
    std::string host;
    int port = 0;
};

struct Result {
    double value = 0.0;  // the row's figure: messages/s, or latency p50 in microseconds
    double p99_us = 0.0, max_us = 0.0;  // latency scenarios
    double seconds = 0.0;
    std::uint64_t messages = 0;    // messages (deliveries) the run moved
    double cpu_per_million = 0.0;  // CPU seconds (user + system) per million messages
    double allocs_per_message = 0.0;
    std::int64_t lost = 0;
    double rss_kb_per_session = 0.0;  // idle-sessions scenario
};

struct Case {
    std::string scenario;  // "S3"
    std::string label;     // "QoS 1, window 100"
    std::string metric;    // "msg/s", "p50 us", "connect s"
    bool with_mosquitto = false;
    // Runs the case on one fleet. `scale` (0..1] shrinks message counts for quick runs.
    std::function<Result(Fleet&, const Broker&)> run;
    // Sessions in the case (S4-S6), for the chart of throughput against session count.
    int sessions = 0;
    // Idle sessions: measured in a fresh process each (see main.cpp), no `run`.
    bool idle = false;
};

// Every case, in table order; `messages` scales the message counts.
std::vector<Case> all_cases(long messages);

// The idle-sessions measurement, run in a child process: connect `count` sessions of
// `fleet`, report the seconds it took and the RSS growth per session.
Result measure_idle(Fleet& fleet, const Broker& broker, int count);

}  // namespace mqttx::bench
