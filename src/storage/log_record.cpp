#include "storage/log_record.hpp"

#include <zlib.h>

namespace mqttx::detail::log {

namespace {

template <class T>
void put_le(std::string& out, T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

template <class T>
T get_le(const char* in) {
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        value |= static_cast<T>(static_cast<unsigned char>(in[i])) << (8 * i);
    }
    return value;
}

std::uint32_t crc_of(std::string_view bytes) {
    return static_cast<std::uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

}  // namespace

void append_record(std::string& out, const Record& record) {
    const auto start = out.size();
    const auto body = body_fixed_size + record.key.size() + record.value.size();
    out.append(4, '\0');  // the CRC, once the rest is there
    put_le(out, static_cast<std::uint32_t>(body));
    put_le(out, record.sequence);
    out += static_cast<char>(record.type);
    put_le(out, static_cast<std::uint16_t>(record.key.size()));
    out += record.key;
    out += record.value;
    const auto crc = crc_of(std::string_view(out).substr(start + 4));
    for (int i = 0; i < 4; ++i) out[start + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
}

Decoded decode_record(std::string_view bytes) {
    Decoded decoded;
    if (bytes.empty()) {
        decoded.problem = "end of segment";
        return decoded;
    }
    if (bytes.size() < record_header_size) {
        decoded.problem = "record header cut short";
        return decoded;
    }
    const auto body = get_le<std::uint32_t>(bytes.data() + 4);
    if (body < body_fixed_size || body > max_body_size) {
        decoded.problem = "impossible record length";
        return decoded;
    }
    if (bytes.size() - record_header_size < body) {
        decoded.problem = "record cut short";
        return decoded;
    }
    if (get_le<std::uint32_t>(bytes.data()) != crc_of(bytes.substr(4, 4 + body))) {
        decoded.problem = "checksum mismatch";
        return decoded;
    }
    const char* in = bytes.data() + record_header_size;
    auto& record = decoded.record;
    record.sequence = get_le<std::uint64_t>(in);
    const auto type = static_cast<unsigned char>(in[8]);
    const auto key_size = get_le<std::uint16_t>(in + 9);
    if ((type != 1 && type != 2) || key_size > body - body_fixed_size) {
        decoded.problem = "malformed record body";  // a checksum collision, or a writer bug
        return decoded;
    }
    record.type = static_cast<RecordType>(type);
    record.key = std::string_view(in + body_fixed_size, key_size);
    record.value =
        std::string_view(in + body_fixed_size + key_size, body - body_fixed_size - key_size);
    decoded.size = record_header_size + body;
    return decoded;
}

}  // namespace mqttx::detail::log
