// Problems: the configuration errors found by a validate(), reported all at once in one
// Error (kind configuration) with each problem under its field name.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mqttx/detail/mqtt_string.hpp"
#include "mqttx/error.hpp"

namespace mqttx::detail {

// True when `value` is one of the enumerators 0..last: an enum class converts from any
// integer, and Paho would put whatever it holds on the wire.
template <class Enum>
bool is_enumerator(Enum value, Enum last) noexcept {
    const auto raw = static_cast<std::underlying_type_t<Enum>>(value);
    return raw >= 0 && raw <= static_cast<std::underlying_type_t<Enum>>(last);
}

// `text` in quotes as an error message may show it: what breaks MQTT's string rules
// (control characters, ill-formed UTF-8) as \xNN, for a NUL would end what() early,
// and only about its first 100 bytes.
inline std::string quoted(std::string_view text) {
    constexpr std::size_t shown = 100;
    std::string out = "'";
    std::size_t i = 0;
    while (i < text.size() && i < shown) {
        const std::size_t len = utf8_sequence_length(text, i);
        if (len > 0 && text[i] != '\\' && check_code_point(text, i, len).empty()) {
            out.append(text, i, len);
            i += len;
            continue;
        }
        char escaped[5];
        std::snprintf(escaped, sizeof escaped, "\\x%02X", static_cast<unsigned char>(text[i]));
        out += escaped;
        ++i;
    }
    out += "'";
    if (i < text.size()) out += " (" + std::to_string(text.size()) + " bytes)";
    return out;
}

class Problems {
  public:
    void add(std::string field, std::string problem) {
        items_.emplace_back(std::move(field), std::move(problem));
    }
    bool empty() const { return items_.empty(); }
    // "field: problem; field: problem".
    std::string text() const {
        std::string out;
        for (const auto& [field, problem] : items_) {
            if (!out.empty()) out += "; ";
            out += field + ": " + problem;
        }
        return out;
    }

    // `heading` says what was checked, e.g. "invalid options for session 's'".
    [[noreturn]] void raise(std::string heading, const std::string& session = {}) const {
        Error error(ErrorKind::configuration, std::move(heading) + ": " + text());
        // In context() one by one for programs, in what() once, as the message says them.
        for (const auto& [field, problem] : items_) error.context_.emplace_back(field, problem);
        error.context_in_message_ = items_.size();
        if (!session.empty()) error.with_session(session);  // composes what()
        error.compose();
        throw error;
    }

  private:
    std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace mqttx::detail
