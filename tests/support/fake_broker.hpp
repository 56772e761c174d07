// A fake MQTT 3.1.1 / 5 server for hostile-server tests: it sends what no real broker
// would (PUBLISH topics with wildcards, NUL bytes or invalid UTF-8), so a test can check
// that the client refuses it, and what mosquitto 2.0 never sends (an MQTT 5 DISCONNECT
// with a reason string and a server reference).
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
#include <memory>
#include <string>
#include <string_view>

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

  private:
    struct Impl;

    std::unique_ptr<Impl> impl_;
    int port_ = 0;
};

}  // namespace mqttx::test
