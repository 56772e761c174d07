// SessionManager refuses options it cannot honour, before starting any thread.
#include <gtest/gtest.h>
#include <mqttx/mqttx.hpp>

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

}  // namespace
