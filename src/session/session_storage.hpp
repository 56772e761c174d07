// SessionStorage: what a persistent session keeps in its Storage backend besides
// Paho's own records (PahoPersistence): one outbox record per accepted QoS 1/2 message
// until Paho has stored it or the broker confirmed it, and the saved session state
// (subscriptions, last connect and disconnect). Keys: outbox_key() and
// session_state_key; Paho's are "s-", "s5-", "c-", "c5-" and "r-" ones.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "delivery.hpp"
#include "mqttx/options.hpp"
#include "mqttx/storage.hpp"

namespace spdlog {
class logger;
}

namespace mqttx::detail {

// A persistent session with file or Redis storage: what it keeps outlives the program.
// Memory storage would die with the session, as the outbox and Paho's own state do:
// copies there would cost every message and keep nothing more.
bool keeps_storage(const Options& options);

class SessionStorage {
  public:
    // Opens the backend of a session that keeps_storage() (a backend that is down fails
    // here) and drops Paho's queued, never-sent publish commands of a previous run before
    // Paho would restore them: the outbox records hold every one of them until the broker
    // confirms it, and sending both would duplicate. Null for any other session.
    static std::unique_ptr<SessionStorage> open(const Options& options,
                                                const std::string& client_id,
                                                std::shared_ptr<spdlog::logger> log);

    SessionStorage(std::shared_ptr<Storage> storage, std::string session,
                   std::shared_ptr<spdlog::logger> log);

    const std::shared_ptr<Storage>& backend() const noexcept { return storage_; }

    // The outbox record of an accepted message; throws the backend's Error, naming the
    // session and topic. Marks the delivery stored, with the write's ticket.
    void put(Delivery& delivery);
    // The outbox record of `sequence` as a message to send again (a spilled one); null
    // when it is missing or unreadable (logged).
    std::shared_ptr<Delivery> load(std::uint64_t sequence, Protocol protocol);
    // The record of a spilled message dropped from the outbox. Failures are logged.
    void remove(std::uint64_t sequence) noexcept;
    // Its record gone (once Paho stored a QoS 2 message, or the broker confirmed or
    // refused it). A failure is logged: the next start sends it again, a duplicate, not a loss.
    void remove(Delivery& delivery) noexcept;

    // The outbox of the last run, in publish order: what it accepted and had not
    // handed to Paho. Records of messages Paho resends itself (it had written them,
    // unconfirmed) are dropped: the same message from the outbox too would be a second
    // publish, and for QoS 2 a duplicate.
    struct RestoredOutbox {
        std::vector<std::shared_ptr<Delivery>> waiting;
        std::uint64_t next_sequence = 0;
        std::size_t found = 0;                  // outbox records read
        std::size_t resent_by_paho = 0;         // of them, left to Paho
        std::vector<std::string> paho_resends;  // the keys of every publish Paho resends
    };
    RestoredOutbox read_outbox(Protocol protocol);

    // The saved state of the last run, read by open(); none if there was none or it was
    // unusable (logged: the broker still has the session, only our copy of its shape is
    // lost).
    const std::optional<StoredSessionState>& loaded_state() const noexcept { return loaded_; }
    // Throws the backend's Error.
    void write_state(const StoredSessionState& state);

    // For the session's coalesced saves (SessionCore::save_state): a save is posted, and
    // a snapshot and its write go together.
    std::atomic<bool> save_posted{false};
    std::mutex write_mutex;

  private:
    void read_state();

    const std::shared_ptr<Storage> storage_;
    const std::string session_;
    const std::shared_ptr<spdlog::logger> log_;
    std::optional<StoredSessionState> loaded_;
};

}  // namespace mqttx::detail
