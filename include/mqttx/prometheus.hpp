// PrometheusExporter: builds Prometheus text exposition format 0.0.4. Each family is
// declared once (name, type, help) and its samples are grouped under one # HELP and
// # TYPE, in declaration order. Numbers are written with std::to_chars, so the text
// does not depend on the C or C++ locale. SessionManager::prometheus_text() and
// Session::prometheus_metrics() use it; programs may use it for metrics of their own.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mqttx/metrics.hpp"

namespace mqttx {

enum class MetricType { counter, gauge, histogram };

struct Label {
    std::string_view name;
    std::string_view value;  // any bytes; escaped on output
};

class PrometheusExporter {
  public:
    // Every family's name starts with `prefix` and '_' ("mqtt" gives "mqtt_..."). An
    // empty prefix adds nothing. Throws Error (configuration) on an invalid prefix.
    explicit PrometheusExporter(std::string prefix = "mqtt");

    // Declares a family; `name` is what follows the prefix. A counter's name must end
    // in "_total" (the convention promtool checks). Throws Error (configuration) on an
    // invalid name or one declared before.
    void declare(std::string_view name, MetricType type, std::string_view help);

    // One sample of a declared counter or gauge. Throws Error (configuration) on an
    // undeclared family, a histogram family, an invalid or reserved label name, or a
    // negative or non-finite counter.
    template <class T>
    requires std::is_arithmetic_v<T>
    void add(std::string_view name, std::initializer_list<Label> labels, T value) {
        // Integers are written exactly (a double would round counters above 2^53).
        if constexpr (std::is_integral_v<T>) {
            if (!(std::is_signed_v<T> && value < 0)) {
                add_integer(name, labels, static_cast<std::uint64_t>(value));
                return;
            }
        }
        add_real(name, labels, static_cast<double>(value));
    }
    // One histogram: its _bucket (with le, cumulative, +Inf), _sum and _count lines.
    void add(std::string_view name, std::initializer_list<Label> labels,
             const LatencyHistogram& histogram);

    // The families with at least one sample, each with # HELP and # TYPE.
    std::string text() const;
    void append_to(std::string& out) const;

  private:
    struct Family {
        std::string name;  // with the prefix
        MetricType type;
        std::string help;  // escaped
        std::string samples;
    };
    void add_integer(std::string_view name, std::initializer_list<Label> labels,
                     std::uint64_t value);
    void add_real(std::string_view name, std::initializer_list<Label> labels, double value);
    Family& family(std::string_view name, MetricType type_wanted, bool histogram);
    template <class Number>
    static void append_sample(Family& family, std::string_view suffix,
                              std::initializer_list<Label> labels, std::string_view le,
                              Number value);
    static void append_labels(std::string& out, std::initializer_list<Label> labels,
                              std::string_view extra_name = {}, std::string_view extra_value = {});

    std::string prefix_;
    std::vector<Family> families_;
};

}  // namespace mqttx
