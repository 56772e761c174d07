// Forwarder: moves messages from source sessions to a target session (a bridge between
// brokers inside one program), with topic mapping, filters, payload transforms and
// metadata. Configure with ForwarderBuilder or a plain ForwarderConfig; run it through
// SessionManager::forwarders().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqttx/message.hpp"
#include "mqttx/metrics.hpp"
#include "mqttx/options.hpp"

namespace mqttx {

class SessionManager;

// True to forward the message.
using MessagePredicate = std::function<bool(const Message&)>;
// Returns the new payload. Throwing drops the message (counted, with an error event).
using PayloadTransform = std::function<std::string(std::string_view payload)>;

enum class ForwardMode {
    // The message is handed to the target session (its outbox) on Paho's receive thread,
    // before the source broker gets its acknowledgement: a crash of the program between
    // the two brokers loses nothing when the source session is persistent. A full target
    // outbox is waited for at most ForwarderConfig::handoff_timeout, then the message is
    // dropped and counted. Every session of the program waits meanwhile: Paho has one
    // receive thread.
    at_least_once,
    // A bounded queue and a worker thread per forwarder: a slow or absent target never
    // holds up a source session, but what sits in the queue is lost if the program dies.
    decoupled,
};

struct ForwarderSource {
    std::string session{};
    std::vector<std::string> filters{};
};

// `from` is a topic or a filter; `to` a template: {1}..{n} stand for the levels matched
// by the n '+' of `from`, {#} for what '#' matched, {topic} for the whole source topic.
struct TopicMapping {
    std::string from{};
    std::string to{};
};

struct ForwarderConfig {
    std::string name{};
    std::vector<ForwarderSource> sources{};
    std::string target{};
    std::optional<int> qos{};  // empty: the QoS the message arrived with
    // Non-empty: the sources subscribe as "$share/<share_group>/<filter>", so that several
    // programs running this forwarder split the stream between them (each message goes
    // to one), as MQTT shared subscriptions do. The broker must support them; MQTT 5
    // forbids no_local on a shared subscription, so source and target must differ.
    std::string share_group{};
    bool keep_retain = true;
    std::vector<TopicMapping> mappings{};  // the first that matches applies; else the topic stays
    std::string prefix{};                  // put before the (mapped) topic
    // Filters, all of which a message must pass.
    std::vector<std::string> topic_filters{};
    std::vector<MessagePredicate> predicates{};
    std::vector<std::string> payload_patterns{};  // ECMAScript regular expressions, searched
    std::vector<PayloadTransform> transforms{};   // applied in order
    // Sent as MQTT 5 user properties; a v3.1.1 target needs json_envelope, which wraps
    // the payload as {"payload": "<payload>", "metadata": {...}}.
    std::vector<std::pair<std::string, std::string>> metadata{};
    bool json_envelope = false;
    ForwardMode mode = ForwardMode::at_least_once;
    std::chrono::milliseconds handoff_timeout{100};  // at_least_once: for a full target outbox
    std::size_t buffer_size = 1000;                  // decoupled: the queue
    Overflow overflow = Overflow::drop_oldest;       // decoupled: block waits handoff_timeout
    // A hop count travels as the user property "mqttx-hops" (MQTT 5); a message that has
    // already made this many hops is dropped, which ends forwarding loops.
    int max_hops = 8;
    bool enabled = true;  // start when added
};

// Throws Error (kind configuration) listing every problem. Sessions are checked when
// the forwarder is added to a manager.
void validate(const ForwarderConfig& config);

class ForwarderBuilder {
  public:
    explicit ForwarderBuilder(std::string name);

