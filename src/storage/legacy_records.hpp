// File names of the file backend, and the file-per-record layout it used before the
// log (one file per key, named after it), read once at open to move it into the log.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace mqttx::detail {

// Letters, digits, '-', '_' and '.' (not first) stay; everything else becomes %XX, so
// any client id or key maps to one safe file name and back.
std::string encode_file_name(std::string_view text);
std::string decode_file_name(std::string_view name);

// A file of the old layout: not a segment, not a temporary or a kept corrupt file.
bool is_legacy_record(const std::string& file_name);
// Its key and value; none when it is damaged (the caller reports it).
std::optional<std::pair<std::string, std::string>> read_legacy_record(
    const std::filesystem::path& path);

}  // namespace mqttx::detail
