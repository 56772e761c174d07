// File storage: a directory per client id, a file per key. Each file is one record,
//   "MQXR" | length (4 bytes, little endian) | CRC-32 of the value (4 bytes) | value
// written to a temporary file, synced, renamed over the old one, and the directory
// synced, so a crash leaves either the old record or the new one. A record that fails
// its checks (truncated, corrupt) is reported with the file's name and skipped.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "logging.hpp"
#include "mqttx/error.hpp"
#include "mqttx/storage.hpp"

namespace mqttx {

namespace {

namespace fs = std::filesystem;

constexpr std::array<char, 4> magic{'M', 'Q', 'X', 'R'};
constexpr std::size_t header_size = 12;
constexpr const char* temporary_suffix = ".tmp";

// File names: letters, digits, '-', '_' and '.' stay; everything else becomes %XX, so
// any key or client id maps to one safe name and back.
std::string encode_name(std::string_view text) {
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

std::string decode_name(std::string_view name) {
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

[[noreturn]] void fail(const std::string& what, const fs::path& path, int error = errno) {
    throw std::system_error(error, std::generic_category(), what + " '" + path.string() + "'");
}

void write_all(int fd, const char* data, std::size_t size, const fs::path& path) {
    while (size > 0) {
        const auto n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot write", path);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

void sync_directory(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail("cannot open directory", dir);
    const int rc = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (rc != 0) fail("cannot sync directory", dir, error);
}

std::uint32_t crc_of(std::string_view value) {
    return static_cast<std::uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(value.data()), static_cast<uInt>(value.size())));
}

void put_u32(char* out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint32_t get_u32(const char* in) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
        v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    return v;
}

class FileStorage final : public Storage {
  public:
    FileStorage(std::string directory, bool sync)
        : Storage("file"), root_(std::move(directory)), sync_(sync) {}

  protected:
    void do_open(const std::string& client_id) override {
        dir_ = root_ / encode_name(client_id);
        std::error_code ec;
        fs::create_directories(dir_, ec);
        if (ec) fail("cannot create directory", dir_, ec.value());
        // Temporary files are what a crash left half-written: never a record.
        for (const auto& entry : fs::directory_iterator(dir_)) {
            if (entry.path().extension() == temporary_suffix) fs::remove(entry.path(), ec);
        }
    }
    void do_close() noexcept override {}

    void do_put(const std::string& key, std::string_view value) override {
        const auto path = dir_ / encode_name(key);
        auto temporary = path;
        temporary += temporary_suffix;
        char header[header_size];
        std::memcpy(header, magic.data(), magic.size());
        put_u32(header + 4, static_cast<std::uint32_t>(value.size()));
        put_u32(header + 8, crc_of(value));
        const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) fail("cannot create", temporary);
        try {
            write_all(fd, header, header_size, temporary);
            write_all(fd, value.data(), value.size(), temporary);
            if (sync_ && ::fsync(fd) != 0) fail("cannot sync", temporary);
        } catch (...) {
            ::close(fd);
            ::unlink(temporary.c_str());
            throw;
        }
        if (::close(fd) != 0) {
            ::unlink(temporary.c_str());
            fail("cannot close", temporary);
        }
        if (::rename(temporary.c_str(), path.c_str()) != 0) {
            const int error = errno;
            ::unlink(temporary.c_str());
            fail("cannot rename into", path, error);
        }
        if (sync_) sync_directory(dir_);
    }

    std::optional<std::string> do_get(const std::string& key) override {
        return read_record(dir_ / encode_name(key));
    }

    void do_remove(const std::string& key) override {
        const auto path = dir_ / encode_name(key);
        if (::unlink(path.c_str()) != 0) {
            if (errno == ENOENT) return;
            fail("cannot remove", path);
        }
        if (sync_) sync_directory(dir_);
    }

    std::vector<std::string> do_keys() override {
        std::vector<std::string> keys;
        for (const auto& entry : fs::directory_iterator(dir_)) {
            if (!entry.is_regular_file() || entry.path().extension() == temporary_suffix) continue;
            keys.push_back(decode_name(entry.path().filename().string()));
        }
        return keys;
    }

    void do_clear() override {
        for (const auto& key : do_keys()) do_remove(key);
    }

  private:
    std::optional<std::string> read_record(const fs::path& path) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) return std::nullopt;
            fail("cannot open", path);
        }
        std::string data;
        char buffer[65536];
        for (;;) {
            const auto n = ::read(fd, buffer, sizeof buffer);
            if (n < 0) {
                if (errno == EINTR) continue;
                const int error = errno;
                ::close(fd);
                fail("cannot read", path, error);
            }
            if (n == 0) break;
            data.append(buffer, static_cast<std::size_t>(n));
        }
        ::close(fd);
        const char* problem = nullptr;
        if (data.size() < header_size ||
            std::memcmp(data.data(), magic.data(), magic.size()) != 0) {
            problem = "not a record (bad header)";
        } else if (get_u32(data.data() + 4) != data.size() - header_size) {
            problem = "truncated or overlong record";
        } else if (get_u32(data.data() + 8) != crc_of(std::string_view(data).substr(header_size))) {
            problem = "checksum mismatch";
        }
        if (problem) {
            count_corrupt();
            detail::default_logger()->error("file storage: skipping '{}': {}", path.string(),
                                            problem);
            return std::nullopt;
        }
        return data.substr(header_size);
    }

    const fs::path root_;
    const bool sync_;
    fs::path dir_;
};

}  // namespace

std::unique_ptr<Storage> make_file_storage(std::string directory, bool sync) {
    if (directory.empty()) {
        throw Error(ErrorKind::configuration, "file storage needs a directory");
    }
    return std::make_unique<FileStorage>(std::move(directory), sync);
}

}  // namespace mqttx
