// Translation of Paho's return and reason codes into mqttx::Error kinds and text.
#include <gtest/gtest.h>

#include <MQTTAsync.h>

#include "paho_error.hpp"

namespace mqttx::detail {
namespace {

TEST(PahoError, ReturnCodesMapToKinds) {
    EXPECT_EQ(kind_of(MQTTASYNC_DISCONNECTED, 0, ErrorKind::publish), ErrorKind::connection);
    EXPECT_EQ(kind_of(MQTTASYNC_MAX_BUFFERED_MESSAGES, 0, ErrorKind::publish),
              ErrorKind::buffer_full);
    EXPECT_EQ(kind_of(MQTTASYNC_BAD_QOS, 0, ErrorKind::publish), ErrorKind::invalid_qos);
    EXPECT_EQ(kind_of(MQTTASYNC_BAD_UTF8_STRING, 0, ErrorKind::publish), ErrorKind::invalid_topic);
    EXPECT_EQ(kind_of(MQTTASYNC_PERSISTENCE_ERROR, 0, ErrorKind::publish), ErrorKind::storage);
    EXPECT_EQ(kind_of(MQTTASYNC_FAILURE, 0, ErrorKind::publish), ErrorKind::publish);
}

TEST(PahoError, NotAuthorizedMeansAuthenticationOnlyForConnects) {
    EXPECT_EQ(kind_of(0, 0x87, ErrorKind::connection), ErrorKind::authentication);
    EXPECT_EQ(kind_of(0, 0x86, ErrorKind::connection), ErrorKind::authentication);
    EXPECT_EQ(kind_of(5, 0, ErrorKind::connection), ErrorKind::authentication);  // v3 CONNACK
    // A refused SUBSCRIBE stays a subscription error, whatever the reason.
    EXPECT_EQ(kind_of(0, 0x87, ErrorKind::subscription), ErrorKind::subscription);
}

TEST(PahoError, ExceptionKeepsCodesCauseAndExplains) {
    const mqtt::exception paho(MQTTASYNC_OPERATION_INCOMPLETE);
    const auto error = from_paho(paho, ErrorKind::publish, "delivery failed");
    EXPECT_EQ(error.kind(), ErrorKind::publish);
    EXPECT_EQ(error.return_code(), MQTTASYNC_OPERATION_INCOMPLETE);
    EXPECT_EQ(error.reason_code(), 0);
    EXPECT_TRUE(error.cause() != nullptr);
    const std::string what = error.what();
    EXPECT_NE(what.find("delivery failed: "), std::string::npos) << what;
    EXPECT_NE(what.find(mqtt::exception::error_str(MQTTASYNC_OPERATION_INCOMPLETE)),
              std::string::npos)
        << what;
}

TEST(PahoError, FillerReasonCodeIsNotShownAsTheBrokers) {
    const mqtt::exception paho(MQTTASYNC_FAILURE, mqtt::ReasonCode(255), "");
    const auto error = from_paho(paho, ErrorKind::connection, "connect failed");
    EXPECT_EQ(error.reason_code(), 0);
    EXPECT_EQ(std::string(error.what()).find("broker:"), std::string::npos) << error.what();

    const mqtt::exception refused(MQTTASYNC_FAILURE, mqtt::ReasonCode(0x87), "");
    const auto auth = from_paho(refused, ErrorKind::connection, "connect failed");
    EXPECT_EQ(auth.reason_code(), 0x87);
    EXPECT_EQ(auth.kind(), ErrorKind::authentication);
    EXPECT_NE(std::string(auth.what()).find("broker: "), std::string::npos) << auth.what();
}

}  // namespace
}  // namespace mqttx::detail
