#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "broker_uri.hpp"
#include "mqttx/detail/mqtt_string.hpp"
#include "mqttx/error.hpp"
#include "mqttx/options.hpp"
#include "mqttx/topic.hpp"
#include "problems.hpp"
#include "tls.hpp"
#include "wire_checks.hpp"

namespace mqttx {

using detail::Problems;

namespace {

constexpr std::size_t max_payload_kb = 256 * 1024;  // MQTT's limit is 256 MiB - 1 per packet

// Paho holds connect and disconnect timeouts as int milliseconds (or seconds it
// multiplies by 1000 into an int).
constexpr std::chrono::milliseconds max_paho_timeout{INT_MAX};

void check_paho_timeout(Problems& problems, const std::string& field,
                        std::chrono::milliseconds timeout) {
    if (timeout > max_paho_timeout) {
        problems.add(field, "at most " + std::to_string(max_paho_timeout.count()) +
                                " ms (about 24 days): Paho keeps it in an int");
    }
}

void check_qos(Problems& problems, const std::string& field, int qos) {
    if (qos < 0 || qos > 2)
        problems.add(field, "QoS must be 0, 1 or 2, got " + std::to_string(qos));
}

void check_brokers(Problems& problems, const Options& options) {
    if (options.brokers.empty()) {
        problems.add("brokers", "at least one broker is required");
        return;
    }
    for (std::size_t i = 0; i < options.brokers.size(); ++i) {
        detail::BrokerUri uri;
        std::string problem;
        if (!detail::parse_broker_uri(options.brokers[i], options.tls.has_value(), uri, problem)) {
            // An address with user info may hold a password: never repeat it.
            const bool has_user_info = options.brokers[i].find('@') != std::string::npos;
            problems.add(
                "brokers[" + std::to_string(i) + "]",
                has_user_info ? problem : detail::quoted(options.brokers[i]) + ": " + problem);
        }
    }
}

void check_storage(Problems& problems, const Options& options) {
    if (options.restored_handler && !options.persistent) {
        problems.add("restored_handler",
                     "restoring subscriptions needs a persistent session (call persistent()): a "
                     "clean session has none to restore");
    }
    if (!options.storage) return;
    const auto& storage = *options.storage;
    if (!options.persistent) {
        problems.add("storage",
                     "a storage needs a persistent session (call persistent()): a clean session "
                     "keeps nothing");
    }
    if (!detail::is_enumerator(storage.type, StorageType::redis)) {
        problems.add("storage.type", "not a StorageType");
    }
    switch (storage.type) {
        case StorageType::memory:
            break;
        case StorageType::file:
            if (storage.directory.empty()) problems.add("storage.directory", "must not be empty");
            if (storage.file_segment_bytes < min_segment_bytes ||
                storage.file_segment_bytes > max_segment_bytes) {
                problems.add("storage.file_segment_bytes", "must be from 4096 bytes to 1 GiB");
            }
            break;
        case StorageType::redis:
            if (storage.redis_address.empty()) {
                problems.add("storage.redis_address", "must not be empty (host:port)");
            }
            if (storage.redis_db < 0) problems.add("storage.redis_db", "must not be negative");
            if (storage.redis_prefix.empty()) {
                problems.add("storage.redis_prefix", "must not be empty");
            }
            if (storage.redis_connect_timeout.count() <= 0 ||
                storage.redis_command_timeout.count() <= 0) {
                problems.add("storage.redis_timeouts", "must be positive");
            }
            break;
    }
}

// The MQTT 5 parts of Options: refused on a v3.1.1 session, which cannot send them.
void check_mqtt5(Problems& problems, const Options& options) {
    const bool v5 = options.protocol == Protocol::v5;
    if (options.connect_properties) {
        const auto& connect = *options.connect_properties;
        if (!v5) problems.add("connect_properties", "needs Protocol::v5");
        if (connect.session_expiry) {
            const auto seconds = connect.session_expiry->count();
            detail::check_interval(problems, "connect_properties.session_expiry", seconds);
            if (seconds == 0 && options.persistent) {
                problems.add("connect_properties.session_expiry",
                             "0 ends the broker's session with the connection: a persistent "
                             "session needs a longer one (or none set: never expires)");
            }
        }
        // Below 64 bytes not even a CONNACK with its properties fits; above MQTT's largest
        // packet the limit means nothing.
        if (connect.maximum_packet_size != 0 &&
            (connect.maximum_packet_size < 64 ||
             connect.maximum_packet_size > detail::packet_size(detail::max_remaining_length))) {
            problems.add("connect_properties.maximum_packet_size",
                         "must be 0 (no limit) or 64 to 268435460 bytes, got " +
                             std::to_string(connect.maximum_packet_size));
        }
        detail::check_user_properties(connect.user_properties, problems, "connect_properties");
    }
    if (options.will) {
        const auto& will = *options.will;
        if (!v5 && (!will.properties.empty() || will.delay.count() != 0)) {
            problems.add("will", "properties and delay need Protocol::v5");
        }
        detail::check_interval(problems, "will.delay", will.delay.count());
        detail::check_publish_properties(will.properties, problems, "will.properties");
    }
    if (options.performance.topic_aliases != 0 && !v5) {
        problems.add("performance.topic_aliases", "needs Protocol::v5 (0 turns them off)");
    }
}

}  // namespace

void validate(const Options& options) {
    Problems problems;
    if (options.name.empty()) problems.add("name", "must not be empty");
    check_brokers(problems, options);

    detail::check_string(problems, "client_id", options.client_id);
    if (options.persistent && options.client_id.empty()) {
        problems.add("client_id", "a persistent session needs a fixed client id");
    }
    if (!detail::is_enumerator(options.protocol, Protocol::v5)) {
        problems.add("protocol", "not a Protocol (v311 or v5)");
    }
    if (options.persistent && options.clean_session) {
        problems.add("clean_session", "a persistent session cannot use a clean session");
    }
    if (options.credentials) {
        const auto& credentials = *options.credentials;
        if (credentials.username.empty() && !credentials.password.empty()) {
            problems.add("credentials", "a password needs a user name");
        }
        detail::check_string(problems, "credentials.username", credentials.username);
        // Binary Data: any bytes, but a two-byte length. Never quoted: it is secret.
        if (credentials.password.size() > detail::max_string_length) {
            problems.add("credentials.password", "longer than 65535 bytes");
        }
    }
    if (options.keep_alive.count() < 0 || options.keep_alive.count() > 65535) {
        problems.add("keep_alive", "must be 0 to 65535 seconds");
    }
    if (options.connect_timeout.count() <= 0) problems.add("connect_timeout", "must be positive");
    check_paho_timeout(problems, "connect_timeout", options.connect_timeout);
    if (options.write_timeout.count() <= 0) problems.add("write_timeout", "must be positive");
    if (options.disconnect_timeout.count() < 0) {
        problems.add("disconnect_timeout", "must not be negative");
    }
    check_paho_timeout(problems, "disconnect_timeout", options.disconnect_timeout);

    const auto& reconnect = options.reconnect;
    if (reconnect.initial.count() <= 0) problems.add("reconnect.initial", "must be positive");
    if (reconnect.max < reconnect.initial) {
        problems.add("reconnect.max", "must not be smaller than reconnect.initial");
    }
    if (!(reconnect.multiplier >= 1.0) || !std::isfinite(reconnect.multiplier)) {
        problems.add("reconnect.multiplier", "must be a finite number >= 1");
    }
    if (!(reconnect.jitter >= 0.0 && reconnect.jitter < 1.0)) {
        problems.add("reconnect.jitter", "must be in [0, 1)");
    }

    if (options.tls) detail::check_tls(problems, *options.tls);

    const auto& performance = options.performance;
    if (performance.buffer_kb == 0 || performance.buffer_kb > max_payload_kb) {
        problems.add("performance.buffer_kb", "must be 1 to " + std::to_string(max_payload_kb));
    }
    if (performance.max_pending < 1) problems.add("performance.max_pending", "must be at least 1");
    if (performance.max_inflight < 1 || performance.max_inflight > 65535) {
        problems.add("performance.max_inflight", "must be 1 to 65535");
    }
    if (!detail::is_enumerator(performance.overflow, BufferOverflow::drop_oldest)) {
        problems.add("performance.overflow", "not a BufferOverflow");
    }
    if (performance.max_publish_attempts < 1 || performance.max_publish_attempts > 100) {
        problems.add("performance.max_publish_attempts", "must be 1 to 100");
    }
    if (performance.in_flight_stall_after.count() < 0) {
        problems.add("performance.in_flight_stall_after", "must not be negative (0: off)");
    }
    check_storage(problems, options);
    check_mqtt5(problems, options);

    if (options.will) {
        const auto& will = *options.will;
        if (auto problem = topic::check_topic_name(will.topic); !problem.empty()) {
            problems.add("will.topic", detail::quoted(will.topic) + ": " + std::string(problem));
        }
        check_qos(problems, "will.qos", will.qos);
        // Binary Data in both versions (3.1.1 s3.1.3.3, 5.0 s3.1.3.4).
        if (will.payload.size() > detail::max_string_length) {
            problems.add("will.payload", "longer than 65535 bytes");
        }
    }
    for (std::size_t i = 0; i < options.subscriptions.size(); ++i) {
        const auto& subscription = options.subscriptions[i];
        const std::string field = "subscriptions[" + std::to_string(i) + "]";
        const auto& group = subscription.options.share_group;
        const std::string filter =
            group.empty() ? subscription.filter : "$share/" + group + "/" + subscription.filter;
        if (!group.empty() && !topic::check_share_group(group).empty()) {
            problems.add(field + ".filter", detail::quoted(filter) + ": " +
                                                std::string(topic::check_share_group(group)));
        } else if (auto problem = topic::check_topic_filter(filter); !problem.empty()) {
            problems.add(field + ".filter", detail::quoted(filter) + ": " + std::string(problem));
        }
        if (auto problem = detail::check_subscribe_options(subscription.options, options.protocol);
            !problem.empty()) {
            problems.add(field + ".options", std::move(problem));
        }
        check_qos(problems, field + ".qos", subscription.qos);
        if (!subscription.handler) problems.add(field + ".handler", "must not be empty");
    }
    if (options.message_channel_size == 0) {
        problems.add("message_channel_size", "must be at least 1");
    }
    if (!problems.empty()) {
        problems.raise("invalid options for session '" + options.name + "'", options.name);
    }
}

void validate(const DisconnectOptions& disconnect, const Options& options) {
    Problems problems;
    if (options.protocol != Protocol::v5) {
        problems.add("protocol",
                     "a DISCONNECT with a reason code or properties needs Protocol::v5");
    }
    // The codes a client may send (MQTT 5 s3.14.2.1; the others are the server's).
    static constexpr int client_codes[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90,
                                           0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99};
    if (std::find(std::begin(client_codes), std::end(client_codes), disconnect.reason_code) ==
        std::end(client_codes)) {
        problems.add("reason_code", std::to_string(disconnect.reason_code) +
                                        " is not a DISCONNECT reason code a client may send");
    }
    if (disconnect.session_expiry) {
        const auto seconds = disconnect.session_expiry->count();
        const auto& connect = options.connect_properties;
        // What the CONNECT asked for (see SessionCore::connect_properties()).
        const auto connected_with = connect && connect->session_expiry
                                        ? connect->session_expiry->count()
                                        : (options.clean_session ? 0 : 1);
        detail::check_interval(problems, "session_expiry", seconds);
        if (seconds != 0 && connected_with == 0) {
            problems.add("session_expiry",
                         "the session connected with a Session Expiry Interval of 0, which a "
                         "DISCONNECT may not raise");
        }
    }
    detail::check_string(problems, "reason_string", disconnect.reason_string);
    detail::check_user_properties(disconnect.user_properties, problems, "disconnect");
    if (!problems.empty()) {
        problems.raise("invalid disconnect options for session '" + options.name + "'",
                       options.name);
    }
}

}  // namespace mqttx
