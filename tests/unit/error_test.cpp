#include "mqttx/error.hpp"

#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace mqttx {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

TEST(Error, KindAndCode) {
    const Error e(ErrorKind::invalid_qos, "bad qos");
    EXPECT_EQ(e.kind(), ErrorKind::invalid_qos);
    EXPECT_EQ(e.code(), make_error_code(ErrorKind::invalid_qos));
    EXPECT_EQ(e.code().value(), static_cast<int>(ErrorKind::invalid_qos));
    EXPECT_STREQ(e.code().category().name(), "mqttx");
    EXPECT_EQ(&e.code().category(), &error_category());
    EXPECT_EQ(e.code().message(), "invalid_qos");
    EXPECT_EQ(e.message(), "bad qos");
    EXPECT_TRUE(e.session().empty());
    EXPECT_TRUE(e.topic().empty());
    EXPECT_TRUE(e.context().empty());
    EXPECT_EQ(e.cause(), nullptr);
    EXPECT_EQ(e.return_code(), 0);
    EXPECT_EQ(e.reason_code(), 0);
}

TEST(Error, ErrorKindConvertsToErrorCode) {
    const std::error_code code = ErrorKind::timeout;  // is_error_code_enum
    EXPECT_EQ(code, make_error_code(ErrorKind::timeout));
    EXPECT_EQ(code.category(), error_category());
    EXPECT_NE(code, make_error_code(ErrorKind::connection));
}

TEST(Error, WhatIncludesKindAndMessage) {
    const Error e(ErrorKind::publish, "refused by broker");
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "publish")) << what;
    EXPECT_TRUE(contains(what, "refused by broker")) << what;
    EXPECT_TRUE(contains(what, "mqttx")) << what;
}

TEST(Error, WhatIncludesEveryDetail) {
    auto cause = std::make_exception_ptr(std::runtime_error("socket reset by peer"));
    const Error e = Error::connection("connection failed", cause)
                        .with_session("s1")
                        .with_topic("a/b")
                        .with_context("retry_count", 3)
                        .with_context("broker", "tcp://h:1883");
    EXPECT_EQ(e.kind(), ErrorKind::connection);
    EXPECT_EQ(e.session(), "s1");
    EXPECT_EQ(e.topic(), "a/b");
    ASSERT_EQ(e.context().size(), 2u);
    EXPECT_EQ(e.context()[0], (std::pair<std::string, std::string>{"retry_count", "3"}));
    EXPECT_EQ(e.context()[1], (std::pair<std::string, std::string>{"broker", "tcp://h:1883"}));
    EXPECT_EQ(e.cause(), cause);

    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "connection failed")) << what;
    EXPECT_TRUE(contains(what, "session=s1")) << what;
    EXPECT_TRUE(contains(what, "topic=a/b")) << what;
    EXPECT_TRUE(contains(what, "retry_count=3")) << what;
    EXPECT_TRUE(contains(what, "broker=tcp://h:1883")) << what;
    EXPECT_TRUE(contains(what, "socket reset by peer")) << what;
    // The cause comes last, after the details.
    EXPECT_LT(what.find("retry_count=3"), what.find("socket reset by peer")) << what;
}

TEST(Error, WhatIsRebuiltAfterEachWith) {
    Error e(ErrorKind::storage, "write failed");
    EXPECT_FALSE(contains(e.what(), "session="));
    e.with_session("later");
    EXPECT_TRUE(contains(e.what(), "session=later")) << e.what();
    e.with_topic("t/1");
    EXPECT_TRUE(contains(e.what(), "topic=t/1")) << e.what();
    e.with_context("path", "/var/x");
    EXPECT_TRUE(contains(e.what(), "path=/var/x")) << e.what();
    e.with_cause(std::make_exception_ptr(std::runtime_error("disk full")));
    EXPECT_TRUE(contains(e.what(), "disk full")) << e.what();
    e.with_session("renamed");
    EXPECT_TRUE(contains(e.what(), "session=renamed")) << e.what();
    EXPECT_FALSE(contains(e.what(), "session=later")) << e.what();
}

