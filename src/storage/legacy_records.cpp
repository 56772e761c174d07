#include "storage/legacy_records.hpp"

#include <zlib.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

namespace mqttx::detail {

namespace {

// "MQXR" | value length (4, little endian) | CRC-32 of the value (4) | value
constexpr std::string_view magic = "MQXR";
constexpr std::size_t header_size = 12;

std::uint32_t get_u32(const char* in) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    }
    return v;
}

}  // namespace

std::string encode_file_name(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || (c == '.' && !out.empty())) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string decode_file_name(std::string_view name) {
    std::string out;
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '%' && i + 2 < name.size()) {
            out += static_cast<char>(std::stoi(std::string(name.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += name[i];
        }
    }
    return out;
}

bool is_legacy_record(const std::string& file_name) {
    return !file_name.starts_with("seg-") && !file_name.ends_with(".tmp") &&
           !file_name.ends_with(".corrupt");
}

std::optional<std::pair<std::string, std::string>> read_legacy_record(
    const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (data.size() < header_size || std::string_view(data).substr(0, 4) != magic ||
        get_u32(data.data() + 4) != data.size() - header_size) {
        return std::nullopt;
    }
    const auto value = std::string_view(data).substr(header_size);
    const auto crc = static_cast<std::uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(value.data()), static_cast<uInt>(value.size())));
    if (crc != get_u32(data.data() + 8)) return std::nullopt;
    return std::pair{decode_file_name(path.filename().string()), std::string(value)};
}

}  // namespace mqttx::detail
