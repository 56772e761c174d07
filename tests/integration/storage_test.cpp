// The Storage contract, run against every backend (Redis: a real redis-server started
// on a free port), then what is particular to Redis: going away, AUTH, addresses.
#include <gtest/gtest.h>
#include <mqttx/storage.hpp>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <set>

#include "support/collector.hpp"
#include "support/error_kind.hpp"
#include "support/mosquitto.hpp"
#include "support/redis.hpp"

namespace {

using namespace std::chrono_literals;
using mqttx::ErrorKind;
using mqttx::test::error_kind_of;

enum class Backend { memory, file, file_nosync, redis };

std::string name_of(const ::testing::TestParamInfo<Backend>& info) {
    switch (info.param) {
        case Backend::memory:
            return "memory";
        case Backend::file:
            return "file";
        case Backend::file_nosync:
            return "file_nosync";
        case Backend::redis:
            return "redis";
    }
    return "unknown";
}

class StorageContract : public ::testing::TestWithParam<Backend> {
  protected:
    void SetUp() override {
        if (GetParam() == Backend::redis) redis_ = std::make_unique<mqttx::test::RedisServer>();
    }
    void TearDown() override { mqttx::test::remove_tree(dir_); }

    std::unique_ptr<mqttx::Storage> make() {
        switch (GetParam()) {
            case Backend::memory:
                return mqttx::make_memory_storage();
            case Backend::file:
            case Backend::file_nosync:
                if (dir_.empty()) dir_ = mqttx::test::make_temp_dir("mqttx-storage-");
                return mqttx::make_file_storage(dir_, GetParam() == Backend::file);
            case Backend::redis: {
                mqttx::StorageOptions options;
                options.type = mqttx::StorageType::redis;
                options.redis_address = redis_->address();
                return mqttx::make_redis_storage(options);
            }
        }
        return nullptr;
    }

    std::string dir_;
    std::unique_ptr<mqttx::test::RedisServer> redis_;
};

TEST_P(StorageContract, PutGetOverwriteRemove) {
    auto storage = make();
    storage->open("client-1");
    EXPECT_EQ(storage->get("k"), std::nullopt);
    storage->put("k", "first");
    EXPECT_EQ(storage->get("k"), "first");
    storage->put("k", "second");
    EXPECT_EQ(storage->get("k"), "second");
    EXPECT_TRUE(storage->contains("k"));
    storage->remove("k");
    EXPECT_EQ(storage->get("k"), std::nullopt);
    EXPECT_FALSE(storage->contains("k"));
    storage->remove("k");  // a missing key is not an error
    const auto m = storage->metrics();
    EXPECT_EQ(m.puts, 2u);
    EXPECT_EQ(m.removes, 2u);
    EXPECT_EQ(m.errors, 0u);
}

TEST_P(StorageContract, ValuesAreBytesAndKeysMayBeAnything) {
    auto storage = make();
    storage->open("client/with:odd chars%");
    const std::string binary("a\0b\xff\n", 5);
    const std::string big(1 << 20, 'x');
    storage->put("s-1", binary);
    storage->put("weird/key:..%20", big);
    storage->put(mqttx::session_state_key, "{\"v\":1}");
    EXPECT_EQ(storage->get("s-1"), binary);
    EXPECT_EQ(storage->get("weird/key:..%20"), big);
    EXPECT_EQ(storage->get(mqttx::session_state_key), "{\"v\":1}");
    const auto keys = storage->keys();
    EXPECT_EQ(
        std::set<std::string>(keys.begin(), keys.end()),
        (std::set<std::string>{"s-1", "weird/key:..%20", std::string(mqttx::session_state_key)}));
}

TEST_P(StorageContract, ClientsAreSeparateAndClearTakesOnlyTheOpenOne) {
    auto a = make();
    auto b = make();
    a->open("alpha");
    b->open("beta");
    a->put("k", "a");
    b->put("k", "b");
    EXPECT_EQ(a->get("k"), "a");
    EXPECT_EQ(b->get("k"), "b");
    a->clear();
    EXPECT_TRUE(a->keys().empty());
    EXPECT_EQ(b->get("k"), "b");
}

TEST_P(StorageContract, WhatWasStoredIsThereAfterReopening) {
    if (GetParam() == Backend::memory)
        GTEST_SKIP() << "memory storage lives as long as the program";
    {
        auto storage = make();
        storage->open("durable");
        storage->put("c-1", "queued");
        storage->close();
    }
    auto again = make();
    again->open("durable");
    EXPECT_EQ(again->get("c-1"), "queued");
}

TEST_P(StorageContract, CallsBeforeOpenFailWithAStorageError) {
    auto storage = make();
    EXPECT_EQ(error_kind_of([&] { storage->put("k", "v"); }), ErrorKind::storage);
    EXPECT_EQ(error_kind_of([&] { storage->open(""); }), ErrorKind::configuration);
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageContract,
                         ::testing::Values(Backend::memory, Backend::file, Backend::file_nosync,
                                           Backend::redis),
                         name_of);

// The file backend's own tests are in file_log_test.cpp.

// ---- redis --------------------------------------------------------------------

mqttx::StorageOptions redis_options(const mqttx::test::RedisServer& redis) {
    mqttx::StorageOptions options;
    options.type = mqttx::StorageType::redis;
    options.redis_address = redis.address();
    return options;
}

TEST(RedisStorage, DownAtStartIsAClearStorageError) {
    mqttx::StorageOptions options;
    options.type = mqttx::StorageType::redis;
    options.redis_address = "127.0.0.1:" + std::to_string(mqttx::test::free_port());
    auto storage = mqttx::make_redis_storage(options);
    try {
        storage->open("c");
        FAIL() << "open succeeded with no Redis";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::storage);
        EXPECT_NE(std::string(e.what()).find(options.redis_address), std::string::npos) << e.what();
    }
}

