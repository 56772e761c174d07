// SessionCore's side of persistence: when outbox records are written and removed, the
// outbox read back at start, and the session state saved as it changes. What is kept
// and how is SessionStorage's.
#include <spdlog/spdlog.h>

#include "runtime.hpp"
#include "session/session_core.hpp"

namespace mqttx::detail {

void SessionCore::store(Delivery& delivery) {
    try {
        storage_->put(delivery);
    } catch (const Error& e) {
        report(e);
        throw;
    }
}

void SessionCore::unstore(Delivery& delivery) noexcept {
    if (storage_) storage_->remove(delivery);
}

// Paho's send thread: Paho has stored the QoS 2 publish with this packet identifier, so the
// outbox's copy can go. (Removed any later, a crash after Paho's PUBCOMP could send
// the message again as a new publish.) Not found: publish() has not returned its
// identifier yet, and hand_to_paho() removes the copy when it does.
void SessionCore::on_publish_written(int message_id) noexcept {
    if (auto written = outbox_.written_by_paho(message_id)) unstore(*written);
}

// Constructor: what a previous run with this client id and storage accepted and had
// not handed to Paho goes out first, in its order.
void SessionCore::restore_outbox() {
    if (!storage_) return;
    auto restored = storage_->read_outbox(options_.protocol);
    const auto waiting = restored.waiting.size();
    for (auto& delivery : restored.waiting) outbox_.restore(std::move(delivery));
    next_sequence_.store(restored.next_sequence, std::memory_order_relaxed);
    const auto resends = restored.paho_resends.size();
    if (restored.found > 0 || resends > 0) {
        log_->info(
            "session '{}': from the last run, {} message(s) wait in the outbox and "
            "Paho resends {}",
            options_.name, waiting, resends);
    }
    if (resends > 0) {
        outbox_.hold_for_paho(resends);
        persistence_->track_resends(std::move(restored.paho_resends));
    }
}

// Inside Paho (its locks held): Paho let go of publishes it resent from the last run, so
// the window has room for the outbox's; the scheduler hands them over.
void SessionCore::on_paho_resends_done(std::size_t count) noexcept {
    if (!outbox_.released_by_paho(count) || !outbox_waiting()) return;
    try {
        post_pump();
    } catch (...) {
        // The scheduler is gone: the session is closing.
    }
}

const std::optional<StoredSessionState>& SessionCore::stored_state() const noexcept {
    static const std::optional<StoredSessionState> none;
    return storage_ ? storage_->loaded_state() : none;
}

void SessionCore::load_state() {
    if (!storage_ || !storage_->loaded_state()) return;
    std::lock_guard lock(mutex_);
    last_connected_ = storage_->loaded_state()->last_connected;
    last_disconnected_ = storage_->loaded_state()->last_disconnected;
}

void SessionCore::save_state() noexcept {
    if (!storage_ || storage_->save_posted.exchange(true)) return;
    // Storage may be a network away (Redis): not on the scheduler, which runs every
    // session's timers.
    bool posted = false;
    try {
        posted = runtime_->background.post([weak = weak_from_this()] {
            auto self = weak.lock();
            if (!self) return;
            self->storage_->save_posted.store(false);
            self->write_state(false);
        });
    } catch (...) {
    }
    if (!posted) storage_->save_posted.store(false);
}

void SessionCore::write_state(bool final) noexcept {
    if (!storage_) return;
    try {
        std::lock_guard writing(storage_->write_mutex);
        StoredSessionState state;
        state.client_id = client_id_;
        state.session = options_.name;
        {
            std::lock_guard lock(mutex_);
            if (state_final_) return;
            state_final_ = final;
            state.subscriptions = subscriptions_.to_store();
            state.last_connected = last_connected_;
            state.last_disconnected = last_disconnected_;
        }
        storage_->write_state(state);
    } catch (const std::exception& e) {
        log_->warn("session '{}': cannot save its state: {}", options_.name, e.what());
    }
}

}  // namespace mqttx::detail
