#include "wire_checks.hpp"

#include <cstdint>
#include <limits>

#include "mqttx/detail/mqtt_string.hpp"
#include "mqttx/topic.hpp"

namespace mqttx::detail {

void check_string(Problems& problems, const std::string& field, std::string_view value) {
    if (auto problem = check_mqtt_string(value); !problem.empty()) {
        problems.add(field, std::string(problem));
    }
}

std::string check_subscribe_options(const SubscribeOptions& options, Protocol protocol) {
    if (!is_enumerator(options.retain_handling, RetainHandling::do_not_send)) {
        return "retain_handling is not a RetainHandling";
    }
    if (!is_enumerator(options.handler_thread, HandlerThread::receive_thread)) {
        return "handler_thread is not a HandlerThread";
    }
    if (options.subscription_id > max_subscription_id) {
        return "subscription_id must be 0 (none) to 268435455, got " +
               std::to_string(options.subscription_id);
    }
    Problems problems;
    check_user_properties(options.user_properties, problems, "options");
    if (!problems.empty()) return problems.text();
    const bool v5_only = options.no_local || options.retain_as_published ||
                         options.retain_handling != RetainHandling::send_on_subscribe ||
                         options.subscription_id != 0 || !options.user_properties.empty();
    if (v5_only && protocol != Protocol::v5) {
        return "no_local, retain_as_published, retain_handling, subscription_id and "
               "user_properties need an MQTT 5 session";
    }
    return {};
}

std::size_t variable_byte_integer_size(std::size_t value) noexcept {
    std::size_t bytes = 1;
    while (value >= 128) {
        value /= 128;
        ++bytes;
    }
    return bytes;
}

std::size_t publish_remaining_length(std::size_t topic_bytes, std::size_t payload_bytes, int qos,
                                     std::size_t property_bytes) noexcept {
    // Topic with its length, the packet identifier of QoS 1/2, properties, payload.
    return 2 + topic_bytes + (qos > 0 ? 2 : 0) + property_bytes + payload_bytes;
}

std::size_t packet_size(std::size_t remaining_length) noexcept {
    return 1 + variable_byte_integer_size(remaining_length) + remaining_length;
}

void check_interval(Problems& problems, const std::string& field, std::int64_t seconds) {
    if (seconds < 0 || seconds > max_paho_four_byte) {
        problems.add(field,
                     "must be 0 to 2147483647 seconds (about 68 years; Paho C 1.3.12 "
                     "writes larger values wrongly), got " +
                         std::to_string(seconds));
    }
}

void check_user_properties(const UserProperties& properties, Problems& problems,
                           const std::string& field) {
    for (std::size_t i = 0; i < properties.size(); ++i) {
        const auto& [key, value] = properties[i];
        const auto name = field + ".user_properties[" + std::to_string(i) + "]";
        check_string(problems, name + ".key", key);
        check_string(problems, name + ".value", value);
    }
}

void check_publish_properties(const PublishProperties& properties, Problems& problems,
                              const std::string& field) {
    check_user_properties(properties.user_properties, problems, field);
    if (properties.content_type) {
        check_string(problems, field + ".content_type", *properties.content_type);
    }
    if (properties.response_topic) {
        // A topic name: the string rules, and no wildcards.
        if (auto problem = topic::check_topic_name(*properties.response_topic); !problem.empty()) {
            problems.add(field + ".response_topic", std::string(problem));
        }
    }
    if (properties.correlation_data && properties.correlation_data->size() > max_string_length) {
        problems.add(field + ".correlation_data", "longer than 65535 bytes");
    }
    if (properties.message_expiry) {
        check_interval(problems, field + ".message_expiry", properties.message_expiry->count());
    }
}

}  // namespace mqttx::detail