// Writes are pipelined: one written before the broken connection shows is accepted
// and waits for Redis (not durable meanwhile), then goes again once Redis is back;
// the next write finds the connection broken and fails.
TEST(RedisStorage, KilledMidRunFailsCallsThenRecoversWhenBack) {
    mqttx::test::RedisServer redis;
    auto storage = mqttx::make_redis_storage(redis_options(redis));
    storage->open("c");
    storage->put("before", "1");
    redis.kill();
    std::vector<std::string> accepted;
    std::atomic<int> accepted_durable{0};
    bool refused = false;
    for (int i = 0; i < 20 && !refused; ++i) {
        const auto key = "during-" + std::to_string(i);
        try {
            storage->when_durable(storage->put(key, "2"), [&] { ++accepted_durable; });
            accepted.push_back(key);
        } catch (const mqttx::Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::storage);
            refused = true;
        }
    }
    EXPECT_TRUE(refused) << "20 writes accepted with Redis down";
    EXPECT_EQ(error_kind_of([&] { storage->get("before"); }), ErrorKind::storage);
    EXPECT_EQ(accepted_durable.load(), 0) << "reported durable with Redis down";
    redis.start();  // empty again: this Redis keeps nothing on disk
    storage->put("after", "3");
    EXPECT_EQ(storage->get("after"), "3");
    for (const auto& key : accepted) EXPECT_EQ(storage->get(key), "2") << key;
    EXPECT_TRUE(mqttx::test::wait_until(
        [&] { return accepted_durable.load() == static_cast<int>(accepted.size()); }, 10s));
    EXPECT_GE(storage->metrics().errors, 2u);
}

// put() returns before Redis replies; when_durable() reports each write once Redis has
// it, and a second connection sees every write.
TEST(RedisStorage, PipelinedWritesAreReportedDurableOnceRedisHasThem) {
    mqttx::test::RedisServer redis;
    auto storage = mqttx::make_redis_storage(redis_options(redis));
    storage->open("c");
    constexpr int count = 2000;
    std::atomic<int> durable{0};
    for (int i = 0; i < count; ++i) {
        storage->when_durable(storage->put("k" + std::to_string(i), "v"), [&] { ++durable; });
        if (i % 2 == 1) storage->remove("k" + std::to_string(i));
    }
    ASSERT_TRUE(mqttx::test::wait_until([&] { return durable.load() == count; }, 20s))
        << durable.load() << " of " << count;
    EXPECT_TRUE(
        mqttx::test::wait_until([&] { return storage->metrics().unsynced_records == 0; }, 10s));
    auto observer = mqttx::make_redis_storage(redis_options(redis));
    observer->open("c");
    auto keys = observer->keys();
    EXPECT_EQ(keys.size(), static_cast<std::size_t>(count / 2));
    EXPECT_EQ(observer->get("k0"), "v");
    EXPECT_EQ(observer->get("k1"), std::nullopt);
}

