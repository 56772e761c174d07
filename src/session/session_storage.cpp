#include "session/session_storage.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <utility>

#include "outbox_record.hpp"
#include "paho_properties.hpp"
#include "stored_state.hpp"

namespace mqttx::detail {

namespace {

std::shared_ptr<Delivery> to_delivery(OutboxRecord&& record, std::uint64_t sequence,
                                      Protocol protocol) {
    PublishProperties properties;
    if (protocol == Protocol::v5) properties.user_properties = std::move(record.user_properties);
    auto delivery = std::make_shared<Delivery>(
        mqtt::string_ref(record.topic), mqtt::binary_ref(std::move(record.payload)), record.qos,
        record.retained, properties.empty() ? mqtt::properties() : to_paho(properties), sequence);
    delivery->stored = true;
    return delivery;
}

}  // namespace

bool keeps_storage(const Options& options) {
    return options.persistent && options.storage && options.storage->type != StorageType::memory;
}

std::unique_ptr<SessionStorage> SessionStorage::open(const Options& options,
                                                     const std::string& client_id,
                                                     std::shared_ptr<spdlog::logger> log) {
    if (!keeps_storage(options)) return nullptr;
    auto storage =
        std::shared_ptr<Storage>(make_storage(options.storage.value_or(StorageOptions{})));
    storage->open(client_id);
    for (const auto& key : storage->keys()) {
        if (key.starts_with("c-") || key.starts_with("c5-")) storage->remove(key);
    }
    auto opened =
        std::make_unique<SessionStorage>(std::move(storage), options.name, std::move(log));
    opened->read_state();
    return opened;
}

SessionStorage::SessionStorage(std::shared_ptr<Storage> storage, std::string session,
                               std::shared_ptr<spdlog::logger> log)
    : storage_(std::move(storage)), session_(std::move(session)), log_(std::move(log)) {}

void SessionStorage::put(Delivery& delivery) {
    const auto& message = delivery.message();
    OutboxRecord record;
    record.qos = message.get_qos();
    record.retained = message.is_retained();
    record.topic = message.get_topic();
    record.payload = message.get_payload_str();
    for (const auto& property : from_paho(message.get_properties()).user_properties) {
        record.user_properties.push_back(property);
    }
    try {
        delivery.storage_ticket = storage_->put(outbox_key(delivery.sequence()), encode(record));
        delivery.stored = true;
    } catch (const Error& e) {
        throw Error(e).with_session(session_).with_topic(record.topic);
    }
}

void SessionStorage::remove(Delivery& delivery) noexcept {
    if (!delivery.stored.exchange(false)) return;
    try {
        storage_->remove(outbox_key(delivery.sequence()));
    } catch (const Error& e) {
        log_->warn("session '{}': {}", session_, e.what());
    }
}

SessionStorage::RestoredOutbox SessionStorage::read_outbox(Protocol protocol) {
    RestoredOutbox restored;
    std::vector<std::pair<std::uint64_t, std::string>> found;
    for (const auto& key : storage_->keys()) {
        if (auto sequence = outbox_sequence(key)) found.emplace_back(*sequence, key);
    }
    std::sort(found.begin(), found.end());
    restored.found = found.size();
    std::multiset<std::pair<std::string, std::string>> resent_by_paho;
    for (const auto& key : storage_->keys()) {
        const bool v5 = key.starts_with("s5-");
        if (!v5 && !key.starts_with("s-")) continue;
        if (auto packet = storage_->get(key)) {
            if (auto sent = decode_publish_packet(*packet, v5)) {
                resent_by_paho.insert(*sent);
                restored.paho_resends.push_back(key);
            }
        }
    }
    for (const auto& [sequence, key] : found) {
        restored.next_sequence = std::max(restored.next_sequence, sequence + 1);
        const auto bytes = storage_->get(key);
        auto record = bytes ? decode_outbox_record(*bytes) : std::nullopt;
        if (!record) {
            log_->error("session '{}': storage record '{}' is unreadable; left in place", session_,
                        key);
            continue;
        }
        if (auto it = resent_by_paho.find({record->topic, record->payload});
            it != resent_by_paho.end()) {
            resent_by_paho.erase(it);
            storage_->remove(key);
            ++restored.resent_by_paho;
            continue;
        }
        restored.waiting.push_back(to_delivery(std::move(*record), sequence, protocol));
    }
    return restored;
}

std::shared_ptr<Delivery> SessionStorage::load(std::uint64_t sequence, Protocol protocol) {
    const auto key = outbox_key(sequence);
    const auto bytes = storage_->get(key);
    auto record = bytes ? decode_outbox_record(*bytes) : std::nullopt;
    if (!record) {
        log_->error(
            "session '{}': the waiting message '{}' cannot be read from {} storage; it "
            "is lost",
            session_, key, storage_->backend());
        return nullptr;
    }
    return to_delivery(std::move(*record), sequence, protocol);
}

void SessionStorage::remove(std::uint64_t sequence) noexcept {
    try {
        storage_->remove(outbox_key(sequence));
    } catch (const Error& e) {
        log_->warn("session '{}': {}", session_, e.what());
    }
}

void SessionStorage::read_state() {
    const auto text = storage_->get(session_state_key);
    if (!text) return;
    try {
        loaded_ = decode_stored_state(*text);
    } catch (const std::exception& e) {
        log_->error(
            "session '{}': its saved state in {} storage is unusable ({}); starting "
            "without it",
            session_, storage_->backend(), e.what());
    }
}

void SessionStorage::write_state(const StoredSessionState& state) {
    storage_->put(session_state_key, encode(state));
}

}  // namespace mqttx::detail
