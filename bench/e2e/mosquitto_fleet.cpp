// The libmosquitto fleet: a client and its network thread (mosquitto_loop_start) per
// connection, as libmosquitto's examples do; the window is counted in on_publish.
#include <mosquitto.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "fleet.hpp"

namespace mqttx::bench {
namespace {

struct Connection {
    mosquitto* client = nullptr;
    OnMessage on_message;
    ForwardRule<Connection> forward;  // S7: what arrives is published on forward.to instead
    std::mutex mutex;
    std::condition_variable changed;
    bool connected = false;
    int connect_result = -1;
    int unacknowledged = 0;  // publishes whose on_publish has not come yet
    bool subscribed = false;
};

void check(int rc, const char* what) {
    if (rc != MOSQ_ERR_SUCCESS) {
        throw std::runtime_error(std::string(what) + ": " + mosquitto_strerror(rc));
    }
}

class MosquittoFleet final : public Fleet {
  public:
    MosquittoFleet() { mosquitto_lib_init(); }
    ~MosquittoFleet() override {
        disconnect();
        mosquitto_lib_cleanup();
    }
    const char* name() const override { return "libmosquitto"; }

    void connect(const std::string& host, int port, int count, int window) override {
        window_ = window;
        for (int i = 0; i < count; ++i) {
            auto c = std::make_unique<Connection>();
            c->client = mosquitto_new(("mosq-" + std::to_string(i)).c_str(), true, c.get());
            if (!c->client) throw std::runtime_error("mosquitto_new failed");
            mosquitto_max_inflight_messages_set(c->client, static_cast<unsigned>(window));
            mosquitto_connect_callback_set(c->client, [](mosquitto*, void* self, int rc) {
                auto* c = static_cast<Connection*>(self);
                std::lock_guard lock(c->mutex);
                c->connected = rc == 0;
                c->connect_result = rc;
                c->changed.notify_all();
            });
            mosquitto_publish_callback_set(c->client, [](mosquitto*, void* self, int) {
                auto* c = static_cast<Connection*>(self);
                std::lock_guard lock(c->mutex);
                --c->unacknowledged;
                c->changed.notify_all();
            });
            mosquitto_subscribe_callback_set(c->client,
                                             [](mosquitto*, void* self, int, int, const int*) {
                                                 auto* c = static_cast<Connection*>(self);
                                                 std::lock_guard lock(c->mutex);
                                                 c->subscribed = true;
                                                 c->changed.notify_all();
                                             });
            mosquitto_message_callback_set(c->client, [](mosquitto*, void* self,
                                                         const mosquitto_message* m) {
                auto* c = static_cast<Connection*>(self);
                if (c->forward.to) {
                    // Counted, not waited for: a network thread must not block.
                    auto& target = *c->forward.to;
                    const std::string out = c->forward.out_topic(m->topic);
                    {
                        std::lock_guard lock(target.mutex);
                        ++target.unacknowledged;
                    }
                    if (mosquitto_publish(target.client, nullptr, out.c_str(), m->payloadlen,
                                          m->payload, c->forward.qos, false) != MOSQ_ERR_SUCCESS) {
                        std::lock_guard lock(target.mutex);
                        --target.unacknowledged;
                    }
                    return;
                }
                c->on_message(std::string_view(static_cast<const char*>(m->payload),
                                               static_cast<std::size_t>(m->payloadlen)));
            });
            auto* client = c->client;
            connections_.push_back(std::move(c));  // disconnect() frees it, also after a throw
            check(mosquitto_connect_async(client, host.c_str(), port, 30), "connect");
            check(mosquitto_loop_start(client), "loop_start");
        }
        for (auto& c : connections_) {
            std::unique_lock lock(c->mutex);
            if (!c->changed.wait_for(lock, std::chrono::seconds(60),
                                     [&] { return c->connect_result >= 0; }) ||
                !c->connected) {
                throw std::runtime_error(
                    "a libmosquitto client did not connect: " +
                    (c->connect_result < 0
                         ? std::string("no answer within 60 s")
                         : std::string(mosquitto_connack_string(c->connect_result))));
            }
        }
    }

    void subscribe(int i, const std::string& filter, int qos, OnMessage on_message) override {
        connections_.at(i)->on_message = std::move(on_message);
        subscribe(*connections_[i], filter, qos);
    }

    void forward(int from, int to, const std::string& in_prefix, const std::string& out_prefix,
                 int qos) override {
        auto& c = *connections_.at(from);
        c.forward = {connections_.at(to).get(), in_prefix, out_prefix, qos};
        subscribe(c, in_prefix + "#", qos);
    }

    void publish(int i, const std::string& topic, const std::string& payload, int qos) override {
        auto& c = *connections_[i];
        {
            std::unique_lock lock(c.mutex);
            if (qos > 0) c.changed.wait(lock, [&] { return c.unacknowledged < window_; });
            ++c.unacknowledged;  // before the call: on_publish may come first
        }
        const int rc =
            mosquitto_publish(c.client, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                              payload.data(), qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            std::lock_guard lock(c.mutex);
            --c.unacknowledged;  // no on_publish will come for it
        }
        check(rc, "publish");
    }

    void drain(int i) override {
        auto& c = *connections_[i];
        std::unique_lock lock(c.mutex);
        c.changed.wait(lock, [&] { return c.unacknowledged == 0; });
    }

    void disconnect() override {
        for (auto& c : connections_) mosquitto_disconnect(c->client);
        for (auto& c : connections_) {
            mosquitto_loop_stop(c->client, false);
            mosquitto_destroy(c->client);
        }
        connections_.clear();
    }

  private:
    static void subscribe(Connection& c, const std::string& filter, int qos) {
        check(mosquitto_subscribe(c.client, nullptr, filter.c_str(), qos), "subscribe");
        std::unique_lock lock(c.mutex);
        c.changed.wait(lock, [&] { return c.subscribed; });
    }

    std::vector<std::unique_ptr<Connection>> connections_;
    int window_ = 1;
};

}  // namespace

std::unique_ptr<Fleet> make_mosquitto_fleet() {
    return std::make_unique<MosquittoFleet>();
}

}  // namespace mqttx::bench
