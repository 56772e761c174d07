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
        // Up to 2^32 - 1 (checked at publish): Paho takes an int32_t and puts its 32 bits
        // on the wire unsigned, and the conversion keeps the bits.
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

}  // namespace mqttx::detail
