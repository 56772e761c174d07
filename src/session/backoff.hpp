// Backoff: the delays of ReconnectPolicy. Pure arithmetic with an injected source of
// randomness, so the sequence can be tested exactly.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "mqttx/options.hpp"

namespace mqttx::detail {

class Backoff {
  public:
    // `uniform` returns a number in [0, 1).
    Backoff(ReconnectPolicy policy, std::function<double()> uniform)
        : policy_(policy), uniform_(std::move(uniform)) {}

    // The delay before the next attempt: initial * multiplier^(attempt - 1), capped
    // at max, then scaled by a factor in [1 - jitter, 1 + jitter] (and capped again).
    std::chrono::milliseconds next() {
        const double base = static_cast<double>(policy_.initial.count()) *
                            std::pow(policy_.multiplier, static_cast<double>(attempt_));
        const double capped = std::min(base, static_cast<double>(policy_.max.count()));
        const double factor = 1.0 + policy_.jitter * (2.0 * uniform_() - 1.0);
        // llround of a double near 2^63 overflows: a max that large (centuries) is held
        // to 2^62 ms, which the scheduler saturates to "never" anyway.
        const double ceiling = std::min(static_cast<double>(policy_.max.count()), 0x1p62);
        const double jittered = std::min(capped * factor, ceiling);
        ++attempt_;
        return std::chrono::milliseconds(std::max<long long>(1, std::llround(jittered)));
    }
    // Attempts made since the last reset.
    int attempt() const noexcept { return attempt_; }
    void reset() noexcept { attempt_ = 0; }

  private:
    ReconnectPolicy policy_;
    std::function<double()> uniform_;
    int attempt_ = 0;
};

}  // namespace mqttx::detail
