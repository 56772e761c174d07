#include "mqttx/prometheus.hpp"

#include <charconv>
#include <cmath>

#include "mqttx/error.hpp"

namespace mqttx {
namespace {

bool name_char(char c, bool first, bool colon_allowed) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    return letter || (colon_allowed && c == ':') || (!first && digit);
}

bool valid_name(std::string_view name, bool colon_allowed) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (!name_char(name[i], i == 0, colon_allowed)) return false;
    }
    return true;
}

Error configuration(std::string message, std::string_view what) {
    return Error(ErrorKind::configuration, std::move(message))
        .with_context("name", std::string(what));
}

// Length of the valid UTF-8 sequence at `s[i]`, or 0 when it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = byte(i);
    if (lead < 0x80) return 1;
    std::size_t length = 0;
    unsigned min = 0;
    unsigned code = 0;
    if ((lead & 0xE0) == 0xC0) {
        length = 2, min = 0x80, code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, min = 0x800, code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, min = 0x10000, code = lead & 0x07;
    } else {
        return 0;
    }
    if (i + length > s.size()) return 0;
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
        code = (code << 6) | (byte(i + k) & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
    return length;
}

// Escapes backslash and newline (and the double quote inside label values); bytes that
// are not UTF-8 become U+FFFD, as the format requires UTF-8.
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (std::size_t i = 0; i < text.size();) {
        const char c = text[i];
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (quote && c == '"') {
            out += "\\\"";
        } else {
            const auto length = utf8_length(text, i);
            if (length == 0) {
                out += "\xEF\xBF\xBD";
                ++i;
                continue;
            }
            out.append(text.substr(i, length));
            i += length;
            continue;
        }
        ++i;
    }
}

void append_number(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    out.append(buffer, end);
}

// Shortest round trip; the bucket bounds in general style ("0.0005" rather than "5e-04").
void append_number(std::string& out, double value, bool general = false) {
    if (std::isnan(value)) {
        out += "NaN";
    } else if (std::isinf(value)) {
        out += value > 0 ? "+Inf" : "-Inf";
    } else {
        char buffer[32];
        const auto end = general ? std::to_chars(buffer, buffer + sizeof buffer, value,
                                                 std::chars_format::general)
                                       .ptr
                                 : std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
        out.append(buffer, end);
    }
}

void check_labels(std::initializer_list<Label> labels) {
    for (const auto& label : labels) {
        if (!valid_name(label.name, false) || label.name.starts_with("__") || label.name == "le") {
            throw configuration("invalid Prometheus label name \"" + std::string(label.name) +
                                    "\": use letters, digits and '_', not starting with a "
                                    "digit or \"__\", and not \"le\"",
                                label.name);
        }
    }
}

const char* type_name(MetricType type) {
    switch (type) {
        case MetricType::counter:
            return "counter";
        case MetricType::gauge:
            return "gauge";
        case MetricType::histogram:
            return "histogram";
    }
    return "untyped";
}

}  // namespace

PrometheusExporter::PrometheusExporter(std::string prefix) : prefix_(std::move(prefix)) {
    if (!prefix_.empty()) {
        if (!valid_name(prefix_, true)) {
            throw configuration("invalid Prometheus metric prefix \"" + prefix_ +
                                    "\": use letters, digits, '_' and ':', not starting "
                                    "with a digit",
                                prefix_);
        }
        prefix_ += '_';
    }
}

void PrometheusExporter::declare(std::string_view name, MetricType type, std::string_view help) {
    const std::string full = prefix_ + std::string(name);
    if (!valid_name(full, true)) {
        throw configuration("invalid Prometheus metric name \"" + full +
                                "\": use letters, digits, '_' and ':', not starting with a digit",
                            full);
    }
    if (type == MetricType::counter && !full.ends_with("_total")) {
        throw configuration("Prometheus counter \"" + full + "\" must end in _total", full);
    }
    for (const auto& family : families_) {
        if (family.name == full) {
            throw configuration("Prometheus metric \"" + full + "\" is declared twice", full);
        }
    }
    Family family{full, type, {}, {}};
    append_escaped(family.help, help, false);
    families_.push_back(std::move(family));
}

