// Fleet: N MQTT connections of one client library, written the way that library is
// usually used, so mqttx-bench can run the same scenario on each: mqttx sessions, raw
// Paho C++ async_clients, raw Paho C MQTTAsync clients, and libmosquitto clients (its own
// thread per client).
// Every fleet keeps the same application-level window: publish() blocks while
// `window` QoS 1/2 messages of that connection are unacknowledged.
#pragma once

#include <functional>
#include <memory>
#include <mqttx/session_manager.hpp>
#include <string>
#include <string_view>

namespace mqttx::bench {

using OnMessage = std::function<void(std::string_view payload)>;

// Forwarding (S7) for fleets whose message callback forwards by hand: what arrives on
// `in_prefix`# goes out through connection `to` as `out_prefix` + the rest of the topic.
template <class Connection>
struct ForwardRule {
    Connection* to = nullptr;  // null: not forwarding
    std::string in_prefix, out_prefix;
    int qos = 0;
    std::string out_topic(const char* topic) const {
        return out_prefix + (topic + in_prefix.size());
    }
};

class Fleet {
  public:
    virtual ~Fleet() = default;
    virtual const char* name() const = 0;
    // Opens `count` clean-session connections to host:port, all at once, and returns when
    // every one is connected. Throws std::runtime_error on failure.
    virtual void connect(const std::string& host, int port, int count, int window) = 0;
    // Subscribes connection `i`; `on_message` runs for each message on the library's
    // delivery thread (paho-handoff: the fleet's worker thread). Returns once the broker
    // acknowledged it. After disconnect() no `on_message` runs any more.
    virtual void subscribe(int i, const std::string& filter, int qos, OnMessage on_message) = 0;
    virtual void publish(int i, const std::string& topic, const std::string& payload, int qos) = 0;
    // Forwards what connection `from` receives on `in_prefix`# through connection `to`,
    // as `out_prefix` + the rest of the topic, at `qos`: the library's forwarder, or the
    // message callback people write by hand. Returns once the subscription is in place.
    virtual void forward(int from, int to, const std::string& in_prefix,
                         const std::string& out_prefix, int qos) = 0;
    // Waits until every publish of connection `i` is acknowledged (QoS 0: written).
    virtual void drain(int i) = 0;
    virtual void disconnect() = 0;
};

// `options`: the SessionManager's, e.g. inline_handlers (handlers on Paho's receive
// thread, as raw Paho's callback runs) to see what the hop to a dispatcher thread costs.
std::unique_ptr<Fleet> make_mqttx_fleet(const ManagerOptions& options = {});
// `handoff`: the message callbacks hand messages to a worker thread of the fleet's.
// Forwarding (S7) stays in the callback, as mqttx's at-least-once forwarder does.
std::unique_ptr<Fleet> make_paho_fleet(bool handoff = false);
std::unique_ptr<Fleet> make_paho_c_fleet();  // MQTTAsync directly, no C++ wrapper
std::unique_ptr<Fleet> make_mosquitto_fleet();

}  // namespace mqttx::bench
