// SessionManager refuses options it cannot honour, before starting any thread.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

#include <set>
#include <string>

#include "support/error_kind.hpp"

namespace {

using mqttx::ErrorKind;
using mqttx::test::error_kind_of;

TEST(ManagerOptions, ZeroThreadsOrQueueAreRefused) {
    mqttx::ManagerOptions no_threads;
    no_threads.dispatcher_threads = 0;
    EXPECT_EQ(error_kind_of([&] { mqttx::SessionManager manager(no_threads); }),
              ErrorKind::configuration);
    mqttx::ManagerOptions no_queue;
    no_queue.dispatch_queue_size = 0;
    EXPECT_EQ(error_kind_of([&] { mqttx::SessionManager manager(no_queue); }),
              ErrorKind::configuration);
}

TEST(ManagerOptions, ZeroChannelCapacityIsRefused) {
    mqttx::SessionManager manager;
    EXPECT_EQ(error_kind_of([&] { manager.listen("a/#", 0, mqttx::ChannelOptions{0}); }),
              ErrorKind::configuration);
}

TEST(ManagerOptions, UnknownSessionAndClosedManager) {
    mqttx::SessionManager manager;
    EXPECT_EQ(error_kind_of([&] { manager.listen_to("nope", "a/#"); }),
              ErrorKind::session_not_found);
    manager.close();
    EXPECT_EQ(error_kind_of([&] {
                  manager.add_session(mqttx::quick_connect("late", "tcp://127.0.0.1:1").build());
              }),
              ErrorKind::session_closed);
}

TEST(ManagerOptions, DerivedClientIdsKeepTheNameAndNeverRepeat) {
    // Two programs with the same session names must not take each other's place at the
    // broker: each derived id ends in 16 random hex digits.
    std::set<std::string> ids;
    for (int manager_index = 0; manager_index < 2; ++manager_index) {
        mqttx::SessionManager manager;
        for (int i = 0; i < 100; ++i) {
            const auto name = "plant a/" + std::to_string(i);
            const auto& id =
                manager.add_session(mqttx::quick_connect(name, "tcp://127.0.0.1:1").build())
                    ->client_id();
            const auto prefix = "plant_a_" + std::to_string(i) + "-";
            ASSERT_EQ(id.rfind(prefix, 0), 0u) << id;
            const auto suffix = id.substr(prefix.size());
            ASSERT_EQ(suffix.size(), 16u) << id;
            EXPECT_EQ(suffix.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
            ids.insert(suffix);
        }
    }
    EXPECT_EQ(ids.size(), 200u);

    mqttx::SessionManager manager;
    auto given = manager.add_session(
        mqttx::quick_connect("named", "tcp://127.0.0.1:1").client_id("exactly-this").build());
    EXPECT_EQ(given->client_id(), "exactly-this");
}

}  // namespace