    ForwarderBuilder& source(std::string session, std::vector<std::string> filters);
    ForwarderBuilder& target(std::string session);
    ForwarderBuilder& qos(int qos);
    ForwarderBuilder& keep_qos();
    ForwarderBuilder& share_group(std::string group);
    ForwarderBuilder& retain(bool keep);
    ForwarderBuilder& map_topic(std::string from, std::string to);
    ForwarderBuilder& prefix(std::string prefix);
    ForwarderBuilder& filter_topic(std::string filter);
    ForwarderBuilder& filter(MessagePredicate predicate);
    ForwarderBuilder& filter_payload(std::string pattern);
    ForwarderBuilder& transform(PayloadTransform transform);
    // Sets a field of a JSON object payload; `field` may be a dotted path ("meta.site").
    // A payload that is not a JSON object is dropped (counted as a transform failure).
    ForwarderBuilder& set_json_field(std::string field, std::string value);
    ForwarderBuilder& metadata(std::string key, std::string value);
    ForwarderBuilder& json_envelope(bool on = true);
    ForwarderBuilder& mode(ForwardMode mode);
    ForwarderBuilder& handoff_timeout(std::chrono::milliseconds timeout);
    ForwarderBuilder& buffer(std::size_t size, Overflow overflow);
    ForwarderBuilder& max_hops(int hops);
    ForwarderBuilder& enabled(bool on);

    // Validates (see validate()) and returns the config.
    ForwarderConfig build() const;

  private:
    ForwarderConfig config_;
};

namespace detail {
class ForwarderCore;
}

// A forwarder registered with a ForwarderManager. Thread-safe.
class Forwarder {
  public:
    explicit Forwarder(std::shared_ptr<detail::ForwarderCore> core) noexcept;
    ~Forwarder();
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    const std::string& name() const noexcept;
    const ForwarderConfig& config() const noexcept;
    // Subscribes on the sources (waits for their acknowledgements when connected).
    // Throws Error (subscription, session_closed). Does nothing when running.
    void start();
    // Unsubscribes; once it returns no message is forwarded any more. Never throws.
    void stop() noexcept;
    bool running() const noexcept;
    // Running, and the broker of every source acknowledged every subscription on the
    // current connection (false while a source is disconnected or resubscribing).
    bool subscribed() const noexcept;
    ForwarderMetrics metrics() const noexcept;
    // Counters and the latency histogram back to zero.
    void reset_metrics() noexcept;

  private:
    friend class ForwarderManager;
    std::shared_ptr<detail::ForwarderCore> core_;
};

// The forwarders of one SessionManager (SessionManager::forwarders()). Thread-safe;
// do not call it from a message handler running inline on Paho's thread.
class ForwarderManager {
  public:
    explicit ForwarderManager(SessionManager& sessions);
    ~ForwarderManager();
    ForwarderManager(const ForwarderManager&) = delete;
    ForwarderManager& operator=(const ForwarderManager&) = delete;

    // Validates, checks that the sessions exist (and that metadata and loop prevention
    // can work with their protocols), and starts it when enabled. The reference stays
    // valid until remove() or replace(). Throws Error: configuration, session_not_found,
    // duplicate_forwarder, and what start() throws.
    Forwarder& add(ForwarderConfig config);
    // Swaps the forwarder named config.name for one made from `config`, checked as add()
    // checks. The new one is started before the old one stops, so a source filter both
    // use stays subscribed at the broker and no message is missed in between; one that
    // arrives in that instant may be forwarded by both. Counters start again from zero; a
    // decoupled forwarder's queue goes with the old one, as at stop(). The subscribe
    // options of a filter both use stay the old one's (its no_local, share group): for a
    // change of sessions or share_group, remove() and add(). Throws what add() throws, and
    // forwarder_not_found; on a throw the old one runs on.
    Forwarder& replace(ForwarderConfig config);
    void remove(std::string_view name);
    Forwarder& get(std::string_view name);
    std::vector<std::string> list() const;
    void start(std::string_view name);
    void stop(std::string_view name);
    void stop_all() noexcept;
    std::map<std::string, ForwarderMetrics> all_metrics() const;
    void reset_all_metrics() noexcept;

    // SessionManager: stops the forwarders that use `session`, with an error event.
    void session_removed(std::string_view session) noexcept;

  private:
    std::shared_ptr<Forwarder> find(std::string_view name) const;
    // Validated and checked against the sessions, not registered, not started.
    std::shared_ptr<Forwarder> make(ForwarderConfig config);

    SessionManager& sessions_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Forwarder>, std::less<>> forwarders_;
};

}  // namespace mqttx
