// The JSON form of a persistent session's saved state: a round trip keeps every field,
// and a damaged record is refused with a reason, never half-read.
#include <gtest/gtest.h>

#include <stdexcept>

#include "stored_state.hpp"

namespace {

using mqttx::detail::decode_stored_state;
using mqttx::detail::encode;

mqttx::StoredSessionState sample() {
    mqttx::StoredSessionState state;
    state.client_id = "client \"1\"";
    state.session = "séance";
    state.last_connected =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
    state.last_disconnected =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000456));
    mqttx::StoredSubscription shared{"jobs/#", 2, {}};
    shared.options.share_group = "workers";
    shared.options.retain_handling = mqttx::RetainHandling::do_not_send;
    mqttx::StoredSubscription local{"a/+/b", 1, {}};
    local.options.no_local = true;
    local.options.retain_as_published = true;
    local.options.subscription_id = 268'435'455;
    local.options.user_properties = {{"k", "v"}, {"k", "w"}};
    state.subscriptions = {shared, local, {"plain", 0, {}}};
    return state;
}

TEST(StoredState, RoundTripKeepsEveryField) {
    const auto state = sample();
    const auto back = decode_stored_state(encode(state));
    EXPECT_EQ(back.version, 1);
    EXPECT_EQ(back.client_id, state.client_id);
    EXPECT_EQ(back.session, state.session);
    EXPECT_EQ(back.last_connected, state.last_connected);
    EXPECT_EQ(back.last_disconnected, state.last_disconnected);
    ASSERT_EQ(back.subscriptions.size(), 3u);
    EXPECT_EQ(back.subscriptions[0].filter, "jobs/#");
    EXPECT_EQ(back.subscriptions[0].qos, 2);
    EXPECT_EQ(back.subscriptions[0].options.share_group, "workers");
    EXPECT_EQ(back.subscriptions[0].options.retain_handling, mqttx::RetainHandling::do_not_send);
    EXPECT_TRUE(back.subscriptions[1].options.no_local);
    EXPECT_TRUE(back.subscriptions[1].options.retain_as_published);
    EXPECT_EQ(back.subscriptions[1].options.subscription_id, 268'435'455u);
    EXPECT_EQ(back.subscriptions[1].options.user_properties,
              (mqttx::UserProperties{{"k", "v"}, {"k", "w"}}));
    EXPECT_EQ(back.subscriptions[0].options.subscription_id, 0u);
    EXPECT_EQ(back.subscriptions[2].qos, 0);
    EXPECT_FALSE(back.subscriptions[2].options.no_local);
}

std::string reason(const std::string& text) {
    try {
        decode_stored_state(text);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "accepted";
}

TEST(StoredState, DamagedRecordsAreRefusedWithTheReason) {
    auto valid = encode(sample());
    EXPECT_EQ(reason(""), "not a JSON object");
    EXPECT_EQ(reason(valid.substr(0, valid.size() / 2)), "not a JSON object");
    EXPECT_EQ(reason("[1,2]"), "not a JSON object");
    EXPECT_NE(reason(R"({"version":2})").find("version 2"), std::string::npos);
    EXPECT_EQ(reason(R"({"version":1})"), "no field \"client_id\"");
    EXPECT_EQ(reason(R"({"version":"1"})"), "field \"version\" has the wrong type");
    auto bad_qos = valid;
    bad_qos.replace(bad_qos.find("\"qos\":2"), 7, "\"qos\":3");
    EXPECT_NE(reason(bad_qos).find("QoS 3"), std::string::npos) << reason(bad_qos);
    auto bad_id = valid;
    bad_id.replace(bad_id.find("268435455"), 9, "268435456");
    EXPECT_NE(reason(bad_id).find("subscription_id 268435456"), std::string::npos)
        << reason(bad_id);
    const std::string not_array =
        R"({"version":1,"client_id":"c","session":"s","last_connected_ms":0,)"
        R"("last_disconnected_ms":0,"subscriptions":{}})";
    EXPECT_EQ(reason(not_array), "\"subscriptions\" is not an array");
}

}  // namespace