PrometheusExporter::Family& PrometheusExporter::family(std::string_view name,
                                                       MetricType type_wanted, bool histogram) {
    // Families are few (tens): a scan comparing the unprefixed tail is cheap.
    for (auto& family : families_) {
        if (family.name.size() == prefix_.size() + name.size() &&
            std::string_view(family.name).substr(prefix_.size()) == name) {
            if (histogram != (family.type == MetricType::histogram)) {
                throw configuration("Prometheus metric \"" + family.name + "\" is a " +
                                        type_name(family.type) + ", not a " +
                                        type_name(type_wanted),
                                    family.name);
            }
            return family;
        }
    }
    throw configuration(
        "Prometheus metric \"" + prefix_ + std::string(name) + "\" was not declared",
        prefix_ + std::string(name));
}

void PrometheusExporter::append_labels(std::string& out, std::initializer_list<Label> labels,
                                       std::string_view extra_name, std::string_view extra_value) {
    if (labels.size() == 0 && extra_name.empty()) return;
    out += '{';
    bool first = true;
    auto one = [&](std::string_view name, std::string_view value) {
        if (!first) out += ',';
        first = false;
        out.append(name);
        out += "=\"";
        append_escaped(out, value, true);
        out += '"';
    };
    for (const auto& label : labels) one(label.name, label.value);
    if (!extra_name.empty()) one(extra_name, extra_value);
    out += '}';
}

// "<name><suffix>{labels[,le="..."]} <value>\n"
template <class Number>
void PrometheusExporter::append_sample(Family& f, std::string_view suffix,
                                       std::initializer_list<Label> labels, std::string_view le,
                                       Number value) {
    f.samples += f.name;
    f.samples += suffix;
    append_labels(f.samples, labels, le.empty() ? "" : "le", le);
    f.samples += ' ';
    append_number(f.samples, value);
    f.samples += '\n';
}

void PrometheusExporter::add_integer(std::string_view name, std::initializer_list<Label> labels,
                                     std::uint64_t value) {
    auto& f = family(name, MetricType::gauge, false);
    check_labels(labels);
    append_sample(f, "", labels, {}, value);
}

void PrometheusExporter::add_real(std::string_view name, std::initializer_list<Label> labels,
                                  double value) {
    auto& f = family(name, MetricType::gauge, false);
    check_labels(labels);
    if (f.type == MetricType::counter && !(value >= 0.0 && std::isfinite(value))) {
        throw configuration("Prometheus counter \"" + f.name +
                                "\" given a negative or "
                                "non-finite value",
                            f.name);
    }
    append_sample(f, "", labels, {}, value);
}

void PrometheusExporter::add(std::string_view name, std::initializer_list<Label> labels,
                             const LatencyHistogram& histogram) {
    auto& f = family(name, MetricType::histogram, true);
    check_labels(labels);
    for (std::size_t i = 0; i < histogram.buckets.size(); ++i) {
        std::string le;
        append_number(le, LatencyHistogram::bounds_seconds[i], true);
        append_sample(f, "_bucket", labels, le, histogram.buckets[i]);
    }
    append_sample(f, "_bucket", labels, "+Inf", histogram.count);
    append_sample(f, "_sum", labels, {}, histogram.sum_seconds);
    append_sample(f, "_count", labels, {}, histogram.count);
}

void PrometheusExporter::append_to(std::string& out) const {
    for (const auto& family : families_) {
        if (family.samples.empty()) continue;
        out += "# HELP ";
        out += family.name;
        out += ' ';
        out += family.help;
        out += "\n# TYPE ";
        out += family.name;
        out += ' ';
        out += type_name(family.type);
        out += '\n';
        out += family.samples;
    }
}

std::string PrometheusExporter::text() const {
    std::size_t size = 0;
    for (const auto& family : families_) size += family.samples.size() + family.help.size() + 64;
    std::string out;
    out.reserve(size);
    append_to(out);
    return out;
}

}  // namespace mqttx
