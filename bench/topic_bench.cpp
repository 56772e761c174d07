#include <benchmark/benchmark.h>

#include "mqttx/topic.hpp"

namespace {

void BM_TopicMatches(benchmark::State& state) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(mqttx::topic::matches("sensors/+/temperature/#",
                                                       "sensors/room-42/temperature/celsius"));
    }
}
BENCHMARK(BM_TopicMatches);

void BM_CheckTopicName(benchmark::State& state) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(mqttx::topic::check_topic_name("sensors/room-42/temperature"));
    }
}
BENCHMARK(BM_CheckTopicName);

}  // namespace
