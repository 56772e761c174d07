// MQTT 5 publish properties: what a publisher may attach and a receiver may read.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mqttx {

using UserProperties = std::vector<std::pair<std::string, std::string>>;

// Only meaningful on an MQTT 5 session; publishing non-empty properties on a
// v3.1.1 session is refused rather than silently dropped.
struct PublishProperties {
    UserProperties user_properties{};
    std::optional<std::string> content_type{};
    std::optional<std::chrono::seconds> message_expiry{};
    std::optional<std::string> response_topic{};
    std::optional<std::string> correlation_data{};  // bytes
    std::optional<bool> payload_is_utf8{};          // payload format indicator

    bool empty() const noexcept {
        return user_properties.empty() && !content_type && !message_expiry && !response_topic &&
               !correlation_data && !payload_is_utf8;
    }
    bool operator==(const PublishProperties&) const = default;
};

}  // namespace mqttx