TEST(Error, LvalueWithReturnsTheSameObject) {
    Error e(ErrorKind::internal, "x");
    Error& same = e.with_session("s").with_topic("t").with_context("k", "v").with_codes(1, 2);
    EXPECT_EQ(&same, &e);
    EXPECT_EQ(e.session(), "s");
    EXPECT_EQ(e.topic(), "t");
    EXPECT_EQ(e.return_code(), 1);
    EXPECT_EQ(e.reason_code(), 2);
}

TEST(Error, ArithmeticContextValues) {
    Error e(ErrorKind::internal, "x");
    e.with_context("int", 42).with_context("negative", -7).with_context("size", std::size_t{9});
    ASSERT_EQ(e.context().size(), 3u);
    EXPECT_EQ(e.context()[0].second, "42");
    EXPECT_EQ(e.context()[1].second, "-7");
    EXPECT_EQ(e.context()[2].second, "9");
    e.with_context("zero", 0);  // 0 must not be taken for a null const char*
    EXPECT_EQ(e.context().back().second, "0");
}

TEST(Error, WithCodes) {
    const Error e = Error(ErrorKind::subscription, "refused").with_codes(-3, 0x87);
    EXPECT_EQ(e.return_code(), -3);
    EXPECT_EQ(e.reason_code(), 0x87);
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "return_code=-3")) << what;
    EXPECT_TRUE(contains(what, "reason_code=135")) << what;
}

TEST(Error, ZeroCodesAreNotShown) {
    const Error e = Error(ErrorKind::subscription, "refused").with_codes(0, 0);
    EXPECT_FALSE(contains(e.what(), "return_code")) << e.what();
    EXPECT_FALSE(contains(e.what(), "reason_code")) << e.what();
}

TEST(Error, CauseThatIsNotAStdException) {
    const Error e = Error(ErrorKind::internal, "boom").with_cause(std::make_exception_ptr(42));
    EXPECT_TRUE(contains(e.what(), "unknown cause")) << e.what();
}

TEST(Error, NestedCause) {
    const Error inner = Error::timeout("ack not received").with_topic("x/y");
    const Error outer = Error::connection("gave up", std::make_exception_ptr(inner));
    EXPECT_TRUE(contains(outer.what(), "gave up")) << outer.what();
    EXPECT_TRUE(contains(outer.what(), "ack not received")) << outer.what();
    EXPECT_TRUE(contains(outer.what(), "topic=x/y")) << outer.what();
    try {
        std::rethrow_exception(outer.cause());
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::timeout);
    }
}

TEST(Error, ConnectionWithoutCause) {
    const Error e = Error::connection("lost");
    EXPECT_EQ(e.cause(), nullptr);
    EXPECT_EQ(e.kind(), ErrorKind::connection);
}

TEST(Error, NamedConstructors) {
    EXPECT_EQ(Error::configuration("c").kind(), ErrorKind::configuration);
    EXPECT_EQ(Error::timeout("t").kind(), ErrorKind::timeout);

    const Error closed = Error::session_closed("s1");
    EXPECT_EQ(closed.kind(), ErrorKind::session_closed);
    EXPECT_EQ(closed.session(), "s1");
    EXPECT_TRUE(contains(closed.what(), "s1"));

    const Error missing = Error::session_not_found("s2");
    EXPECT_EQ(missing.kind(), ErrorKind::session_not_found);
    EXPECT_EQ(missing.session(), "s2");

    const Error topic = Error::invalid_topic("bad filter", "a/#/b");
    EXPECT_EQ(topic.kind(), ErrorKind::invalid_topic);
    EXPECT_EQ(topic.topic(), "a/#/b");
    EXPECT_TRUE(contains(topic.what(), "a/#/b"));

    const Error qos = Error::invalid_qos(3);
    EXPECT_EQ(qos.kind(), ErrorKind::invalid_qos);
    ASSERT_EQ(qos.context().size(), 1u);
    EXPECT_EQ(qos.context()[0].first, "qos");
    EXPECT_EQ(qos.context()[0].second, "3");
    EXPECT_TRUE(contains(qos.what(), "qos=3")) << qos.what();
}

