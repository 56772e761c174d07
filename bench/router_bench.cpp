// Router lookup and delivery with 10, 1,000 and 10,000 routes, and the heap
// allocations per delivered message (see allocation_counter.hpp).
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "allocation_counter.hpp"
#include "dispatcher.hpp"
#include "logging.hpp"
#include "router.hpp"

namespace {

using mqttx::detail::RouteEntry;
using mqttx::detail::Router;

// Routes on "site/<i>/+/value", plus one "#" and one exact route on the hot topic.
struct Fixture {
    explicit Fixture(int routes)
        : router(std::make_shared<mqttx::detail::SessionStats>(), mqttx::detail::default_logger()) {
        for (int i = 0; i < routes; ++i) {
            add("site/" + std::to_string(i) + "/+/value");
        }
        add("#");
        add("site/7/device/value");
    }
    void add(std::string filter) {
        auto entry = std::make_shared<RouteEntry>(
            std::move(filter), 0,
            [this](const mqttx::Message&) { delivered.fetch_add(1, std::memory_order_relaxed); },
            std::weak_ptr<mqttx::detail::RouteOwner>());
        router.insert(entry);
        entries.push_back(std::move(entry));
    }
    Router router;
    std::vector<std::shared_ptr<RouteEntry>> entries;
    std::atomic<std::uint64_t> delivered{0};
};

void BM_RouterDeliver(benchmark::State& state) {
    Fixture fixture(static_cast<int>(state.range(0)));
    const auto message = mqttx::Message::make("site/7/device/value", "21.5");
    fixture.router.deliver(
        message, mqttx::detail::Router::Pass::dispatcher);  // warm the per-thread match buffer
    const auto before = mqttx::bench::allocations();
    for (auto _ : state) fixture.router.deliver(message, mqttx::detail::Router::Pass::dispatcher);
    state.counters["allocs_per_msg"] =
        benchmark::Counter(static_cast<double>(mqttx::bench::allocations() - before) /
                           static_cast<double>(state.iterations()));
    state.counters["handlers_per_msg"] =
        benchmark::Counter(static_cast<double>(fixture.delivered.load()) /
                           static_cast<double>(state.iterations() + 1));
}
BENCHMARK(BM_RouterDeliver)->Arg(10)->Arg(1000)->Arg(10000);

// The whole hand-off of the receive path: what Paho's thread does (post to the
// session's dispatcher worker) plus the worker's lookup and handler calls.
void BM_DispatchThroughWorker(benchmark::State& state) {
    Fixture fixture(static_cast<int>(state.range(0)));
    auto router = std::shared_ptr<Router>(&fixture.router, [](Router*) {});
    mqttx::detail::Dispatcher dispatcher(1, 65536);
    const auto message = mqttx::Message::make("site/7/device/value", "21.5");
    auto drain = [&](std::uint64_t posted) {
        while (fixture.delivered.load() < 3 * posted) std::this_thread::yield();
    };
    dispatcher.post(0, router, message, std::chrono::seconds(1));
    drain(1);
    const auto before = mqttx::bench::allocations();
    std::uint64_t posted = 1;
    for (auto _ : state) {
        dispatcher.post(0, router, message, std::chrono::seconds(1));
        ++posted;
    }
    drain(posted);
    state.counters["allocs_per_msg"] =
        benchmark::Counter(static_cast<double>(mqttx::bench::allocations() - before) /
                           static_cast<double>(state.iterations()));
    dispatcher.stop();
}
BENCHMARK(BM_DispatchThroughWorker)->Arg(10)->Arg(1000)->Arg(10000)->UseRealTime();

}  // namespace
