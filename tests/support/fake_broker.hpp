// A fake MQTT 3.1.1 / 5 server for hostile-server tests: it sends what no real broker
// would (PUBLISH topics with wildcards, NUL bytes or invalid UTF-8), so a test can check
// that the client refuses it, and what mosquitto 2.0 never sends (an MQTT 5 DISCONNECT
// with a reason string and a server reference, CONNACK properties, topic aliases). It records every
// packet it receives, and decodes MQTT 5 properties, so a test can check what the client put on the
// wire.
//
// It listens on 127.0.0.1:<free port>; one background thread accepts connections and
// answers just enough for Paho to stay connected: CONNECT -> CONNACK (accepted),
// SUBSCRIBE -> SUBACK (QoS 0 granted to every filter), UNSUBSCRIBE -> UNSUBACK,
// PINGREQ -> PINGRESP. DISCONNECT closes the connection; everything else (PUBACK, the
// client's own PUBLISHes) is ignored. No sessions, no routing, no retained messages.
//
// All methods are thread-safe, but none may run while the destructor does.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mqttx::test {

class FakeBroker {
  public:
    // Starts listening and the thread. Throws std::system_error if it cannot listen.
    FakeBroker();
    // Closes every connection and the listener and joins the thread. Never throws.
    ~FakeBroker();

    FakeBroker(const FakeBroker&) = delete;
    FakeBroker& operator=(const FakeBroker&) = delete;

    int port() const { return port_; }
    std::string uri() const;  // "tcp://127.0.0.1:<port>"

    // True once a SUBSCRIBE with `filter` has arrived and its SUBACK has been sent
    // (within `deadline`); a PUBLISH sent after this follows the SUBACK on the wire.
    bool wait_for_subscribe(const std::string& filter,
                            std::chrono::milliseconds deadline = std::chrono::seconds(20));

    // Writes a QoS 0 PUBLISH with these exact topic bytes (no checks at all) to every
    // client that has sent CONNECT; returns how many it was written to.
    std::size_t send_publish(std::string_view topic_bytes, std::string_view payload);

    // Sends an MQTT 5 DISCONNECT (with the properties that are not empty) to every MQTT 5
    // client and closes their connections; returns how many it was written to.
    std::size_t send_disconnect(int reason_code, std::string_view reason_string = {},
                                std::string_view server_reference = {});

    // MQTT 5 properties, encoded (s2.2.2.2): identifier, then the value.
    static std::string string_property(int id, std::string_view text);
    static std::string pair_property(int id, std::string_view key, std::string_view value);
    static std::string integer_property(int id, std::uint32_t value, int bytes);  // 1, 2, 4

    // The properties of every later CONNACK to an MQTT 5 client (encoded, without their
    // length), and the reason code it carries.
    void set_connack(std::string properties, int reason_code = 0);
    // A QoS 0 MQTT 5 PUBLISH with these properties (encoded, without their length) to
    // every MQTT 5 client; returns how many it was written to.
    std::size_t send_publish_v5(std::string_view topic, std::string_view payload,
                                std::string_view properties);

    struct Property {
        int id = 0;
        std::uint32_t number = 0;  // integer properties
        std::string text{};        // string and binary properties; a pair's key
        std::string value{};       // a pair's value
    };
    struct Packet {
        int type = 0;      // control packet type (1 CONNECT, 3 PUBLISH ... 14 DISCONNECT)
        int flags = 0;     // the fixed header's low four bits (PUBLISH: QoS << 1, ...)
        std::string body;  // after the fixed header
        // The MQTT 5 properties of a CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE or DISCONNECT.
        std::vector<Property> properties() const;
        // PUBLISH: its topic name (empty when it uses a topic alias alone).
        std::string topic() const;
        // CONNECT: the will's properties.
        std::vector<Property> will_properties() const;
    };
    // The first packet of `type` received (within `deadline`) after `skip` of that type;
    // throws std::runtime_error when none came.
    Packet wait_for_packet(int type, std::size_t skip = 0,
                           std::chrono::milliseconds deadline = std::chrono::seconds(20));
    // Every packet of `type` received so far, in order.
    std::vector<Packet> packets(int type) const;

  private:
    struct Impl;

    std::unique_ptr<Impl> impl_;
    int port_ = 0;
};

}  // namespace mqttx::test
