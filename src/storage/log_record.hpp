// The file backend's log: segment files of records, appended and never rewritten.
//   segment:  "MQXLOG" 0x00 0x01 (8 bytes) | record | record | ...
//   record:   CRC-32 (4, little endian) | body length (4) | body
//   body:     sequence (8) | type (1) | key length (2) | key | value
// The CRC covers the length and the body, so a damaged length is caught too. Removals
// are tombstones (type remove, no value). Records of one key resolve by sequence,
// wherever they sit: compaction copies them unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mqttx::detail::log {

inline constexpr std::string_view segment_magic{"MQXLOG\0\1", 8};
inline constexpr std::size_t record_header_size = 8;
inline constexpr std::size_t body_fixed_size = 8 + 1 + 2;
inline constexpr std::size_t max_key_size = 65535;
// A body length beyond this is damage, not a record (MQTT's largest packet is 256 MiB).
inline constexpr std::size_t max_body_size = std::size_t{512} << 20;

enum class RecordType : std::uint8_t { put = 1, remove = 2 };

struct Record {
    std::uint64_t sequence = 0;
    RecordType type = RecordType::put;
    std::string_view key;
    std::string_view value;  // put only
};

inline std::size_t encoded_size(const Record& record) {
    return record_header_size + body_fixed_size + record.key.size() + record.value.size();
}

// Appends the encoded record to `out`. The key must be at most max_key_size bytes.
void append_record(std::string& out, const Record& record);

// The record at the start of `bytes`. `size` is 0 and `problem` says why when there is
// no whole, intact record there (a torn tail, damage, or nothing left).
struct Decoded {
    Record record;
    std::size_t size = 0;
    const char* problem = nullptr;
};
Decoded decode_record(std::string_view bytes);

}  // namespace mqttx::detail::log