// A removal with no command after it still reaches Redis (seen through a second
// connection): pipelined writes are sent when they are made, not with the next one.
TEST(RedisStorage, ARemovalWithNoCommandAfterItStillReachesRedis) {
    mqttx::test::RedisServer redis;
    auto storage = mqttx::make_redis_storage(redis_options(redis));
    storage->open("c");
    storage->put("kept", "1");
    storage->put("removed", "2");
    storage->remove("removed");
    auto observer = mqttx::make_redis_storage(redis_options(redis));
    observer->open("c");
    EXPECT_TRUE(mqttx::test::wait_until(
        [&] { return observer->keys() == std::vector<std::string>{"kept"}; }, 10s));
    EXPECT_EQ(storage->get("removed"), std::nullopt);
}

// A write Redis refuses (here: out of memory) is not durable: it is sent again until
// Redis takes it, and put() fails meanwhile naming Redis's reason.
TEST(RedisStorage, ARefusedWriteIsNotDurableAndIsSentAgainUntilRedisTakesIt) {
    mqttx::test::RedisServer redis;
    auto storage = mqttx::make_redis_storage(redis_options(redis));
    storage->open("c");
    storage->put("before", "1");
    const auto redis_cli =
        "redis-cli -p " + std::to_string(redis.port()) + " CONFIG SET maxmemory ";
    ASSERT_EQ(std::system((redis_cli + "1 >/dev/null").c_str()), 0);
    std::atomic<bool> durable{false};
    storage->when_durable(storage->put("refused", "2"), [&] { durable = true; });
    ASSERT_TRUE(mqttx::test::wait_until([&] { return storage->metrics().errors >= 1; }, 10s));
    try {
        storage->put("next", "3");
        FAIL() << "a write was accepted while Redis refuses writes";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::storage);
        EXPECT_NE(std::string(e.what()).find("OOM"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(durable.load()) << "reported durable while Redis refused it";
    ASSERT_EQ(std::system((redis_cli + "0 >/dev/null").c_str()), 0);
    EXPECT_TRUE(mqttx::test::wait_until([&] { return durable.load(); }, 10s));
    EXPECT_EQ(storage->get("refused"), "2");
    storage->put("next", "3");
    EXPECT_EQ(storage->get("next"), "3");
}

TEST(RedisStorage, AuthWithUserAndPasswordAndADatabase) {
    mqttx::test::RedisOptions server;
    server.user = "mqttx";
    server.password = "s3cret";
    mqttx::test::RedisServer redis(server);
    auto options = redis_options(redis);
    options.redis_user = "mqttx";
    options.redis_password = "s3cret";
    options.redis_db = 3;
    auto storage = mqttx::make_redis_storage(options);
    storage->open("c");
    storage->put("k", "v");
    EXPECT_EQ(storage->get("k"), "v");

    options.redis_db = 0;  // another database: not there
    auto other = mqttx::make_redis_storage(options);
    other->open("c");
    EXPECT_EQ(other->get("k"), std::nullopt);

    options.redis_password = "wrong";
    auto refused = mqttx::make_redis_storage(options);
    try {
        refused->open("c");
        FAIL() << "a wrong password was accepted";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::storage);
        EXPECT_EQ(std::string(e.what()).find("wrong"), std::string::npos) << "password leaked";
    }
}

TEST(RedisStorage, BadAddressesAreConfigurationErrors) {
    mqttx::StorageOptions options;
    options.type = mqttx::StorageType::redis;
    for (const char* address : {"", "localhost", ":6379", "host:0", "host:99999", "host:12ab"}) {
        options.redis_address = address;
        EXPECT_EQ(error_kind_of([&] { mqttx::make_redis_storage(options); }),
                  ErrorKind::configuration)
            << address;
    }
}

}  // namespace
