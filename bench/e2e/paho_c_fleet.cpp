// The Paho C fleet: MQTTAsync clients used directly, without the C++ wrapper that both
// mqttx and the raw Paho C++ fleet are built on. It bounds what bypassing Paho C++ on
// the message path could gain. Callbacks run on Paho's threads; the window is counted
// in the publish success and failure callbacks.
#include <MQTTAsync.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "fleet.hpp"

namespace mqttx::bench {
namespace {

struct Connection {
    MQTTAsync client = nullptr;
    OnMessage on_message;
    ForwardRule<Connection> forward;  // S7: what arrives is published on forward.to instead
    std::mutex mutex;
    std::condition_variable changed;
    int connect_result = 1;  // 1: waiting, 0: connected, < 0: failed
    bool subscribed = false;
    int unacknowledged = 0;  // publishes whose callback has not come yet
    bool disconnected = false;
};

void check(int rc, const char* what) {
    if (rc != MQTTASYNC_SUCCESS) {
        throw std::runtime_error(std::string(what) + ": " + MQTTAsync_strerror(rc));
    }
}

template <typename Member, typename Value>
void set_and_notify(void* context, Member member, Value value) {
    auto* c = static_cast<Connection*>(context);
    std::lock_guard lock(c->mutex);
    c->*member = value;
    c->changed.notify_all();
}

void settle_publish(void* context) {
    auto* c = static_cast<Connection*>(context);
    std::lock_guard lock(c->mutex);
    --c->unacknowledged;
    c->changed.notify_all();
}

class PahoCFleet final : public Fleet {
  public:
    ~PahoCFleet() override { disconnect(); }
    const char* name() const override { return "paho-c"; }

    void connect(const std::string& host, int port, int count, int window) override {
        window_ = window;
        const auto uri = "tcp://" + host + ":" + std::to_string(port);
        for (int i = 0; i < count; ++i) {
            auto c = std::make_unique<Connection>();
            MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
            create.MQTTVersion = MQTTVERSION_3_1_1;
            create.maxBufferedMessages = 100000;
            check(MQTTAsync_createWithOptions(&c->client, uri.c_str(),
                                              ("paho-c-" + std::to_string(i)).c_str(),
                                              MQTTCLIENT_PERSISTENCE_NONE, nullptr, &create),
                  "create");
            connections_.push_back(std::move(c));  // disconnect() frees it, also after a throw
            auto& conn = *connections_.back();
            check(MQTTAsync_setCallbacks(conn.client, &conn, nullptr, on_message, nullptr),
                  "set callbacks");
        }
        for (auto& c : connections_) {
            MQTTAsync_connectOptions options = MQTTAsync_connectOptions_initializer;
            options.keepAliveInterval = 30;
            options.cleansession = 1;
            options.maxInflight = window;
            options.context = c.get();
            options.onSuccess = [](void* context, MQTTAsync_successData*) {
                set_and_notify(context, &Connection::connect_result, 0);
            };
            options.onFailure = [](void* context, MQTTAsync_failureData* failure) {
                set_and_notify(context, &Connection::connect_result,
                               failure && failure->code < 0 ? failure->code : -1);
            };
            check(MQTTAsync_connect(c->client, &options), "connect");
        }
        for (auto& c : connections_) {
            std::unique_lock lock(c->mutex);
            if (!c->changed.wait_for(lock, std::chrono::seconds(60),
                                     [&] { return c->connect_result <= 0; }) ||
                c->connect_result != 0) {
                throw std::runtime_error("a Paho C client did not connect");
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
        if (qos > 0) {
            std::unique_lock lock(c.mutex);
            c.changed.wait(lock, [&] { return c.unacknowledged < window_; });
        }
        check(send(c, topic.c_str(), payload.data(), static_cast<int>(payload.size()), qos),
              "publish");
    }

    void drain(int i) override {
        auto& c = *connections_[i];
        std::unique_lock lock(c.mutex);
        c.changed.wait(lock, [&] { return c.unacknowledged == 0; });
    }

    void disconnect() override {
        for (auto& c : connections_) {
            MQTTAsync_disconnectOptions options = MQTTAsync_disconnectOptions_initializer;
            options.context = c.get();
            options.onSuccess = [](void* context, MQTTAsync_successData*) {
                set_and_notify(context, &Connection::disconnected, true);
            };
            options.onFailure = [](void* context, MQTTAsync_failureData*) {
                set_and_notify(context, &Connection::disconnected, true);
            };
            if (MQTTAsync_disconnect(c->client, &options) != MQTTASYNC_SUCCESS) {
                c->disconnected = true;
            }
        }
        for (auto& c : connections_) {
            {
                std::unique_lock lock(c->mutex);
                c->changed.wait_for(lock, std::chrono::seconds(10),
                                    [&] { return c->disconnected; });
            }
            MQTTAsync_destroy(&c->client);
        }
        connections_.clear();
    }

  private:
    static void subscribe(Connection& c, const std::string& filter, int qos) {
        MQTTAsync_responseOptions options = MQTTAsync_responseOptions_initializer;
        options.context = &c;
        options.onSuccess = [](void* context, MQTTAsync_successData*) {
            set_and_notify(context, &Connection::subscribed, true);
        };
        check(MQTTAsync_subscribe(c.client, filter.c_str(), qos, &options), "subscribe");
        std::unique_lock lock(c.mutex);
        c.changed.wait(lock, [&] { return c.subscribed; });
    }

    // Counted in the window until its callback comes. Paho copies the payload.
    static int send(Connection& c, const char* topic, const void* payload, int size, int qos) {
        {
            std::lock_guard lock(c.mutex);
            ++c.unacknowledged;  // before the call: its callback may come first
        }
        MQTTAsync_message message = MQTTAsync_message_initializer;
        message.payload = const_cast<void*>(payload);
        message.payloadlen = size;
        message.qos = qos;
        MQTTAsync_responseOptions options = MQTTAsync_responseOptions_initializer;
        options.context = &c;
        options.onSuccess = [](void* context, MQTTAsync_successData*) { settle_publish(context); };
        options.onFailure = [](void* context, MQTTAsync_failureData*) { settle_publish(context); };
        const int rc = MQTTAsync_sendMessage(c.client, topic, &message, &options);
        if (rc != MQTTASYNC_SUCCESS) {
            std::lock_guard lock(c.mutex);
            --c.unacknowledged;  // no callback will come for it
        }
        return rc;
    }

    static int on_message(void* context, char* topic, int, MQTTAsync_message* message) {
        auto* c = static_cast<Connection*>(context);
        if (c->forward.to) {
            // Not waiting for a window on Paho's thread: Paho buffers it (if full, the
            // message is dropped and counted lost, as a hand-written forwarder does).
            const std::string out = c->forward.out_topic(topic);
            send(*c->forward.to, out.c_str(), message->payload, message->payloadlen,
                 c->forward.qos);
        } else {
            c->on_message(std::string_view(static_cast<const char*>(message->payload),
                                           static_cast<std::size_t>(message->payloadlen)));
        }
        MQTTAsync_freeMessage(&message);
        MQTTAsync_free(topic);
        return 1;
    }

    std::vector<std::unique_ptr<Connection>> connections_;
    int window_ = 1;
};

}  // namespace

std::unique_ptr<Fleet> make_paho_c_fleet() {
    return std::make_unique<PahoCFleet>();
}

}  // namespace mqttx::bench
