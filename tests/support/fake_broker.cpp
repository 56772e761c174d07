#include "support/fake_broker.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "support/mosquitto.hpp"  // listen_on_free_port()

namespace mqttx::test {
namespace {

// Control packet types (s2.2.1).
constexpr unsigned kConnect = 1, kPublish = 3, kSubscribe = 8, kUnsubscribe = 10, kPingreq = 12,
                   kDisconnect = 14;

// MQTT's variable byte integer (s2.2.3), as used by the remaining length.
void put_length(std::string& out, std::size_t n) {
    do {
        auto byte = static_cast<unsigned char>(n % 128);
        n /= 128;
        if (n != 0) byte |= 0x80;
        out.push_back(static_cast<char>(byte));
    } while (n != 0);
}

// Blocking write of all of `data`; false if the peer is gone (or stopped reading for
// SO_SNDTIMEO). MSG_NOSIGNAL: a closed peer must not kill the test with SIGPIPE.
bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

struct Conn {
    int fd = -1;
    bool connected = false;  // sent CONNECT: send_publish() writes to it
    std::string in{};        // bytes read but not yet a whole packet
    int version = 4;         // the CONNECT's protocol level: 4 (3.1.1) or 5
};

// An MQTT 5 UTF-8 string property (s2.2.2.2): identifier, length, bytes.
void put_string_property(std::string& out, unsigned char id, std::string_view text) {
    out.push_back(static_cast<char>(id));
    out.push_back(static_cast<char>(text.size() >> 8));
    out.push_back(static_cast<char>(text.size() & 0xFF));
    out.append(text);
}

// Reads a variable byte integer at `pos`; throws when it runs past `data`.
std::uint32_t read_varint(std::string_view data, std::size_t& pos) {
    std::uint32_t value = 0;
    for (int shift = 0; shift <= 21; shift += 7) {
        if (pos >= data.size()) throw std::runtime_error("truncated variable byte integer");
        const auto byte = static_cast<unsigned char>(data[pos++]);
        value |= static_cast<std::uint32_t>(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0) return value;
    }
    throw std::runtime_error("malformed variable byte integer");
}

std::uint32_t read_number(std::string_view data, std::size_t& pos, int bytes) {
    if (pos + static_cast<std::size_t>(bytes) > data.size()) {
        throw std::runtime_error("truncated integer");
    }
    std::uint32_t value = 0;
    for (int i = 0; i < bytes; ++i) value = value * 256 + static_cast<unsigned char>(data[pos++]);
    return value;
}

std::string read_string(std::string_view data, std::size_t& pos) {
    const auto length = read_number(data, pos, 2);
    if (pos + length > data.size()) throw std::runtime_error("truncated string");
    std::string text(data.substr(pos, length));
    pos += length;
    return text;
}

// The property section (its length, then the properties) at `pos`.
std::vector<FakeBroker::Property> read_properties(std::string_view data, std::size_t& pos) {
    const auto length = read_varint(data, pos);
    const std::size_t end = pos + length;
    if (end > data.size()) throw std::runtime_error("truncated properties");
    std::vector<FakeBroker::Property> out;
    while (pos < end) {
        FakeBroker::Property property;
        property.id = static_cast<int>(read_varint(data, pos));
        switch (property.id) {
            case 0x01:
            case 0x17:
            case 0x19:
            case 0x24:
            case 0x25:
            case 0x28:
            case 0x29:
            case 0x2A:
                property.number = read_number(data, pos, 1);
                break;
            case 0x13:
            case 0x21:
            case 0x22:
            case 0x23:
                property.number = read_number(data, pos, 2);
                break;
            case 0x02:
            case 0x11:
            case 0x18:
            case 0x27:
                property.number = read_number(data, pos, 4);
                break;
            case 0x0B:
                property.number = read_varint(data, pos);
                break;
            case 0x26:
                property.text = read_string(data, pos);
                property.value = read_string(data, pos);
                break;
            default:  // the strings and binary data
                property.text = read_string(data, pos);
                break;
        }
        out.push_back(std::move(property));
    }
    return out;
}

}  // namespace

struct FakeBroker::Impl {
    int listen_fd = -1;
    int wake_fd = -1;  // the destructor's wake-up for poll()
    std::atomic<bool> stopping{false};
    std::thread thread;
    // Guards conns and subscribed. The loop thread holds it while it answers a packet,
    // so its replies and send_publish() never interleave on a socket, and a socket is
    // never closed (and its number reused) while send_publish() writes to it.
    std::mutex mutex;
    std::condition_variable subscribed_cv;
    std::vector<Conn> conns;  // only the loop thread adds and removes
    std::set<std::string> subscribed;
    std::vector<Packet> received;  // every packet, in order
    std::string connack_properties;
    int connack_code = 0;

