// Collector: a thread-safe record of received messages that tests wait on with a
// deadline (never a fixed sleep).
#pragma once

#include <mqttx/message.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace mqttx::test {

struct Received {
    std::string session;
    std::string topic;
    std::string payload;
    int qos = 0;
    bool retained = false;
    PublishProperties properties;
};

class Collector {
  public:
    // A handler that records every message it is given.
    MessageHandler handler() {
        return [this](const Message& message) { add(message); };
    }

    void add(const Message& message) {
        Received r{std::string(message.session()),
                   std::string(message.topic()),
                   message.payload_string(),
                   message.qos(),
                   message.retained(),
                   message.properties()};
        {
            std::lock_guard lock(mutex_);
            messages_.push_back(std::move(r));
        }
        changed_.notify_all();
    }

    // True when at least `count` messages arrived within `deadline`.
    bool wait_for(std::size_t count,
                  std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, deadline, [&] { return messages_.size() >= count; });
    }

    std::vector<Received> messages() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return messages_.size();
    }
    // How many different payloads arrived (duplicates counted once).
    std::size_t distinct_payloads() const {
        std::lock_guard lock(mutex_);
        std::set<std::string> seen;
        for (const auto& m : messages_) seen.insert(m.payload);
        return seen.size();
    }

  private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Received> messages_;
};

}  // namespace mqttx::test
