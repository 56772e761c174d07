#include "session/backoff.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace std::chrono_literals;

namespace mqttx::detail {
namespace {

auto constant(double value) {
    return [value] { return value; };
}

// initial * multiplier^n capped at max, before jitter.
double nominal(const ReconnectPolicy& p, int n) {
    return std::min(static_cast<double>(p.initial.count()) * std::pow(p.multiplier, n),
                    static_cast<double>(p.max.count()));
}

TEST(Backoff, MidpointGivesTheExactSequence) {
    Backoff backoff(ReconnectPolicy{100ms, 10000ms, 2.0, 0.2}, constant(0.5));
    const std::vector<std::int64_t> expected = {100,  200,   400,   800,   1600, 3200,
                                                6400, 10000, 10000, 10000, 10000};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(backoff.next().count(), expected[i]) << "attempt " << i;
    }
}

TEST(Backoff, MidpointWithFractionalMultiplier) {
    const auto p = ReconnectPolicy{1000ms, 5000ms, 1.5, 0.5};
    Backoff backoff(p, constant(0.5));
    // 1000, 1500, 2250, 3375, 5062.5 -> capped 5000
    for (const std::int64_t expected : {1000, 1500, 2250, 3375, 5000, 5000}) {
        EXPECT_EQ(backoff.next().count(), expected);
    }
}

TEST(Backoff, MultiplierOneIsConstant) {
    Backoff backoff(ReconnectPolicy{250ms, 60000ms, 1.0, 0.3}, constant(0.5));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(backoff.next(), 250ms);
}

TEST(Backoff, InitialEqualToMax) {
    Backoff backoff(ReconnectPolicy{700ms, 700ms, 3.0, 0.0}, constant(0.9));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(backoff.next(), 700ms);
}

TEST(Backoff, NoJitterIgnoresTheRandomSource) {
    for (const double u : {0.0, 0.25, 0.5, 0.999}) {
        Backoff backoff(ReconnectPolicy{10ms, 1000ms, 3.0, 0.0}, constant(u));
        for (const std::int64_t expected : {10, 30, 90, 270, 810, 1000, 1000}) {
            EXPECT_EQ(backoff.next().count(), expected) << "u=" << u;
        }
    }
}

// With the lowest and (nearly) highest random value, each delay stays within
// [1 - jitter, 1 + jitter] of the nominal delay and never exceeds max.
void expect_within_jitter(double u) {
    const auto p = ReconnectPolicy{100ms, 5000ms, 2.0, 0.2};
    Backoff backoff(p, constant(u));
    for (int n = 0; n < 15; ++n) {
        const double base = nominal(p, n);
        const auto delay = static_cast<double>(backoff.next().count());
        EXPECT_GE(delay, std::floor(base * (1.0 - p.jitter))) << "u=" << u << " n=" << n;
        EXPECT_LE(delay, std::ceil(base * (1.0 + p.jitter))) << "u=" << u << " n=" << n;
        EXPECT_LE(delay, static_cast<double>(p.max.count())) << "u=" << u << " n=" << n;
        EXPECT_GE(delay, 1.0);
    }
}

TEST(Backoff, LowestRandomStaysWithinJitter) {
    expect_within_jitter(0.0);
}

TEST(Backoff, HighestRandomStaysWithinJitterAndUnderMax) {
    expect_within_jitter(0.999);
}

TEST(Backoff, LowestRandomIsExactlyTheLowerBound) {
    const auto p = ReconnectPolicy{100ms, 5000ms, 2.0, 0.2};
    Backoff backoff(p, constant(0.0));
    // 0.8 * (100, 200, 400, 800, 1600, 3200, 5000, 5000)
    for (const std::int64_t expected : {80, 160, 320, 640, 1280, 2560, 4000, 4000}) {
        EXPECT_EQ(backoff.next().count(), expected);
    }
}

TEST(Backoff, HighestRandomIsCappedAtMax) {
    const auto p = ReconnectPolicy{100ms, 5000ms, 2.0, 0.2};
    Backoff backoff(p, constant(0.999));
    for (int n = 0; n < 6; ++n) (void)backoff.next();  // up to 3200 nominal
    // 3200 nominal * ~1.2 = 3839; next nominals hit max and jitter cannot go above it.
    for (int n = 0; n < 5; ++n) EXPECT_EQ(backoff.next(), 5000ms);
}

TEST(Backoff, RandomSourceStaysWithinBounds) {
    const auto p = ReconnectPolicy{50ms, 30000ms, 1.7, 0.35};
    std::mt19937 engine(12345);
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    Backoff backoff(p, [&] { return dist(engine); });
    for (int round = 0; round < 20; ++round) {
        backoff.reset();
        for (int n = 0; n < 40; ++n) {
            const double base = nominal(p, n);
            const auto delay = static_cast<double>(backoff.next().count());
            ASSERT_GE(delay, std::floor(base * (1.0 - p.jitter))) << "n=" << n;
            ASSERT_LE(delay, std::ceil(base * (1.0 + p.jitter))) << "n=" << n;
            ASSERT_LE(delay, 30000.0) << "n=" << n;
        }
    }
}

TEST(Backoff, ManyAttemptsDoNotOverflow) {
    const auto p = ReconnectPolicy{1000ms, 60000ms, 10.0, 0.1};
    Backoff backoff(p, constant(0.5));
    for (int n = 0; n < 2000; ++n) {
        const auto delay = backoff.next();
        ASSERT_GE(delay, 1ms);
        ASSERT_LE(delay, 60000ms);
    }
    EXPECT_EQ(backoff.next(), 60000ms);
}

TEST(Backoff, NeverBelowOneMillisecond) {
    Backoff backoff(ReconnectPolicy{1ms, 1ms, 1.0, 0.9}, constant(0.0));  // 0.1 ms rounds to 0
    EXPECT_EQ(backoff.next(), 1ms);
}

TEST(Backoff, ResetRestartsTheSequence) {
    Backoff backoff(ReconnectPolicy{100ms, 10000ms, 2.0, 0.2}, constant(0.5));
    EXPECT_EQ(backoff.next(), 100ms);
    EXPECT_EQ(backoff.next(), 200ms);
    EXPECT_EQ(backoff.next(), 400ms);
    backoff.reset();
    EXPECT_EQ(backoff.attempt(), 0);
    EXPECT_EQ(backoff.next(), 100ms);
    EXPECT_EQ(backoff.next(), 200ms);
}

TEST(Backoff, AttemptCounts) {
    Backoff backoff(ReconnectPolicy{100ms, 200ms, 2.0, 0.2}, constant(0.5));
    EXPECT_EQ(backoff.attempt(), 0);
    for (int i = 1; i <= 10; ++i) {
        (void)backoff.next();
        EXPECT_EQ(backoff.attempt(), i);
    }
    backoff.reset();
    EXPECT_EQ(backoff.attempt(), 0);
    (void)backoff.next();
    EXPECT_EQ(backoff.attempt(), 1);
}

TEST(Backoff, CallsTheRandomSourceOncePerDelay) {
    int calls = 0;
    Backoff backoff(ReconnectPolicy{100ms, 1000ms, 2.0, 0.2}, [&calls] {
        ++calls;
        return 0.5;
    });
    for (int i = 0; i < 7; ++i) (void)backoff.next();
    EXPECT_EQ(calls, 7);
}

TEST(Backoff, DefaultPolicy) {
    Backoff backoff(ReconnectPolicy{}, constant(0.5));
    EXPECT_EQ(backoff.next(), 1000ms);
    EXPECT_EQ(backoff.next(), 2000ms);
    EXPECT_EQ(backoff.next(), 4000ms);
    for (int i = 0; i < 10; ++i) (void)backoff.next();
    EXPECT_EQ(backoff.next(), 60000ms);
}

}  // namespace
}  // namespace mqttx::detail
