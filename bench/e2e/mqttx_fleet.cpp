// The mqttx fleet: one SessionManager, a session per connection, routes for handlers.
#include <mqttx/mqttx.hpp>

#include <deque>
#include <stdexcept>
#include <vector>

#include "fleet.hpp"

namespace mqttx::bench {
namespace {

using namespace std::chrono_literals;

class MqttxFleet final : public Fleet {
  public:
    explicit MqttxFleet(const ManagerOptions& options) : manager_(options) {}
    const char* name() const override { return "mqttx"; }

    void connect(const std::string& host, int port, int count, int window) override {
        window_ = static_cast<std::size_t>(window);
        for (int i = 0; i < count; ++i) {
            PerformanceOptions performance;
            performance.max_inflight = window;
            performance.max_pending = 100000;
            sessions_.push_back(manager_.add_session(
                quick_connect("c" + std::to_string(i), "tcp://" + host + ":" + std::to_string(port))
                    .performance(performance)
                    .build()));
        }
        tokens_.resize(sessions_.size());
        manager_.connect_all();
        manager_.wait_for_all_sessions(std::chrono::milliseconds(60000 + count * 20));
    }

    void subscribe(int i, const std::string& filter, int qos, OnMessage on_message) override {
        routes_.push_back(sessions_.at(i)->subscribe(
            filter, qos,
            [on_message = std::move(on_message)](const Message& m) { on_message(m.payload()); }));
    }

    void forward(int from, int to, const std::string& in_prefix, const std::string& out_prefix,
                 int qos) override {
        manager_.forwarders().add(
            ForwarderBuilder("s7")
                .source(std::string(sessions_.at(from)->name()), {in_prefix + "#"})
                .target(std::string(sessions_.at(to)->name()))
                .map_topic(in_prefix + "#", out_prefix + "{#}")
                .qos(qos)
                .build());
    }

    void publish(int i, const std::string& topic, const std::string& payload, int qos) override {
        auto& tokens = tokens_[i];
        if (qos > 0) {
            while (tokens.size() >= window_) {
                tokens.front().wait();
                tokens.pop_front();
            }
        }
        auto token = sessions_[i]->publish(topic, payload, qos);
        if (qos > 0) tokens.push_back(std::move(token));
    }

    void drain(int i) override {
        for (auto& token : tokens_[i]) token.wait();
        tokens_[i].clear();
    }

    void disconnect() override {
        routes_.clear();
        manager_.close();
    }

  private:
    SessionManager manager_;
    std::vector<std::shared_ptr<Session>> sessions_;
    std::vector<std::deque<DeliveryToken>> tokens_;
    std::vector<Route> routes_;
    std::size_t window_ = 1;
};

}  // namespace

std::unique_ptr<Fleet> make_mqttx_fleet(const ManagerOptions& options) {
    return std::make_unique<MqttxFleet>(options);
}

}  // namespace mqttx::bench
