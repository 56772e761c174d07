// Options: everything that configures one session. A plain aggregate with defaults,
// usable directly or filled in by SessionBuilder; validate() checks it as a whole.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mqttx/heap_optional.hpp"
#include "mqttx/message.hpp"
#include "mqttx/properties.hpp"
#include "mqttx/subscribe_options.hpp"

namespace spdlog {
class logger;
}

namespace mqttx {

enum class Protocol { v311, v5 };

// What a bounded queue does when it is full.
enum class Overflow { block, drop_oldest, drop_newest };

// Exponential backoff for the first connect and every reconnect.
struct ReconnectPolicy {
    std::chrono::milliseconds initial{1000};
    std::chrono::milliseconds max{60000};
    double multiplier = 2.0;
    double jitter = 0.2;  // each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    bool enabled = true;
};

enum class TlsVersion { v1_2, v1_3 };

// TLS for ssl://, mqtts:// and wss:// brokers. The broker's certificate and host name
// are verified unless skip_verify; the host name is also sent as SNI. build() checks
// every file with OpenSSL and names the one that is wrong. Every field has a default
// member initialiser, so designated initialisers need name only what they set.
struct TlsConfig {
    std::string ca_file{};       // PEM bundle of trusted CAs; empty (and no ca_path): the system's
    std::string cert_file{};     // client certificate (mutual TLS), PEM
    std::string key_file{};      // its private key, PEM (encrypted: set key_password)
    bool skip_verify = false;    // explicit opt-in: no certificate or host name check (logged)
    std::string key_password{};  // never logged
    std::string ciphers{};       // OpenSSL cipher list for TLS 1.2; empty: OpenSSL's defaults
    std::string ca_path{};       // a directory of PEM CA certificates, instead of ca_file
    // The lowest version accepted. TLS 1.2 (OpenSSL 3 refuses older ones at its default
    // security level); v1_3 is refused by build(): Paho C 1.3.12 cannot set it.
    TlsVersion min_version = TlsVersion::v1_2;
    std::vector<std::string> alpn{};  // ALPN protocol names offered, e.g. {"mqtt"}
};

// What publish() does when Paho's buffer of unsent messages is full.
enum class BufferOverflow { reject, drop_oldest };

struct PerformanceOptions {
    std::size_t buffer_kb = 256 * 1024;  // largest payload accepted by publish(), in KiB
    int max_pending = 10000;             // messages accepted but not yet sent (Paho's buffer)
    // The same bound in bytes of their topics and payloads (about what they take in
    // storage); 0: none. A persistent session keeps its first 1,000 waiting messages in
    // memory; past them, a message whose token the application let go waits in storage
    // only, so an outage costs disk, not memory (about 100 bytes of memory each).
    std::size_t max_pending_bytes = 0;
    // QoS 1/2 messages awaiting acknowledgement. MQTT 3.1.1 has no flow control, and
    // mosquitto (20 by default) acknowledges but drops what comes past its limit, so
    // keep this at or below the broker's. An MQTT 5 session also keeps to the broker's
    // Receive Maximum.
    int max_inflight = 20;
    BufferOverflow overflow = BufferOverflow::reject;
    // A QoS 1/2 message that was in flight each time the broker closed the connection,
    // this many times in a row, is given up: its token fails (kind publish), it is
    // counted (SessionMetrics::poison_publishes) and the outbox moves on. A broker
    // closes the connection on a message it cannot take; resent, it would do so forever.
    int max_publish_attempts = 3;
    // A connected session whose oldest in-flight message has waited this long for the
    // broker's acknowledgement reports a stalled window (a window_stalled event, a log
    // line and SessionMetrics::window_stalled): a broker that never completes QoS 2
    // stalls the session otherwise without a word. 0: never reported.
    std::chrono::milliseconds in_flight_stall_after{30000};
    // MQTT 5: QoS 0 publishes to up to this many topics (and no more than the broker's
    // Topic Alias Maximum) go out with a two-byte topic alias instead of the topic after
    // their first time on a connection, which saves the topic's bytes on every later
    // message. 0: off. QoS 1/2 always carry their topic: Paho resends those after a
    // reconnect, when the broker has forgotten every alias. A QoS 0 message sent as an
    // alias in the instant its connection drops may reach the next connection, whose
    // broker does not know the alias and closes it (0x94): the session reconnects.
    std::uint16_t topic_aliases = 0;
};

// memory: nothing outlives the session object, so the session keeps no copies: its
// outbox and Paho hold what is unconfirmed across reconnects (storage_metrics() is
// empty). file and Redis outlive the program.
enum class StorageType { memory, file, redis };

// Where a persistent session keeps in-flight messages, its outbox and its state.
inline constexpr std::size_t default_segment_bytes = std::size_t{8} << 20;
inline constexpr std::size_t min_segment_bytes = 4096;
inline constexpr std::size_t max_segment_bytes = std::size_t{1} << 30;

struct StorageOptions {
    StorageType type = StorageType::memory;
    std::string directory{};  // file
    // file: every write reaches the kernel before the call returns, so it survives a
    // crash of the program (what Paho's own file persistence does). true: a writer
    // thread also syncs the log to disk, many writes per sync, and a publish's token
    // completes only once its message was on disk before the broker confirmed it, so
    // a power cut loses no confirmed message.
    bool file_sync = true;
    // file: the log rolls to a new segment file past this size; a segment mostly dead
    // is compacted. From 4096 bytes to 1 GiB.
    std::size_t file_segment_bytes = default_segment_bytes;
    std::string redis_address{};   // redis: "host:port"
    std::string redis_user{};      // redis AUTH (empty: password only, or none)
    std::string redis_password{};  // never logged
    int redis_db = 0;
    std::string redis_prefix = "mqttx:";
    std::chrono::milliseconds redis_connect_timeout{2000};
    std::chrono::milliseconds redis_command_timeout{2000};
    std::chrono::seconds state_ttl{0};  // redis: expiry of the session state; 0 keeps it
};

struct Credentials {
    std::string username{};
    std::string password{};  // never logged
};

struct Will {
    std::string topic{};
    std::string payload{};
    int qos = 0;
    bool retained = false;
    // MQTT 5: properties the will message carries (content type, expiry, response topic,
    // correlation data, user properties...).
    PublishProperties properties{};
    // MQTT 5 Will Delay Interval: the broker waits this long after the connection is lost
    // before it publishes the will (and not at all if the session reconnects first).
    std::chrono::seconds delay{0};
};

// MQTT 5 CONNECT properties. Zero means "not sent" (MQTT's default applies).
struct ConnectProperties {
    // Session Expiry Interval: how long the broker keeps the session after the connection
    // ends. Unset: 2^31 - 1 seconds (68 years: never) when Options::clean_session is off
    // (as for a persistent session), 0 (ends with the connection) when it is on. At most
    // 2^31 - 1: Paho C 1.3.12 writes larger values wrongly.
    std::optional<std::chrono::seconds> session_expiry{};
    // QoS 1/2 messages the broker may have unacknowledged towards this client (1-65535).
    std::uint16_t receive_maximum = 0;
    // The largest packet this client accepts; the broker drops larger ones for it.
    std::uint32_t maximum_packet_size = 0;
    // Topic aliases the broker may use towards this client.
    std::uint16_t topic_alias_maximum = 0;
    // Ask for Response Information in the CONNACK (ConnectInfo::response_information).
    bool request_response_information = false;
    // false: the broker sends no reason strings or user properties except on PUBLISH,
    // CONNACK and DISCONNECT.
    bool request_problem_information = true;
    UserProperties user_properties{};