TEST(Error, CopyKeepsEverything) {
    const Error original = Error::connection("x", std::make_exception_ptr(std::logic_error("y")))
                               .with_session("s")
                               .with_context("k", "v")
                               .with_codes(5, 6);
    const Error copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
    EXPECT_STREQ(copy.what(), original.what());
    EXPECT_EQ(copy.kind(), original.kind());
    EXPECT_EQ(copy.session(), "s");
    EXPECT_EQ(copy.context(), original.context());
    EXPECT_EQ(copy.cause(), original.cause());
    EXPECT_EQ(copy.return_code(), 5);
    EXPECT_EQ(copy.reason_code(), 6);
}

TEST(Error, IsTemporary) {
    EXPECT_TRUE(is_temporary(Error::connection("lost")));
    EXPECT_TRUE(is_temporary(Error::timeout("slow")));
    EXPECT_TRUE(is_temporary(Error(ErrorKind::buffer_full, "full")));
    EXPECT_FALSE(is_temporary(Error::configuration("bad")));
    EXPECT_FALSE(is_temporary(Error(ErrorKind::authentication, "denied")));
    EXPECT_FALSE(is_temporary(Error::invalid_qos(3)));
    EXPECT_FALSE(is_temporary(Error::session_closed("s")));
    EXPECT_FALSE(is_temporary(std::runtime_error("plain")));
    EXPECT_FALSE(is_temporary(std::system_error(std::make_error_code(std::errc::timed_out))));
}

TEST(Error, IsTemporaryThroughBaseReference) {
    try {
        throw Error::timeout("slow");
    } catch (const std::exception& e) {
        EXPECT_TRUE(is_temporary(e));
        EXPECT_TRUE(is_timeout(e));
    }
}

TEST(Error, IsTimeout) {
    EXPECT_TRUE(is_timeout(Error::timeout("slow")));
    EXPECT_FALSE(is_timeout(Error::connection("lost")));
    EXPECT_FALSE(is_timeout(Error(ErrorKind::buffer_full, "full")));
    EXPECT_FALSE(is_timeout(std::runtime_error("timeout")));
}

TEST(Error, CatchableAsSystemErrorAndStdException) {
    try {
        throw Error::invalid_topic("bad", "a+").with_session("s");
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), make_error_code(ErrorKind::invalid_topic));
        EXPECT_TRUE(contains(e.what(), "bad")) << e.what();
        EXPECT_TRUE(contains(e.what(), "session=s")) << e.what();
    }
    try {
        throw Error::configuration("nope");
    } catch (const std::exception& e) {
        EXPECT_TRUE(contains(e.what(), "nope")) << e.what();
    }
    try {
        throw Error(ErrorKind::tls, "handshake");
    } catch (const std::runtime_error& e) {  // std::system_error derives from runtime_error
        EXPECT_TRUE(contains(e.what(), "handshake")) << e.what();
    }
}

TEST(Error, ToStringNamesEveryKind) {
    const std::vector<std::pair<ErrorKind, std::string>> names = {
        {ErrorKind::configuration, "configuration"},
        {ErrorKind::connection, "connection"},
        {ErrorKind::authentication, "authentication"},
        {ErrorKind::timeout, "timeout"},
        {ErrorKind::session_closed, "session_closed"},
        {ErrorKind::session_not_found, "session_not_found"},
        {ErrorKind::duplicate_session, "duplicate_session"},
        {ErrorKind::invalid_topic, "invalid_topic"},
        {ErrorKind::invalid_qos, "invalid_qos"},
        {ErrorKind::payload_too_large, "payload_too_large"},
        {ErrorKind::publish, "publish"},
        {ErrorKind::subscription, "subscription"},
        {ErrorKind::buffer_full, "buffer_full"},
        {ErrorKind::storage, "storage"},
        {ErrorKind::tls, "tls"},
        {ErrorKind::internal, "internal"},
        {ErrorKind::forwarder_not_found, "forwarder_not_found"},
        {ErrorKind::duplicate_forwarder, "duplicate_forwarder"},
    };
    for (const auto& [kind, name] : names) {
        EXPECT_EQ(to_string(kind), name);
        EXPECT_EQ(make_error_code(kind).message(), name);
        EXPECT_TRUE(contains(Error(kind, "m").what(), name));
    }
    EXPECT_STREQ(to_string(static_cast<ErrorKind>(0)), "unknown");
    EXPECT_STREQ(to_string(static_cast<ErrorKind>(999)), "unknown");
}

}  // namespace
}  // namespace mqttx