    ~Impl() {
        stopping.store(true);
        if (thread.joinable()) {
            const std::uint64_t one = 1;
            [[maybe_unused]] auto ignored = ::write(wake_fd, &one, sizeof one);
            try {
                thread.join();
            } catch (...) {
                thread.detach();  // cannot happen; never throw from a destructor
            }
        }
        for (const auto& c : conns) ::close(c.fd);
        if (listen_fd >= 0) ::close(listen_fd);
        if (wake_fd >= 0) ::close(wake_fd);
    }

    // The thread. Only allocation can throw here; the clients then see a silent server.
    void run() noexcept try {
        std::vector<pollfd> fds;
        while (!stopping.load()) {
            fds = {{wake_fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
            for (const auto& c : conns) fds.push_back({c.fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
            if (stopping.load()) return;
            if (fds[1].revents != 0) {
                const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd >= 0) {
                    // A client that stops reading must not hang send_publish() for ever.
                    timeval timeout{10, 0};
                    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
                    std::lock_guard lock(mutex);
                    conns.push_back(Conn{fd, false, {}, 4});
                }
            }
            for (std::size_t i = 2; i < fds.size(); ++i) {
                if (fds[i].revents != 0) serve(fds[i].fd);
            }
        }
    } catch (...) {
    }

    // Reads what fd has and answers every whole packet in it.
    void serve(int fd) {
        char buffer[4096];
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        std::lock_guard lock(mutex);
        auto it = std::find_if(conns.begin(), conns.end(), [&](auto& c) { return c.fd == fd; });
        if (it == conns.end()) return;
        bool keep = n > 0;
        if (keep) it->in.append(buffer, static_cast<std::size_t>(n));
        while (keep) {
            // Fixed header: type and flags, then the remaining length in 1..4 bytes.
            const std::string& in = it->in;
            std::size_t length = 0;
            std::size_t pos = 1;
            bool complete = false;
            for (int shift = 0; pos < in.size() && shift <= 21; shift += 7) {
                const auto byte = static_cast<unsigned char>(in[pos++]);
                length |= static_cast<std::size_t>(byte & 0x7F) << shift;
                complete = (byte & 0x80) == 0;
                if (complete) break;
            }
            if (!complete) {
                keep = in.size() < 5;  // five header bytes without an end: malformed
                break;
            }
            if (in.size() - pos < length) break;  // wait for the rest
            const auto type = static_cast<unsigned char>(in[0]) >> 4;
            const auto flags = static_cast<unsigned char>(in[0]) & 0x0F;
            const std::string body = in.substr(pos, length);
            received.push_back(Packet{static_cast<int>(type), flags, body});
            subscribed_cv.notify_all();
            it->in.erase(0, pos + length);
            keep = answer(*it, type, body);
        }
        if (!keep) {
            ::close(fd);
            conns.erase(it);
        }
    }

    // Replies to one packet; false to close the connection.
    bool answer(Conn& conn, unsigned type, const std::string& body) {
        switch (type) {
            case kConnect:
                // Protocol name "MQTT" (2 + 4 bytes), then the protocol level.
                if (body.size() < 7) return false;
                conn.connected = true;
                conn.version = static_cast<unsigned char>(body[6]);
                if (conn.version == 5) {  // flags, reason code, properties
                    std::string body(1, '\x00');
                    body.push_back(static_cast<char>(connack_code));
                    put_length(body, connack_properties.size());
                    body += connack_properties;
                    std::string connack(1, '\x20');
                    put_length(connack, body.size());
                    return send_all(conn.fd, connack + body);
                }
                return send_all(conn.fd, std::string("\x20\x02\x00\x00", 4));
            case kSubscribe: {
                // Packet id, (MQTT 5: properties,) then (length, filter, options) per
                // filter.
                if (body.size() < 2) return false;
                std::size_t start = 2;
                if (conn.version == 5) {
                    if (body.size() < 3 || (body[2] & 0x80) != 0) return false;
                    start = 3 + static_cast<unsigned char>(body[2]);
                }
                std::vector<std::string> filters;
                for (std::size_t pos = start; pos + 2 <= body.size();) {
                    const std::size_t len = static_cast<unsigned char>(body[pos]) * 256u +
                                            static_cast<unsigned char>(body[pos + 1]);
                    if (pos + 2 + len + 1 > body.size()) return false;
                    filters.push_back(body.substr(pos + 2, len));
                    pos += 2 + len + 1;
                }
                std::string suback(1, '\x90');
                const bool v5 = conn.version == 5;
                put_length(suback, 2 + (v5 ? 1 : 0) + filters.size());
                suback.append(body, 0, 2);
                if (v5) suback.push_back('\x00');       // no properties
                suback.append(filters.size(), '\x00');  // every filter granted QoS 0
                if (!send_all(conn.fd, suback)) return false;
                // Recorded after the SUBACK went out: see wait_for_subscribe().
                subscribed.insert(filters.begin(), filters.end());
                subscribed_cv.notify_all();
                return true;
            }
            case kUnsubscribe: {
                if (body.size() < 2) return false;
                if (conn.version != 5) {
                    return send_all(conn.fd, std::string("\xB0\x02", 2) + body.substr(0, 2));
                }
                // Packet id, properties, then one "success" per filter.
                std::size_t pos = 2;
                std::size_t filters = 0;
                try {
                    read_properties(body, pos);
                    for (; pos < body.size(); ++filters) read_string(body, pos);
                } catch (const std::runtime_error&) {
                    return false;
                }
                std::string unsuback(1, '\xB0');
                put_length(unsuback, 3 + filters);
                unsuback.append(body, 0, 2);
                unsuback.push_back('\x00');  // no properties
                unsuback.append(filters, '\x00');
                return send_all(conn.fd, unsuback);
            }
            case kPingreq:
                return send_all(conn.fd, std::string("\xD0\x00", 2));
            case kDisconnect:
                return false;
            default:
                return true;  // PUBACK, PUBLISH and the rest: not needed by these tests
        }
    }
};

FakeBroker::FakeBroker() : impl_(std::make_unique<Impl>()) {
    Impl& impl = *impl_;
    impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl.wake_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    impl.listen_fd = listen_on_free_port("mqttx::test::FakeBroker", port_);
    impl.thread = std::thread([&impl] { impl.run(); });
}

FakeBroker::~FakeBroker() = default;

std::string FakeBroker::uri() const {
    return "tcp://127.0.0.1:" + std::to_string(port_);
}

bool FakeBroker::wait_for_subscribe(const std::string& filter, std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    return impl_->subscribed_cv.wait_for(lock, deadline,
                                         [&] { return impl_->subscribed.count(filter) != 0; });
}

std::size_t FakeBroker::send_publish(std::string_view topic_bytes, std::string_view payload) {
    if (topic_bytes.size() > 0xFFFF) throw std::invalid_argument("topic longer than 65535 bytes");
    // PUBLISH, QoS 0, no DUP, no RETAIN; MQTT 5 has an (empty) property length as well.
    auto make = [&](bool v5) {
        std::string packet(1, '\x30');
        put_length(packet, 2 + topic_bytes.size() + (v5 ? 1 : 0) + payload.size());
        packet.push_back(static_cast<char>(topic_bytes.size() >> 8));
        packet.push_back(static_cast<char>(topic_bytes.size() & 0xFF));
        packet.append(topic_bytes);
        if (v5) packet.push_back('\x00');
        packet.append(payload);
        return packet;
    };
    const std::string v4_packet = make(false);
    const std::string v5_packet = make(true);
    std::lock_guard lock(impl_->mutex);
    std::size_t written = 0;
    for (const auto& c : impl_->conns) {
        if (c.connected && send_all(c.fd, c.version == 5 ? v5_packet : v4_packet)) ++written;
    }
    return written;
}

std::string FakeBroker::string_property(int id, std::string_view text) {
    std::string out;
    put_string_property(out, static_cast<unsigned char>(id), text);
    return out;
}

std::string FakeBroker::pair_property(int id, std::string_view key, std::string_view value) {
    std::string out = string_property(id, key);
    out += string_property(id, value).substr(1);
    return out;
}

std::string FakeBroker::integer_property(int id, std::uint32_t value, int bytes) {
    std::string out(1, static_cast<char>(id));
    for (int i = bytes - 1; i >= 0; --i)
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    return out;
}

void FakeBroker::set_connack(std::string properties, int reason_code) {
    std::lock_guard lock(impl_->mutex);
    impl_->connack_properties = std::move(properties);
    impl_->connack_code = reason_code;
}

std::size_t FakeBroker::send_publish_v5(std::string_view topic, std::string_view payload,
                                        std::string_view properties) {
    std::string body;
    body.push_back(static_cast<char>(topic.size() >> 8));
    body.push_back(static_cast<char>(topic.size() & 0xFF));
    body.append(topic);
    put_length(body, properties.size());
    body.append(properties);
    body.append(payload);
    std::string packet(1, '\x30');
    put_length(packet, body.size());
    packet += body;
    std::lock_guard lock(impl_->mutex);
    std::size_t written = 0;
    for (const auto& c : impl_->conns) {
        if (c.connected && c.version == 5 && send_all(c.fd, packet)) ++written;
    }
    return written;
}

FakeBroker::Packet FakeBroker::wait_for_packet(int type, std::size_t skip,
                                               std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    const Packet* found = nullptr;
    auto seen = [&] {
        std::size_t count = 0;
        for (const auto& packet : impl_->received) {
            if (packet.type == type && count++ == skip) {
                found = &packet;
                return true;
            }
        }
        return false;
    };
    if (!impl_->subscribed_cv.wait_for(lock, deadline, seen)) {
        throw std::runtime_error("no packet of type " + std::to_string(type) + " came");
    }
    return *found;
}

std::vector<FakeBroker::Packet> FakeBroker::packets(int type) const {
    std::lock_guard lock(impl_->mutex);
    std::vector<Packet> out;
    for (const auto& packet : impl_->received) {
        if (packet.type == type) out.push_back(packet);
    }
    return out;
}

std::vector<FakeBroker::Property> FakeBroker::Packet::properties() const {
    std::size_t pos = 0;
    switch (type) {
        case kConnect:
            pos = 10;  // protocol name, level, flags, keep-alive
            break;
        case kPublish:
            read_string(body, pos);             // topic
            if ((flags & 0x06) != 0) pos += 2;  // QoS 1/2: packet identifier
            break;
        case kSubscribe:
        case kUnsubscribe:
            pos = 2;  // packet identifier
            break;
        case kDisconnect:
            if (body.size() < 2) return {};
            pos = 1;  // reason code
            break;
        default:
            throw std::runtime_error("properties of packet type " + std::to_string(type));
    }
    return read_properties(body, pos);
}

std::string FakeBroker::Packet::topic() const {
    if (type != kPublish)
        throw std::runtime_error("a topic of packet type " + std::to_string(type));
    std::size_t pos = 0;
    return read_string(body, pos);
}

std::vector<FakeBroker::Property> FakeBroker::Packet::will_properties() const {
    if (type != kConnect || body.size() < 8 || (body[7] & 0x04) == 0) return {};
    std::size_t pos = 10;
    read_properties(body, pos);  // the CONNECT's own
    read_string(body, pos);      // client id
    return read_properties(body, pos);
}

std::size_t FakeBroker::send_disconnect(int reason_code, std::string_view reason_string,
                                        std::string_view server_reference) {
    std::string properties;
    if (!reason_string.empty()) put_string_property(properties, 0x1F, reason_string);
    if (!server_reference.empty()) put_string_property(properties, 0x1C, server_reference);
    std::string body(1, static_cast<char>(reason_code));
    put_length(body, properties.size());
    body += properties;
    std::string packet(1, '\xE0');
    put_length(packet, body.size());
    packet += body;
    std::lock_guard lock(impl_->mutex);
    std::size_t written = 0;
    for (const auto& c : impl_->conns) {
        if (!c.connected || c.version != 5) continue;
        if (send_all(c.fd, packet)) ++written;
        ::shutdown(c.fd, SHUT_RDWR);  // the loop thread sees the end and closes it
    }
    return written;
}

}  // namespace mqttx::test
