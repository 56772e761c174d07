// HeapOptional behaves as std::optional does where Options' users touch it, copies
// deeply, and costs one pointer when empty (the reason it exists).
#include <gtest/gtest.h>
#include <mqttx/options.hpp>

namespace {

using mqttx::HeapOptional;
using mqttx::TlsConfig;

TEST(HeapOptional, StartsEmptyAndTakesAValue) {
    HeapOptional<TlsConfig> tls;
    EXPECT_FALSE(tls.has_value());
    EXPECT_FALSE(tls);
    EXPECT_THROW((void)tls.value(), std::bad_optional_access);
    EXPECT_EQ(tls.value_or(TlsConfig{.ca_file = "fallback"}).ca_file, "fallback");

    tls = TlsConfig{.ca_file = "ca.pem"};
    ASSERT_TRUE(tls.has_value());
    EXPECT_EQ(tls->ca_file, "ca.pem");
    EXPECT_EQ((*tls).ca_file, "ca.pem");
    EXPECT_EQ(tls.value().ca_file, "ca.pem");
    EXPECT_EQ(tls.value_or(TlsConfig{.ca_file = "fallback"}).ca_file, "ca.pem");

    tls = std::nullopt;
    EXPECT_FALSE(tls.has_value());
}

TEST(HeapOptional, CopiesAreIndependent) {
    HeapOptional<TlsConfig> original = TlsConfig{.ca_file = "a"};
    HeapOptional<TlsConfig> copy = original;
    copy->ca_file = "b";
    EXPECT_EQ(original->ca_file, "a");
    EXPECT_EQ(copy->ca_file, "b");

    HeapOptional<TlsConfig> empty;
    copy = empty;
    EXPECT_FALSE(copy.has_value());
    EXPECT_TRUE(original.has_value());

    copy = original;
    original.reset();
    ASSERT_TRUE(copy.has_value());
    EXPECT_EQ(copy->ca_file, "a");
}

TEST(HeapOptional, TakesWhatStdOptionalTakes) {
    HeapOptional<TlsConfig> tls;
    tls = {.ca_file = "braced.pem"};
    ASSERT_TRUE(tls.has_value());
    EXPECT_EQ(tls->ca_file, "braced.pem");
    EXPECT_TRUE(tls != std::nullopt);

    tls = {};
    EXPECT_TRUE(tls == std::nullopt);

    tls = std::optional<TlsConfig>(TlsConfig{.ca_file = "from-std.pem"});
    ASSERT_TRUE(tls.has_value());
    EXPECT_EQ(tls->ca_file, "from-std.pem");
    tls = std::optional<TlsConfig>();
    EXPECT_FALSE(tls.has_value());

    HeapOptional<mqttx::Credentials> credentials;
    credentials.emplace("user", "secret");
    ASSERT_TRUE(credentials.has_value());
    EXPECT_EQ(credentials->username, "user");
    EXPECT_EQ(credentials->password, "secret");
}

TEST(HeapOptional, MovedFromIsEmptyAndSelfAssignmentKeepsTheValue) {
    HeapOptional<TlsConfig> source = TlsConfig{.ca_file = "a"};
    HeapOptional<TlsConfig> target = std::move(source);
    EXPECT_FALSE(source.has_value());  // NOLINT(bugprone-use-after-move): documented state
    ASSERT_TRUE(target.has_value());
    EXPECT_EQ(target->ca_file, "a");

    auto& alias = target;
    target = alias;
    ASSERT_TRUE(target.has_value());
    EXPECT_EQ(target->ca_file, "a");
}

TEST(HeapOptional, EmplaceMakesTheDefaultValue) {
    HeapOptional<mqttx::StorageOptions> storage;
    storage.emplace().directory = "/var/lib/x";
    ASSERT_TRUE(storage.has_value());
    EXPECT_EQ(storage->directory, "/var/lib/x");
    EXPECT_EQ(storage->redis_prefix, "mqttx:");
}

TEST(HeapOptional, OptionsKeepTheirRarelySetPartsOffTheObject) {
    // Each session holds a copy of its Options: these four were 608 bytes inline.
    EXPECT_EQ(sizeof(HeapOptional<TlsConfig>), sizeof(void*));
    // 328 before in_flight_stall_after, 336 before connect_properties and topic_aliases.
    EXPECT_LE(sizeof(mqttx::Options), 352u);
    const mqttx::Options options{.name = "n", .tls = TlsConfig{.ca_file = "ca.pem"}};
    const mqttx::Options copy = options;
    ASSERT_TRUE(copy.tls.has_value());
    EXPECT_EQ(copy.tls->ca_file, "ca.pem");
    EXPECT_NE(&*copy.tls, &*options.tls);
    EXPECT_FALSE(copy.will.has_value());
}

}  // namespace
