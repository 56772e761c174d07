// Heap allocations made by this process so far: allocation_counter.cpp replaces the
// global operator new of the benchmark binary to count them.
#pragma once

#include <cstdint>

namespace mqttx::bench {

std::uint64_t allocations() noexcept;

}  // namespace mqttx::bench
