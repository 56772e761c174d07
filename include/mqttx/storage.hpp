// Storage: where a persistent session keeps what must outlive the program: Paho's
// in-flight QoS 1/2 messages, the session's outbox and its state. Three backends
// (memory, file, Redis); a user may write another by implementing the protected
// virtuals. As in spdlog's sinks, the public methods are not virtual: they lock (so
// every backend is safe to call from Paho's threads), count, and turn failures into
// mqttx::Error (kind storage) naming the backend, the client and the key.
#pragma once

#include <chrono>
#include <cstdint>
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
    // A failed put leaves nothing stored under the key (or the old value).
    void put(std::string_view key, std::string_view value);
    // Empty when the key is missing, or when its record is corrupt (reported, counted).
    std::optional<std::string> get(std::string_view key);
    // Removing a missing key is not an error; a failed remove leaves the key.
    void remove(std::string_view key);
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

  private:
    template <class F>
    auto guarded(const char* operation, std::string_view key, F&& f);

    const std::string backend_;
    std::string client_id_;
    bool open_ = false;
    mutable std::mutex mutex_;
    StorageMetrics metrics_;
};

// The backends. Each checks its arguments and throws Error (configuration) on bad ones.
std::unique_ptr<Storage> make_memory_storage();
// A directory per client id (names made safe) under `directory`, created if missing.
// Every write goes to a temporary file and is renamed into place; with `sync` the file
// is synced before the rename and the directory after it and after a removal (see
// StorageOptions::file_sync). Each record carries a checksum.
std::unique_ptr<Storage> make_file_storage(std::string directory, bool sync = true);
// One hash per client id, named `prefix` + client id. Uses redis_address ("host:port"),
// redis_user/redis_password (AUTH), redis_db (SELECT), redis_prefix, the timeouts, and
// reconnects when Redis comes back.
std::unique_ptr<Storage> make_redis_storage(const StorageOptions& options);
// The backend StorageOptions names.
std::unique_ptr<Storage> make_storage(const StorageOptions& options);

}  // namespace mqttx
