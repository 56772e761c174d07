// A small TCP proxy between a client (the library under test) and a broker, for
// fault tests: it can reset, drop and stall connections and refuse new ones.
//
// The proxy listens on 127.0.0.1:<free port> and forwards each accepted
// connection to 127.0.0.1:<target port>. One background thread runs a poll()
// loop over non-blocking sockets. Every fault call is applied by that thread
// before the call returns (it waits for an acknowledgement, deadline 10 s), and
// connections whose TCP handshake finished before the call are accepted first,
// so a test needs no sleeps: after reset_all() returns, every connection the
// test had made is closed.
//
// Forwarding is transparent: a FIN from one side is passed on (after the data
// before it) as a FIN to the other side, a reset or socket error on one side
// becomes a reset (RST) on the other, and the pair is closed once both
// directions have ended. A failed connect to the target resets the client.
//
// All methods are thread-safe, but none may run while the destructor does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mqttx::test {

class FaultProxy {
  public:
    // Listens on 127.0.0.1:<free port> and forwards each accepted connection to
    // 127.0.0.1:target_port. Throws std::system_error if it cannot listen.
    explicit FaultProxy(int target_port);
    // Closes every connection and the listener and joins the thread. Never throws.
    ~FaultProxy();

    FaultProxy(const FaultProxy&) = delete;
    FaultProxy& operator=(const FaultProxy&) = delete;

    int port() const { return port_; }
    std::string uri() const;        // "tcp://127.0.0.1:<port>"
    std::string host_port() const;  // "127.0.0.1:<port>"

    // Connections accepted from now on go to 127.0.0.1:target_port; current
    // ones stay where they are.
    void set_target(int target_port);

    // Faults. Each applies to the connections open when it is called.
    // Aborts every connection with RST (SO_LINGER 0) on both sides; data held
    // in the proxy is lost.
    void reset_all();
    // Closes every connection gracefully on both sides: discards data held in
    // the proxy, sends FIN, then reads and discards whatever the peer still
    // sends (so it sees no RST) until it closes too, or for at most 2 s.
    void drop_all();
    // While on, keeps the sockets open but forwards nothing in either direction
    // and does not look at them at all (a closed or reset peer is noticed only
    // after the stall). Data is held in the kernel's buffers, not lost, and flows
    // again when turned off. New connections are accepted (and connected to the
    // target) but stall too.
    void set_stalled(bool on);
    // While on, accepts new connections and closes them at once (FIN).
    void set_refusing(bool on);
    // While `bytes` is not empty, a connection whose client sends them is closed on both
    // sides (as drop_all() does) before they are forwarded: a broker that closes the
    // connection on a message it will not take (a poison message). Matches across reads.
    void set_poison(std::string bytes);

    // Client connections currently open (a pair counts until both of its sockets
    // are closed; refused connections never count).
    std::size_t connection_count() const;
    // Connections accepted since construction, refused ones included.
    std::size_t accepted_total() const;
    // Bytes read from clients so far (what they sent towards the broker).
    std::uint64_t bytes_from_clients() const;
    // The last unexpected error the proxy met (a failed connect to the target, a
    // peer's reset, a failed system call), or "" if none. For debugging only.
    std::string last_error() const;

  private:
    struct Impl;

    std::unique_ptr<Impl> impl_;
    int port_ = 0;
};

}  // namespace mqttx::test
