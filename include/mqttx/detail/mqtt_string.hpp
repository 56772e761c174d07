// The rules every string the library puts on the wire follows: MQTT 3.1.1 s1.5.3 and
// MQTT 5.0 s1.5.4 (UTF-8 Encoded String), s1.5.6 (Binary Data). Installed because the
// inline topic checks use them; not part of the public API.
#pragma once

#include <cstddef>
#include <string_view>

namespace mqttx::detail {

// A UTF-8 Encoded String and Binary Data both carry a two-byte length.
inline constexpr std::size_t max_string_length = 65535;

// Bytes of one well-formed UTF-8 sequence starting at s[i], or 0 when ill-formed.
// Table 3-7 of the Unicode standard: this rejects overlong forms, surrogates
// (U+D800..U+DFFF, which MQTT forbids) and code points above U+10FFFF.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
    auto byte = [&](std::size_t k) -> unsigned {
        return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100u;
    };
    auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
    const unsigned b0 = byte(0);
    if (b0 < 0x80) return 1;
    if (in(b0, 0xC2, 0xDF)) return in(byte(1), 0x80, 0xBF) ? 2 : 0;
    if (in(b0, 0xE0, 0xEF)) {
        const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;  // E0 80..9F would be overlong
        const unsigned hi = b0 == 0xED ? 0x9F : 0xBF;  // ED A0..BF would be a surrogate
        return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
    }
    if (in(b0, 0xF0, 0xF4)) {
        const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;  // F0 80..8F would be overlong
        const unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;  // F4 90.. would be above U+10FFFF
        return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF) ? 4 : 0;
    }
    return 0;  // continuation byte first, C0/C1 (always overlong) or F5..FF
}

// The problem with the well-formed sequence of `len` bytes at s[i], or "" when MQTT
// allows it. The spec says only "SHOULD NOT" for control characters and non-characters,
// but brokers close the connection on them (mosquitto: "malformed packet"), so a
// message carrying one would be sent again on every reconnect: refused here instead.
inline std::string_view check_code_point(std::string_view s, std::size_t i,
                                         std::size_t len) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    switch (len) {
        case 1:
            if (b(0) == 0) return "contains U+0000";
            if (b(0) < 0x20 || b(0) == 0x7F) return "contains a control character";
            return {};
        case 2:  // U+0080..U+009F are C2 80..C2 9F
            return b(0) == 0xC2 && b(1) <= 0x9F ? "contains a control character"
                                                : std::string_view();
        case 3:  // U+FDD0..U+FDEF, U+FFFE and U+FFFF
            if ((b(0) == 0xEF && b(1) == 0xB7 && b(2) >= 0x90 && b(2) <= 0xAF) ||
                (b(0) == 0xEF && b(1) == 0xBF && b(2) >= 0xBE)) {
                return "contains a Unicode non-character";
            }
            return {};
        default:  // U+nFFFE and U+nFFFF of the planes above
            return (b(1) & 0x0F) == 0x0F && b(2) == 0xBF && b(3) >= 0xBE
                       ? "contains a Unicode non-character"
                       : std::string_view();
    }
}

// "" when `s` may go on the wire as a UTF-8 Encoded String, else the first problem.
inline std::string_view check_mqtt_string(std::string_view s) noexcept {
    if (s.size() > max_string_length) return "longer than 65535 bytes";
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = utf8_sequence_length(s, i);
        if (len == 0) return "not well-formed UTF-8";
        if (auto problem = check_code_point(s, i, len); !problem.empty()) return problem;
        i += len;
    }
    return {};
}

}  // namespace mqttx::detail
