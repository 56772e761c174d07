// File storage: a log per client id (log_record.hpp has the format). Writes append to
// the active segment and update an index from key to location held in memory; reads
// go to the file at that location. A writer thread per storage makes the appends
// durable in batches (group commit, with file_sync) and compacts segments that are
// mostly dead: it copies their live records to the active segment, then deletes them.
// A tombstone is dropped only with the oldest segment: until then an older segment may
// hold a record it deletes (a copy left by a compaction a crash cut short, say).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "logging.hpp"
#include "mqttx/error.hpp"
#include "mqttx/storage.hpp"
#include "storage/legacy_records.hpp"
#include "storage/log_record.hpp"
#include "thread_name.hpp"

namespace mqttx {

namespace {

namespace fs = std::filesystem;
using namespace detail::log;
using Clock = std::chrono::steady_clock;

// A group commit waits this long for more writes, unless this many are waiting.
constexpr auto group_commit_window = std::chrono::milliseconds(1);
constexpr std::size_t group_commit_records = 4096;

[[noreturn]] void fail(const std::string& what, const fs::path& path, int error = errno) {
    throw std::system_error(error, std::generic_category(), what + " '" + path.string() + "'");
}

void write_all(int fd, const char* data, std::size_t size, const fs::path& path) {
    while (size > 0) {
        const auto n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot write to", path);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

std::string read_all(int fd, std::uint64_t size, const fs::path& path) {
    std::string bytes(size, '\0');
    std::size_t done = 0;
    while (done < size) {
        const auto n = ::pread(fd, bytes.data() + done, size - done, static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot read", path);
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    bytes.resize(done);
    return bytes;
}

void sync_directory(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail("cannot open directory", dir);
    const int rc = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (rc != 0) fail("cannot sync directory", dir, error);
}

std::string segment_name(std::uint64_t id) {
    char name[32];
    std::snprintf(name, sizeof name, "seg-%016llx.log", static_cast<unsigned long long>(id));
    return name;
}

std::optional<std::uint64_t> segment_id(const std::string& name) {
    unsigned long long id = 0;
    int end = 0;
    if (name.size() != 24 || std::sscanf(name.c_str(), "seg-%16llx.log%n", &id, &end) != 1 ||
        end != 24) {
        return std::nullopt;
    }
    return id;
}

class FileStorage final : public Storage {
  public:
    FileStorage(std::string directory, bool sync, std::size_t segment_bytes)
        : Storage("file"), root_(std::move(directory)), sync_(sync), segment_bytes_(segment_bytes) {
        if (sync_) defer_durability();
    }
    ~FileStorage() override {
        shut_down();                        // a last group commit: what was written is durable now
        durable_through(issued_tickets());  // a session destroys its storage without close()
    }

  protected:
    void do_open(const std::string& client_id) override {
        dir_ = root_ / detail::encode_file_name(client_id);
        std::error_code ec;
        fs::create_directories(dir_, ec);
        if (ec) fail("cannot create directory", dir_, ec.value());
        std::vector<std::uint64_t> ids;
        std::vector<fs::path> legacy;
        for (const auto& entry : fs::directory_iterator(dir_)) {
            if (!entry.is_regular_file()) continue;
            const auto name = entry.path().filename().string();
            if (auto id = segment_id(name)) {
                ids.push_back(*id);
            } else if (detail::is_legacy_record(name)) {
                legacy.push_back(entry.path());
            } else if (name.ends_with(".tmp")) {
                fs::remove(entry.path(), ec);  // what a crash of an earlier version left
            }
        }
        std::sort(ids.begin(), ids.end());
        std::lock_guard lock(mutex_);
        replay(ids);
        if (ids.empty() || segments_.rbegin()->second.size >= segment_bytes_) {
            open_segment(next_segment_id());
        } else {
            active_ = &segments_.rbegin()->second;
        }
        if (!legacy.empty()) migrate(legacy);
        stopping_ = false;
        writer_ = std::thread([this] { write_behind(); });
        want_compaction_ = compaction_candidate() != nullptr;
        if (want_compaction_) wake_.notify_all();
    }

    void do_close() noexcept override { shut_down(); }

    void do_put(const std::string& key, std::string_view value) override {
        if (key.size() > max_key_size) {
            throw Error(ErrorKind::storage, "key longer than 65535 bytes");
        }
        std::lock_guard lock(mutex_);
        check_usable();
        const auto sequence = next_sequence_++;
        const auto location = append({sequence, RecordType::put, key, value});
        if (auto it = index_.find(key); it != index_.end()) {
            segments_.at(it->second.segment).live_bytes -= it->second.size;
            it->second = location;
        } else {
            index_.emplace(key, location);
        }
        active_->live_bytes += location.size;
        after_append();
    }

    std::optional<std::string> do_get(const std::string& key) override {
        std::lock_guard lock(mutex_);
        const auto it = index_.find(key);
        if (it == index_.end()) return std::nullopt;
        const auto& where = it->second;
        const auto& segment = segments_.at(where.segment);
        std::string bytes(where.size, '\0');
        const auto n =
            ::pread(segment.fd, bytes.data(), bytes.size(), static_cast<off_t>(where.offset));
        if (n < 0) fail("cannot read", segment.path);
        bytes.resize(static_cast<std::size_t>(n));
        const auto decoded = decode_record(bytes);
        if (decoded.problem || decoded.record.key != key) {
            count_corrupt();
            detail::default_logger()->error(
                "file storage: the record of '{}' at offset {} of '{}' is damaged ({}); it is "
                "skipped",
                key, where.offset, segment.path.string(),
                decoded.problem ? decoded.problem : "another key");
            return std::nullopt;
        }
        return std::string(decoded.record.value);
    }

    void do_remove(const std::string& key) override {
        std::lock_guard lock(mutex_);
        const auto it = index_.find(key);
        if (it == index_.end()) return;  // nothing to delete: nothing to write
        check_usable();
        const auto location = append({next_sequence_++, RecordType::remove, key, {}});
        segments_.at(it->second.segment).live_bytes -= it->second.size;
        index_.erase(it);
        active_->tombstone_bytes += location.size;
        after_append();
    }

    std::vector<std::string> do_keys() override {
        std::lock_guard lock(mutex_);
        std::vector<std::string> keys;
        keys.reserve(index_.size());
        for (const auto& [key, location] : index_) keys.push_back(key);
        return keys;
    }

    void do_clear() override {
        std::unique_lock lock(mutex_);
        check_usable();
        idle_.wait(lock, [&] { return !busy_; });  // the writer may be syncing a segment
        const auto fresh = next_segment_id();
        for (auto& [id, segment] : segments_) {
            ::close(segment.fd);
            if (::unlink(segment.path.c_str()) != 0 && errno != ENOENT) {
                fail("cannot remove", segment.path);
            }
        }
        segments_.clear();
        index_.clear();
        unsynced_records_ = 0;
        open_segment(fresh);
        if (sync_) sync_directory(dir_);
    }

    void do_metrics(StorageMetrics& metrics) const override {
        std::lock_guard lock(mutex_);
        for (const auto& [id, segment] : segments_) metrics.bytes_on_disk += segment.size;
        metrics.segments = segments_.size();
        metrics.compactions = compactions_;
        metrics.syncs = syncs_;
        metrics.synced_records = synced_records_;
        metrics.unsynced_records = unsynced_records_;
        metrics.truncated_tails = truncated_tails_;
    }

  private:
    struct Segment {
        std::uint64_t id = 0;
        fs::path path;
        int fd = -1;
        std::uint64_t size = 0;             // bytes in the file
        std::uint64_t live_bytes = 0;       // of records the index points to
        std::uint64_t tombstone_bytes = 0;  // live too, unless it is the oldest segment
        bool unsynced = false;
        bool damaged = false;  // unreadable past some point: never compacted
    };
    // 16 bytes: the index holds one per key, and an outage spills to it (an offset fits
    // 32 bits, as segments are at most max_segment_bytes and records 512 MiB).
    struct Location {
        std::uint64_t segment = 0;
        std::uint32_t offset = 0;
        std::uint32_t size = 0;
    };

    std::uint64_t next_segment_id() const {
        return segments_.empty() ? 1 : segments_.rbegin()->first + 1;
    }

    void check_usable() const {
        if (!failure_.empty()) {
            throw Error(ErrorKind::storage, "the log cannot be synced since: " + failure_);
        }
    }

    void open_segment(std::uint64_t id) {
        Segment segment;
        segment.id = id;
        segment.path = dir_ / segment_name(id);
        segment.fd = ::open(segment.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (segment.fd < 0) fail("cannot create", segment.path);
        try {
            write_all(segment.fd, segment_magic.data(), segment_magic.size(), segment.path);
        } catch (...) {
            ::close(segment.fd);
            ::unlink(segment.path.c_str());
            throw;
        }
        segment.size = segment_magic.size();
        segment.unsynced = true;
        directory_unsynced_ = true;
        active_ = &segments_.emplace(id, std::move(segment)).first->second;
    }

    // Appends one record to the active segment; on failure nothing of it stays.
    Location append(const Record& record) {
        buffer_.clear();
        append_record(buffer_, record);
        auto& segment = *active_;
        try {
            write_all(segment.fd, buffer_.data(), buffer_.size(), segment.path);
        } catch (...) {
            // A partial record would be a torn tail in the middle of the log.
            if (::ftruncate(segment.fd, static_cast<off_t>(segment.size)) != 0 ||
                ::lseek(segment.fd, 0, SEEK_END) < 0) {
                failure_ = "a failed write could not be cut off '" + segment.path.string() + "'";
            }
            throw;
        }
        const Location location{segment.id, static_cast<std::uint32_t>(segment.size),
                                static_cast<std::uint32_t>(buffer_.size())};
        segment.size += buffer_.size();
        segment.unsynced = true;
        return location;
    }

    void after_append() {
        if (sync_ && unsynced_records_++ == 0) {
            first_unsynced_ = Clock::now();
            wake_.notify_all();
        } else if (sync_ && unsynced_records_ == group_commit_records) {
            wake_.notify_all();
        }
        if (active_->size < segment_bytes_) return;
        open_segment(next_segment_id());
        if (!want_compaction_ && compaction_candidate()) {
            want_compaction_ = true;
            wake_.notify_all();
        }
    }

    // The oldest sealed segment at most half alive.
    const Segment* compaction_candidate() const {
        for (const auto& [id, segment] : segments_) {
            if (&segment == active_ || segment.damaged) continue;
            const auto payload = segment.size - segment_magic.size();
            const auto tombstones = id == segments_.begin()->first ? 0 : segment.tombstone_bytes;
            if (2 * (segment.live_bytes + tombstones) <= payload) return &segment;
        }
        return nullptr;
    }

    bool anything_unsynced() const {
        return unsynced_records_ > 0 || directory_unsynced_ ||
               std::any_of(segments_.begin(), segments_.end(),
                           [](const auto& entry) { return entry.second.unsynced; });
    }

    // Open: reads every segment, cuts each at its first bad record, and builds the index
    // from the newest record of each key (of two copies, the later one).
    void replay(const std::vector<std::uint64_t>& ids) {
        struct Newest {
            Location location;
            std::uint64_t sequence;
            RecordType type;
        };
        std::unordered_map<std::string, Newest> newest;
        for (const auto id : ids) {
            Segment segment;
            segment.id = id;
            segment.path = dir_ / segment_name(id);
            segment.fd = ::open(segment.path.c_str(), O_RDWR | O_CLOEXEC);
            if (segment.fd < 0) fail("cannot open", segment.path);
            auto& placed = segments_.emplace(id, std::move(segment)).first->second;
            const auto size = static_cast<std::uint64_t>(::lseek(placed.fd, 0, SEEK_END));
            const auto bytes = read_all(placed.fd, size, placed.path);
            std::size_t offset = 0;
            const char* problem = nullptr;
            if (bytes.size() < segment_magic.size() ||
                std::string_view(bytes).substr(0, segment_magic.size()) != segment_magic) {
                problem = "not a segment (bad header)";
            } else {
                offset = segment_magic.size();
                while (offset < bytes.size()) {
                    const auto decoded = decode_record(std::string_view(bytes).substr(offset));
                    if (decoded.problem) {
                        problem = decoded.problem;
                        break;
                    }
                    const auto& record = decoded.record;
                    next_sequence_ = std::max(next_sequence_, record.sequence + 1);
                    const Newest found{{id, static_cast<std::uint32_t>(offset),
                                        static_cast<std::uint32_t>(decoded.size)},
                                       record.sequence,
                                       record.type};
                    if (record.type == RecordType::remove) placed.tombstone_bytes += decoded.size;
                    auto [it, fresh] = newest.try_emplace(std::string(record.key), found);
                    if (!fresh && it->second.sequence <= record.sequence) it->second = found;
                    offset += decoded.size;
                }
            }
            if (problem) cut(placed, offset, problem);
            placed.size = std::max<std::uint64_t>(offset, segment_magic.size());
        }
        for (auto& [key, found] : newest) {
            if (found.type != RecordType::put) continue;
            segments_.at(found.location.segment).live_bytes += found.location.size;
            index_.emplace(key, found.location);
        }
    }

    // A torn or damaged tail: what follows the last good record is cut off.
    void cut(Segment& segment, std::size_t offset, const char* problem) {
        ++truncated_tails_;
        detail::default_logger()->error(
            "file storage: '{}' is damaged at offset {} ({}); cutting it there",
            segment.path.string(), offset, problem);
        if (offset < segment_magic.size()) {
            // Not even the header made it: start the segment afresh.
            if (::ftruncate(segment.fd, 0) != 0) fail("cannot cut", segment.path);
            ::lseek(segment.fd, 0, SEEK_SET);
            write_all(segment.fd, segment_magic.data(), segment_magic.size(), segment.path);
        } else if (::ftruncate(segment.fd, static_cast<off_t>(offset)) != 0) {
            fail("cannot cut", segment.path);
        }
        ::lseek(segment.fd, 0, SEEK_END);
        if (sync_ && ::fdatasync(segment.fd) != 0) fail("cannot sync", segment.path);
    }

    // The file-per-record layout of earlier versions: each record goes into the log,
    // which is synced before the old files go.
    void migrate(const std::vector<fs::path>& files) {
        std::size_t moved = 0;
        for (const auto& file : files) {
            auto record = detail::read_legacy_record(file);
            if (!record) {
                count_corrupt();
                const auto kept = fs::path(file).concat(".corrupt");
                detail::default_logger()->error(
                    "file storage: '{}' is not a readable record; kept as '{}'", file.string(),
                    kept.string());
                std::error_code ec;
                fs::rename(file, kept, ec);
                continue;
            }
            const auto location =
                append({next_sequence_++, RecordType::put, record->first, record->second});
            if (auto it = index_.find(record->first); it != index_.end()) {
                segments_.at(it->second.segment).live_bytes -= it->second.size;
                it->second = location;
            } else {
                index_.emplace(record->first, location);
            }
            active_->live_bytes += location.size;
            ++moved;
            if (active_->size >= segment_bytes_) open_segment(next_segment_id());
        }
        for (auto& [id, segment] : segments_) {
            if (segment.unsynced && ::fdatasync(segment.fd) != 0) fail("cannot sync", segment.path);
            segment.unsynced = false;
        }
        sync_directory(dir_);
        for (const auto& file : files) ::unlink(file.c_str());
        sync_directory(dir_);
        detail::default_logger()->info("file storage: moved {} record(s) of '{}' into its log",
                                       moved, dir_.string());
    }

    // The writer thread: group commits and compaction.
    void write_behind() {
        detail::name_this_thread("mqttx-log");
        std::unique_lock lock(mutex_);
        for (;;) {
            if (unsynced_records_ > 0 && unsynced_records_ < group_commit_records && !stopping_) {
                wake_.wait_until(lock, first_unsynced_ + group_commit_window, [&] {
                    return stopping_ || unsynced_records_ >= group_commit_records;
                });
            }
            if (unsynced_records_ > 0 || (stopping_ && sync_ && anything_unsynced())) sync(lock);
            if (want_compaction_ && !stopping_) compact(lock);
            if (stopping_) return;
            wake_.wait(lock,
                       [&] { return stopping_ || unsynced_records_ > 0 || want_compaction_; });
        }
    }

    // One group commit: everything written so far, with the lock released meanwhile.
    void sync(std::unique_lock<std::mutex>& lock) {
        const auto covered = issued_tickets();
        const auto records = std::exchange(unsynced_records_, 0);
        std::vector<std::pair<int, fs::path>> files;
        for (auto& [id, segment] : segments_) {
            if (!segment.unsynced) continue;
            files.emplace_back(segment.fd, segment.path);
            segment.unsynced = false;
        }
        const bool directory = std::exchange(directory_unsynced_, false);
        busy_ = true;
        lock.unlock();
        std::string failure;
        try {
            for (const auto& [fd, path] : files) {
                if (::fdatasync(fd) != 0) fail("cannot sync", path);
            }
            if (directory) sync_directory(dir_);
        } catch (const std::exception& e) {
            failure = e.what();
            detail::default_logger()->error("file storage: {}: no more writes are taken", failure);
        }
        lock.lock();
        busy_ = false;
        idle_.notify_all();
        if (!failure.empty()) failure_ = failure;
        ++syncs_;
        synced_records_ += records;
        lock.unlock();
        // Released after a failure too: nothing more can be done for them, and the broker
        // has each message a waiter is for.
        durable_through(covered);
        lock.lock();
    }

    // Rewrites the oldest segment that is mostly dead: its live records are appended to
    // the active segment (unchanged: same sequence), then it is deleted.
    void compact(std::unique_lock<std::mutex>& lock) {
        want_compaction_ = false;
        const auto* candidate = compaction_candidate();
        if (!candidate || !failure_.empty()) return;
        const auto id = candidate->id;
        const bool oldest = id == segments_.begin()->first;
        const auto fd = candidate->fd;
        const auto size = candidate->size;
        const auto path = candidate->path;
        busy_ = true;
        lock.unlock();
        std::string bytes;
        try {
            bytes = read_all(fd, size, path);  // sealed: nobody writes it any more
        } catch (const std::exception& e) {
            detail::default_logger()->error("file storage: cannot compact: {}", e.what());
        }
        lock.lock();
        busy_ = false;
        idle_.notify_all();
        auto found = segments_.find(id);
        if (found == segments_.end() || bytes.size() != size) {
            if (found != segments_.end()) found->second.damaged = true;
            return;
        }
        auto& old = found->second;
        try {
            for (std::size_t offset = segment_magic.size(); offset < bytes.size();) {
                const auto decoded = decode_record(std::string_view(bytes).substr(offset));
                if (decoded.problem)
                    throw std::runtime_error(std::string(decoded.problem) + " at offset " +
                                             std::to_string(offset));
                const auto& record = decoded.record;
                if (record.type == RecordType::put) {
                    auto it = index_.find(std::string(record.key));
                    if (it != index_.end() && it->second.segment == id &&
                        it->second.offset == offset) {
                        it->second = append(record);
                        active_->live_bytes += it->second.size;
                        old.live_bytes -= it->second.size;
                        after_append();
                    }
                } else if (!oldest) {
                    active_->tombstone_bytes += append(record).size;
                    after_append();
                }
                offset += decoded.size;
            }
        } catch (const std::exception& e) {
            // What was copied is a duplicate of what stays: harmless.
            old.damaged = true;
            detail::default_logger()->error("file storage: cannot compact '{}': {}", path.string(),
                                            e.what());
            return;
        }
        // The copies must be durable before the originals go.
        if (sync_ && unsynced_records_ > 0) sync(lock);
        auto it = segments_.find(id);
        if (it == segments_.end()) return;  // cleared meanwhile
        ::close(it->second.fd);
        ::unlink(it->second.path.c_str());
        segments_.erase(it);
        // The directory is synced with the next group commit; should the removal be lost
        // to a power cut, replay finds copies of the same sequence: harmless.
        directory_unsynced_ = true;
        ++compactions_;
        want_compaction_ = compaction_candidate() != nullptr;
    }

    void shut_down() noexcept {
        {
            std::lock_guard lock(mutex_);
            if (!writer_.joinable()) return;
            stopping_ = true;  // after a last group commit: close() leaves nothing unsynced
        }
        wake_.notify_all();
        writer_.join();
        std::lock_guard lock(mutex_);
        for (auto& [id, segment] : segments_) ::close(segment.fd);
        segments_.clear();
        index_.clear();
        active_ = nullptr;
    }

    const fs::path root_;
    const bool sync_;
    const std::size_t segment_bytes_;
    fs::path dir_;

    mutable std::mutex mutex_;  // below Storage's: the writer thread takes only this one
    std::condition_variable wake_;
    std::condition_variable idle_;
    std::map<std::uint64_t, Segment> segments_;  // oldest first
    Segment* active_ = nullptr;
    std::unordered_map<std::string, Location> index_;
    std::uint64_t next_sequence_ = 1;
    std::string buffer_;
    std::string failure_;  // a failed sync: the log takes no more writes

    std::thread writer_;
    bool stopping_ = false;
    bool busy_ = false;  // the writer uses file descriptors with the lock released
    bool want_compaction_ = false;
    bool directory_unsynced_ = false;
    std::size_t unsynced_records_ = 0;
    Clock::time_point first_unsynced_{};

    std::uint64_t syncs_ = 0;
    std::uint64_t synced_records_ = 0;
    std::uint64_t compactions_ = 0;
    std::uint64_t truncated_tails_ = 0;
};

}  // namespace

std::unique_ptr<Storage> make_file_storage(std::string directory, bool sync,
                                           std::size_t segment_bytes) {
    if (directory.empty()) {
        throw Error(ErrorKind::configuration, "file storage needs a directory");
    }
    if (segment_bytes < min_segment_bytes || segment_bytes > max_segment_bytes) {
        throw Error(ErrorKind::configuration, "file storage segments need 4096 bytes to 1 GiB")
            .with_context("segment_bytes", segment_bytes);
    }
    return std::make_unique<FileStorage>(std::move(directory), sync, segment_bytes);
}

}  // namespace mqttx
