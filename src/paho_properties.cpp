#include "paho_properties.hpp"

namespace mqttx::detail {

namespace {

std::string text(const MQTTLenString& s) {
    return {s.data, static_cast<std::size_t>(s.len)};
}

}  // namespace

mqtt::properties to_paho(const PublishProperties& in) {
    mqtt::properties out;
    for (const auto& [key, value] : in.user_properties) {
        out.add({mqtt::property::USER_PROPERTY, key, value});
    }
    if (in.content_type) out.add({mqtt::property::CONTENT_TYPE, *in.content_type});
    if (in.message_expiry) {
        // Up to 2^31 - 1 (checked at publish): see max_paho_four_byte.
        out.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL,
                 static_cast<int32_t>(in.message_expiry->count())});
    }
    if (in.response_topic) out.add({mqtt::property::RESPONSE_TOPIC, *in.response_topic});
    if (in.correlation_data) out.add({mqtt::property::CORRELATION_DATA, *in.correlation_data});
    if (in.payload_is_utf8) {
        out.add({mqtt::property::PAYLOAD_FORMAT_INDICATOR, *in.payload_is_utf8 ? 1 : 0});
    }
    return out;
}

PublishProperties from_paho(const mqtt::properties& in) {
    PublishProperties out;
    const auto& props = in.c_struct();
    for (int i = 0; i < props.count; ++i) {
        const auto& property = props.array[i];
        switch (property.identifier) {
            case MQTTPROPERTY_CODE_USER_PROPERTY:
                out.user_properties.emplace_back(text(property.value.data),
                                                 text(property.value.value));
                break;
            case MQTTPROPERTY_CODE_CONTENT_TYPE:
                out.content_type = text(property.value.data);
                break;
            case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
                out.response_topic = text(property.value.data);
                break;
            case MQTTPROPERTY_CODE_CORRELATION_DATA:
                out.correlation_data = text(property.value.data);
                break;
            case MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL:
                out.message_expiry = std::chrono::seconds(property.value.integer4);
                break;
            case MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR:
                out.payload_is_utf8 = property.value.byte != 0;
                break;
            default:
                break;
        }
    }
    return out;
}

std::vector<std::uint32_t> subscription_ids(const mqtt::properties& in) {
    std::vector<std::uint32_t> ids;
    const auto& props = in.c_struct();
    for (int i = 0; i < props.count; ++i) {
        if (props.array[i].identifier == MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER) {
            ids.push_back(static_cast<std::uint32_t>(props.array[i].value.integer4));
        }
    }
    return ids;
}

// Read from Paho's C array: one-byte properties fill in only their byte of the value.
void read_connack(const mqtt::properties& in, ConnectInfo& info) {
    const auto& props = in.c_struct();
    for (int i = 0; i < props.count; ++i) {
        const auto& property = props.array[i];
        const auto& value = property.value;
        switch (property.identifier) {
            case MQTTPROPERTY_CODE_REASON_STRING:
                info.reason_string = text(value.data);
                break;
            case MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER:
                info.assigned_client_id = text(value.data);
                break;
            case MQTTPROPERTY_CODE_SERVER_KEEP_ALIVE:
                info.server_keep_alive = std::chrono::seconds(value.integer2);
                break;
            case MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL:
                info.session_expiry = std::chrono::seconds(value.integer4);
                break;
            case MQTTPROPERTY_CODE_MAXIMUM_QOS:
                info.maximum_qos = value.byte;
                break;
            case MQTTPROPERTY_CODE_RETAIN_AVAILABLE:
                info.retain_available = value.byte != 0;
                break;
            case MQTTPROPERTY_CODE_WILDCARD_SUBSCRIPTION_AVAILABLE:
                info.wildcard_subscription_available = value.byte != 0;
                break;
            case MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIERS_AVAILABLE:
                info.subscription_identifiers_available = value.byte != 0;
                break;
            case MQTTPROPERTY_CODE_SHARED_SUBSCRIPTION_AVAILABLE:
                info.shared_subscription_available = value.byte != 0;
                break;
            case MQTTPROPERTY_CODE_RECEIVE_MAXIMUM:
                info.receive_maximum = value.integer2;
                break;
            case MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE:
                info.maximum_packet_size = value.integer4;
                break;
            case MQTTPROPERTY_CODE_TOPIC_ALIAS_MAXIMUM:
                info.topic_alias_maximum = value.integer2;
                break;
            case MQTTPROPERTY_CODE_RESPONSE_INFORMATION:
                info.response_information = text(value.data);
                break;
            case MQTTPROPERTY_CODE_SERVER_REFERENCE:
                info.server_reference = text(value.data);
                break;
            case MQTTPROPERTY_CODE_USER_PROPERTY:
                info.user_properties.emplace_back(text(value.data), text(value.value));
                break;
            default:
                break;
        }
    }
}

}  // namespace mqttx::detail
