// Storage: where a persistent session keeps what must outlive the program: Paho's
// in-flight QoS 1/2 messages, the session's outbox and its state. Three backends
// (memory, file, Redis); a user may write another by implementing the protected
// virtuals. As in spdlog's sinks, the public methods are not virtual: they lock (so
// every backend is safe to call from Paho's threads), count, and turn failures into
// mqttx::Error (kind storage) naming the backend, the client and the key.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mqttx/options.hpp"
#include "mqttx/subscribe_options.hpp"

namespace mqttx {

struct StorageMetrics {
    std::uint64_t puts = 0;
    std::uint64_t gets = 0;
    std::uint64_t removes = 0;
    std::uint64_t errors = 0;
    std::uint64_t corrupt_records = 0;  // found damaged, reported and skipped
    // The file backend's log (zero for the others).
    std::uint64_t bytes_on_disk = 0;     // every segment, dead records included
    std::uint64_t segments = 0;          // segment files
    std::uint64_t compactions = 0;       // segments rewritten and deleted
    std::uint64_t syncs = 0;             // group commits (fdatasync of the log)
    std::uint64_t synced_records = 0;    // records they made durable: / syncs = per sync
    std::uint64_t unsynced_records = 0;  // written, not durable yet (file: the next group
                                         // commit; Redis: its reply)
    std::uint64_t truncated_tails = 0;   // torn or damaged segment tails cut at open
};

// The key under which a session keeps its state (subscriptions, client id, times).
inline constexpr std::string_view session_state_key = "mqttx-state";

// What a persistent session keeps about itself under session_state_key. It mirrors the
// broker's side: a subscription is in it while the broker has it. Saved when the
// session becomes ready, when a subscription is made or dropped, when the connection
// is lost and on close; read at start (Session::stored_state()).
struct StoredSubscription {
    std::string filter;
    int qos = 0;
    SubscribeOptions options{};
};

struct StoredSessionState {
    static constexpr int current_version = 1;
    int version = current_version;
    std::string client_id;
    std::string session;  // the session's name
    std::vector<StoredSubscription> subscriptions;
    std::chrono::system_clock::time_point last_connected{};     // epoch when never
    std::chrono::system_clock::time_point last_disconnected{};  // epoch when never
};

class Storage {
  public:
    virtual ~Storage() = default;
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    // Every key below belongs to `client_id` (a directory, a Redis hash). Call first.
    void open(std::string_view client_id);
    void close() noexcept;
    // A failed put leaves nothing stored under the key (or the old value). Returns the
    // write's ticket for when_durable().
    std::uint64_t put(std::string_view key, std::string_view value);
    // Empty when the key is missing, or when its record is corrupt (reported, counted).
    std::optional<std::string> get(std::string_view key);
    // Removing a missing key is not an error; a failed remove leaves the key.
    void remove(std::string_view key);
    // Calls `done` once every write up to `ticket` is durable: at once, on this thread,
    // when it is already (always so for memory and file storage without file_sync),
    // else on the backend's own thread after the group commit (file) or the reply
    // (Redis) that covers it, or at close(). `done` must not block.
    void when_durable(std::uint64_t ticket, std::function<void()> done);
    bool contains(std::string_view key);
    std::vector<std::string> keys();
    void clear();  // every key of the client

    const std::string& backend() const noexcept { return backend_; }
    const std::string& client_id() const noexcept { return client_id_; }
    StorageMetrics metrics() const;

  protected:
    explicit Storage(std::string backend) : backend_(std::move(backend)) {}

    // Called with the lock held; throw on failure (any exception: it becomes an Error).
    virtual void do_open(const std::string& client_id) = 0;
    virtual void do_close() noexcept = 0;
    virtual void do_put(const std::string& key, std::string_view value) = 0;
    virtual std::optional<std::string> do_get(const std::string& key) = 0;
    virtual void do_remove(const std::string& key) = 0;
    virtual std::vector<std::string> do_keys() = 0;
    virtual void do_clear() = 0;
    // For backends: a damaged record was found and skipped (already logged).
    void count_corrupt() noexcept { ++metrics_.corrupt_records; }
    // The backend's own figures (StorageMetrics' log fields), with the lock held.
    virtual void do_metrics(StorageMetrics&) const {}

    // For backends that make writes durable later, in batches (call in the
    // constructor): when_durable() then waits for durable_through().
    void defer_durability() noexcept { deferred_durability_ = true; }
    // The ticket of the last write that returned: every write up to it is done.
    std::uint64_t issued_tickets() const noexcept {
        return tickets_.load(std::memory_order_acquire);
    }
    // Writes up to `ticket` are durable: runs the when_durable() callbacks they release.
    void durable_through(std::uint64_t ticket);

  private:
    template <class F>
    auto guarded(const char* operation, std::string_view key, F&& f);

    const std::string backend_;
    std::string client_id_;
    bool open_ = false;
    mutable std::mutex mutex_;
    StorageMetrics metrics_;
    std::atomic<std::uint64_t> tickets_{0};
    bool deferred_durability_ = false;
    std::mutex durable_mutex_;
    std::uint64_t durable_ = 0;
    std::multimap<std::uint64_t, std::function<void()>> waiting_durable_;
};

// The backends. Each checks its arguments and throws Error (configuration) on bad ones.
std::unique_ptr<Storage> make_memory_storage();
// A directory per client id (names made safe) under `directory`, created if missing,
// holding a log: segment files of checksummed records, appended, never rewritten
// (removals are tombstones); segments mostly dead are compacted in the background.
// A write is in the kernel's page cache when put() returns, so it survives a crash of
// the program. With `sync` a writer thread also makes writes durable against a power
// cut, many per fdatasync (group commit; when_durable() tells when). At open a torn
// or damaged tail is cut at the last good record, and the file-per-record layout of
// earlier versions is moved into the log. See StorageOptions::file_sync.
std::unique_ptr<Storage> make_file_storage(std::string directory, bool sync = true,
                                           std::size_t segment_bytes = default_segment_bytes);
// One hash per client id, named `prefix` + client id. Uses redis_address ("host:port"),
// redis_user/redis_password (AUTH), redis_db (SELECT), redis_prefix, the timeouts, and
// reconnects when Redis comes back.
std::unique_ptr<Storage> make_redis_storage(const StorageOptions& options);
// The backend StorageOptions names.
std::unique_ptr<Storage> make_storage(const StorageOptions& options);

}  // namespace mqttx
