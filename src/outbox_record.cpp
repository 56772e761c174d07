#include "outbox_record.hpp"

#include <charconv>
#include <cstdio>

namespace mqttx::detail {

namespace {

void put_string(std::string& out, std::string_view s) {
    const auto n = static_cast<std::uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
    out.append(s);
}

bool get_string(std::string_view& in, std::string& out) {
    if (in.size() < 4) return false;
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i)
        n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    if (in.size() < n) return false;
    out.assign(in.substr(0, n));
    in.remove_prefix(n);
    return true;
}

}  // namespace

std::string outbox_key(std::uint64_t sequence) {
    char digits[17];
    std::snprintf(digits, sizeof digits, "%llx", static_cast<unsigned long long>(sequence));
    return std::string(outbox_key_prefix) + digits;
}

std::optional<std::uint64_t> outbox_sequence(std::string_view key) {
    int base = 16;
    if (key.starts_with(outbox_key_prefix)) {
        key.remove_prefix(outbox_key_prefix.size());
    } else if (key.starts_with(decimal_outbox_key_prefix)) {
        key.remove_prefix(decimal_outbox_key_prefix.size());
        base = 10;
    } else {
        return std::nullopt;
    }
    std::uint64_t sequence = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), sequence, base);
    if (key.empty() || ec != std::errc() || end != key.data() + key.size()) return std::nullopt;
    return sequence;
}

std::string encode(const OutboxRecord& record) {
    std::string out;
    out += static_cast<char>(1);
    out += static_cast<char>(record.qos);
    out += static_cast<char>(record.retained ? 1 : 0);
    put_string(out, record.topic);
    put_string(out, record.payload);
    put_string(out, std::to_string(record.user_properties.size()));
    for (const auto& [key, value] : record.user_properties) {
        put_string(out, key);
        put_string(out, value);
    }
    return out;
}

std::optional<OutboxRecord> decode_outbox_record(std::string_view in) {
    if (in.size() < 3 || in[0] != 1) return std::nullopt;
    OutboxRecord record;
    record.qos = in[1];
    record.retained = in[2] != 0;
    if (record.qos < 0 || record.qos > 2) return std::nullopt;
    in.remove_prefix(3);
    std::string count_text;
    if (!get_string(in, record.topic) || !get_string(in, record.payload) ||
        !get_string(in, count_text)) {
        return std::nullopt;
    }
    std::size_t count = 0;
    const auto [end, ec] =
        std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
    if (ec != std::errc() || end != count_text.data() + count_text.size()) return std::nullopt;
    for (std::size_t i = 0; i < count; ++i) {
        std::string key, value;
        if (!get_string(in, key) || !get_string(in, value)) return std::nullopt;
        record.user_properties.emplace_back(std::move(key), std::move(value));
    }
    if (!in.empty()) return std::nullopt;
    return record;
}

namespace {

// MQTT's variable byte integer (remaining length, property length).
bool get_varint(std::string_view& in, std::size_t& value) {
    value = 0;
    for (int shift = 0; shift < 28; shift += 7) {
        if (in.empty()) return false;
        const auto byte = static_cast<unsigned char>(in.front());
        in.remove_prefix(1);
        value |= static_cast<std::size_t>(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0) return true;
    }
    return false;
}

}  // namespace

std::optional<std::pair<std::string, std::string>> decode_publish_packet(std::string_view in,
                                                                         bool v5) {
    if (in.empty() || (static_cast<unsigned char>(in[0]) >> 4) != 3) return std::nullopt;
    const int qos = (static_cast<unsigned char>(in[0]) >> 1) & 3;
    in.remove_prefix(1);
    std::size_t remaining = 0;
    if (!get_varint(in, remaining) || remaining != in.size() || in.size() < 2) return std::nullopt;
    const std::size_t topic_length =
        (static_cast<std::size_t>(static_cast<unsigned char>(in[0])) << 8) |
        static_cast<unsigned char>(in[1]);
    in.remove_prefix(2);
    if (in.size() < topic_length) return std::nullopt;
    std::string topic(in.substr(0, topic_length));
    in.remove_prefix(topic_length);
    if (qos > 0) {
        if (in.size() < 2) return std::nullopt;
        in.remove_prefix(2);  // packet identifier
    }
    if (v5) {
        std::size_t properties = 0;
        if (!get_varint(in, properties) || in.size() < properties) return std::nullopt;
        in.remove_prefix(properties);
    }
    return std::make_pair(std::move(topic), std::string(in));
}

}  // namespace mqttx::detail
