// The raw Paho C++ fleet: async_clients as the Paho examples write them, connected all
// at once, a message callback per client, delivery tokens waited for in a window.
// With `handoff`, the callbacks hand each message to one worker thread through a
// mutex and condition variable queue, the hop people write by hand to keep their
// handlers off Paho's thread (what mqttx's dispatcher does by default).
#include <mqtt/async_client.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "fleet.hpp"

namespace mqttx::bench {
namespace {

// Runs handlers on its own thread, in the order the messages were handed over.
class HandoffQueue {
  public:
    HandoffQueue() : worker_([this] { run(); }) {}
    ~HandoffQueue() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        ready_.notify_one();
        worker_.join();
    }
    void push(const OnMessage* handler, mqtt::const_message_ptr message) {
        {
            std::lock_guard lock(mutex_);
            queue_.emplace_back(handler, std::move(message));
        }
        ready_.notify_one();
    }

  private:
    void run() {
        std::unique_lock lock(mutex_);
        for (;;) {
            ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            auto [handler, message] = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            (*handler)(message->get_payload());
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::pair<const OnMessage*, mqtt::const_message_ptr>> queue_;
    bool stopping_ = false;
    std::thread worker_;  // last: starts once the rest exists
};

class PahoFleet final : public Fleet {
  public:
    explicit PahoFleet(bool handoff)
        : name_(handoff ? "paho-handoff" : "paho"),
          handoff_(handoff ? std::make_unique<HandoffQueue>() : nullptr) {}
    const char* name() const override { return name_; }

    void connect(const std::string& host, int port, int count, int window) override {
        window_ = static_cast<std::size_t>(window);
        const auto uri = "tcp://" + host + ":" + std::to_string(port);
        for (int i = 0; i < count; ++i) {
            clients_.push_back(std::make_unique<mqtt::async_client>(
                uri, "paho-" + std::to_string(i), mqtt::create_options(MQTTVERSION_3_1_1, 100000)));
        }
        handlers_.resize(clients_.size());
        tokens_.resize(clients_.size());
        auto options = mqtt::connect_options_builder()
                           .clean_session(true)
                           .keep_alive_interval(std::chrono::seconds(30))
                           .max_inflight(window)
                           .finalize();
        std::vector<mqtt::token_ptr> connecting;
        for (auto& client : clients_) connecting.push_back(client->connect(options));
        for (auto& token : connecting) token->wait();
    }

    void subscribe(int i, const std::string& filter, int qos, OnMessage on_message) override {
        handlers_[i] = std::move(on_message);
        auto& handler = handlers_[i];
        if (handoff_) {
            clients_[i]->set_message_callback(
                [&handler, &queue = *handoff_](mqtt::const_message_ptr m) {
                    queue.push(&handler, std::move(m));
                });
        } else {
            clients_[i]->set_message_callback(
                [&handler](mqtt::const_message_ptr m) { handler(m->get_payload()); });
        }
        clients_[i]->subscribe(filter, qos)->wait();
    }

    void forward(int from, int to, const std::string& in_prefix, const std::string& out_prefix,
                 int qos) override {
        auto& target = *clients_.at(to);
        clients_.at(from)->set_message_callback(
            [&target, in_prefix, out_prefix, qos](mqtt::const_message_ptr m) {
                try {
                    target.publish(out_prefix + m->get_topic().substr(in_prefix.size()),
                                   m->get_payload_ref(), qos, false);
                } catch (const mqtt::exception&) {
                    // Paho's buffer is full: a hand-written forwarder drops it (counted lost).
                }
            });
        clients_[from]->subscribe(in_prefix + "#", qos)->wait();
    }

    void publish(int i, const std::string& topic, const std::string& payload, int qos) override {
        auto& tokens = tokens_[i];
        if (qos > 0) {
            while (tokens.size() >= window_) {
                tokens.front()->wait();
                tokens.pop_front();
            }
        }
        auto token = clients_[i]->publish(topic, payload.data(), payload.size(), qos, false);
        if (qos > 0) tokens.push_back(std::move(token));
    }

    void drain(int i) override {
        for (auto& token : tokens_[i]) token->wait();
        tokens_[i].clear();
    }

    void disconnect() override {
        std::vector<mqtt::token_ptr> closing;
        for (auto& client : clients_) closing.push_back(client->disconnect());
        for (auto& token : closing) token->wait();
        clients_.clear();
        // A scenario's handlers may use its locals, which go once this returns: the
        // worker runs what is queued and stops first.
        handoff_.reset();
    }

  private:
    const char* name_;
    // In this order so that the clients (whose callbacks push) go first, and the worker
    // (which calls the handlers) stops before the handlers go.
    std::vector<OnMessage> handlers_;
    std::unique_ptr<HandoffQueue> handoff_;
    std::vector<std::unique_ptr<mqtt::async_client>> clients_;
    std::vector<std::deque<mqtt::delivery_token_ptr>> tokens_;
    std::size_t window_ = 1;
};

}  // namespace

std::unique_ptr<Fleet> make_paho_fleet(bool handoff) {
    return std::make_unique<PahoFleet>(handoff);
}

}  // namespace mqttx::bench
