// Forwarder costs that need no broker: rendering a mapped topic (and its heap
// allocations), and a forwarder's whole lifecycle (add, start, stop, remove) on
// sessions that are not connected.
#include <benchmark/benchmark.h>
#include <mqttx/mqttx.hpp>

#include <string>

#include "allocation_counter.hpp"
#include "topic_template.hpp"

namespace {

void BM_TopicTemplateApply(benchmark::State& state) {
    std::string problem;
    mqttx::detail::TopicTemplate mapping("sensors/+/temperature", "storage/{1}/temp", problem);
    std::string out;
    mapping.apply("sensors/kitchen/temperature", out);  // warm the per-thread buffers
    const auto before = mqttx::bench::allocations();
    for (auto _ : state) {
        benchmark::DoNotOptimize(mapping.apply("sensors/kitchen/temperature", out));
    }
    state.counters["allocs/op"] =
        benchmark::Counter(static_cast<double>(mqttx::bench::allocations() - before) /
                           static_cast<double>(state.iterations()));
}
BENCHMARK(BM_TopicTemplateApply);

void BM_ForwarderLifecycle(benchmark::State& state) {
    mqttx::SessionManager manager;
    // Never connected: start() records the subscriptions without waiting for a broker.
    manager.add_session(mqttx::quick_connect("site", "tcp://127.0.0.1:1").build());
    manager.add_session(mqttx::quick_connect("cloud", "tcp://127.0.0.1:1").build());
    const auto config = mqttx::ForwarderBuilder("bench")
                            .source("site", {"sensors/+/temperature", "alarms/#"})
                            .target("cloud")
                            .map_topic("sensors/+/temperature", "storage/{1}/temp")
                            .build();
    for (auto _ : state) {
        auto& forwarder = manager.forwarders().add(config);
        forwarder.stop();
        manager.forwarders().remove("bench");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ForwarderLifecycle);

}  // namespace