    bool operator==(const ConnectProperties&) const = default;
};

// A subscription made as soon as the session connects, and again after every reconnect.
struct SubscriptionSpec {
    std::string filter{};
    int qos = 0;
    MessageHandler handler{};
    SubscribeOptions options{};
};

struct Options {
    std::string name{};
    std::vector<std::string> brokers{};  // tried in order; "host:port" means tcp (ssl with TLS)
    std::string client_id{};             // empty: derived from the name
    HeapOptional<Credentials> credentials{};
    Protocol protocol = Protocol::v311;
    // A dead connection is noticed within about 1.5x this: the session pings the broker
    // at half of it (and tells the broker that half). 0 turns keep-alive off.
    std::chrono::seconds keep_alive{30};
    bool clean_session = true;
    bool persistent = false;  // keep the broker session and in-flight messages across restarts
    HeapOptional<ConnectProperties> connect_properties{};  // MQTT 5
    // Connect and disconnect timeouts go to Paho, which keeps them in an int: at most
    // INT_MAX ms (about 24 days). The write timeout is ours: any length.
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds write_timeout{10000};  // subscribe/unsubscribe acknowledgements
    std::chrono::milliseconds disconnect_timeout{2000};
    ReconnectPolicy reconnect{};
    HeapOptional<TlsConfig> tls{};
    PerformanceOptions performance{};
    HeapOptional<StorageOptions> storage{};
    HeapOptional<Will> will{};
    std::vector<SubscriptionSpec> subscriptions{};
    // Persistent sessions: the subscriptions saved by the last run (StoredSessionState)
    // that `subscriptions` does not make again get a route to this handler before the
    // session connects, so what the broker kept for them is delivered. Empty: they are
    // only reported (Session::stored_state()), and what arrives on them is unrouted.
    MessageHandler restored_handler{};
    std::size_t message_channel_size = 1000;
    std::shared_ptr<spdlog::logger> logger{};  // empty: the library's "mqttx" logger
};

// MQTT 5: what the client's DISCONNECT tells the broker (Session::close()).
struct DisconnectOptions {
    // 0x00 normal: the broker discards the will. 0x04 "disconnect with will message": it
    // publishes the will. Or an error code from 0x80 (MQTT 5 s3.14.2.1).
    int reason_code = 0;
    // A new Session Expiry Interval, e.g. 0 to end a persistent session now. Not allowed
    // when the session connected with 0 (MQTT 5 s3.14.2.2.2).
    std::optional<std::chrono::seconds> session_expiry{};
    std::string reason_string{};
    UserProperties user_properties{};
};

// Throws Error (kind configuration) listing every problem found, one per field.
void validate(const Options& options);
// The same for a DISCONNECT of a session with `options`.
void validate(const DisconnectOptions& disconnect, const Options& options);

}  // namespace mqttx
