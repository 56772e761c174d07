// The cost of metrics: a counter increment as the message path does it (uncontended and
// with two threads on one session), a session snapshot, and rendering prometheus_text()
// for 1,000 sessions (added, not connected: the text's cost does not depend on traffic).
#include <benchmark/benchmark.h>
#include <mqttx/mqttx.hpp>

#include <memory>
#include <string>

#include "session_stats.hpp"

namespace {

mqttx::detail::SessionStats& shared_stats() {
    static mqttx::detail::SessionStats stats;
    return stats;
}

// What publish() does per message: two relaxed increments on the sending cache line.
void BM_CounterIncrement(benchmark::State& state) {
    auto& stats = shared_stats();
    for (auto _ : state) {
        stats.messages_sent.fetch_add(1, std::memory_order_relaxed);
        stats.bytes_sent.fetch_add(100, std::memory_order_relaxed);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2);

void BM_LatencyRecord(benchmark::State& state) {
    auto& stats = shared_stats();
    for (auto _ : state) stats.publish_latency.record(std::chrono::microseconds(700));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LatencyRecord)->Threads(1)->Threads(2);

void BM_SessionSnapshot(benchmark::State& state) {
    mqttx::SessionManager manager;
    auto session = manager.add_session(mqttx::quick_connect("s", "tcp://127.0.0.1:1").build());
    auto route = session->subscribe("a/#", 1, [](const mqttx::Message&) {});
    for (auto _ : state) benchmark::DoNotOptimize(session->metrics());
}
BENCHMARK(BM_SessionSnapshot);

void BM_PrometheusText(benchmark::State& state) {
    mqttx::SessionManager manager;
    std::vector<mqttx::Route> routes;
    for (int i = 0; i < state.range(0); ++i) {
        auto session = manager.add_session(
            mqttx::quick_connect("session-" + std::to_string(i), "tcp://127.0.0.1:1").build());
        routes.push_back(
            session->subscribe("plant/+/temperature", 1, [](const mqttx::Message&) {}));
    }
    std::size_t bytes = 0;
    for (auto _ : state) {
        auto text = manager.prometheus_text();
        bytes = text.size();
        benchmark::DoNotOptimize(text);
    }
    state.counters["text_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_PrometheusText)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
