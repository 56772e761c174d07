#include "session/outbox.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace mqttx::detail {
namespace {

std::shared_ptr<Delivery> message(std::uint64_t sequence) {
    return std::make_shared<Delivery>(mqtt::string_ref("t/" + std::to_string(sequence)),
                                      mqtt::binary_ref("x"), 1, false, mqtt::properties(),
                                      sequence);
}

const std::atomic<bool> ready{true};

// Paho failed the in-flight message: it goes back among the waiting ones.
void requeue(Outbox& outbox, const Delivery* delivery) {
    EXPECT_TRUE(outbox.give_back(delivery, [](const Delivery&) { return true; }).requeued);
}

Outbox::Limits limits(std::size_t window, std::size_t max_pending,
                      BufferOverflow overflow = BufferOverflow::reject, int attempts = 3) {
    return {.window = window,
            .max_pending = max_pending,
            .overflow = overflow,
            .max_publish_attempts = attempts};
}

std::vector<std::uint64_t> sequences(const std::vector<std::shared_ptr<Delivery>>& deliveries) {
    std::vector<std::uint64_t> out;
    for (const auto& d : deliveries) out.push_back(d->sequence());
    return out;
}

TEST(Outbox, SendsAtOnceWhileTheWindowHasRoomThenQueues) {
    Outbox outbox(limits(2, 10));
    auto a = message(0), b = message(1), c = message(2);
    EXPECT_TRUE(outbox.admit(a, true, ready, 7).in_flight);
    EXPECT_TRUE(outbox.admit(b, true, ready, 7).in_flight);
    EXPECT_FALSE(outbox.admit(c, true, ready, 7).in_flight) << "past the window of 2";
    EXPECT_EQ(a->sent_in, 7u);
    EXPECT_EQ(outbox.sizes().in_flight, 2u);
    EXPECT_EQ(outbox.sizes().waiting, 1u);
    EXPECT_EQ(outbox.next(8).delivery, nullptr) << "the window is full";

    EXPECT_EQ(outbox.take(a.get()), a);
    EXPECT_EQ(outbox.take(a.get()), nullptr) << "taken twice";
    auto next = outbox.next(8).delivery;
    ASSERT_EQ(next, c);
    EXPECT_EQ(c->sent_in, 8u) << "stamped with the connection it goes out on";
    EXPECT_EQ(outbox.next(8).delivery, nullptr);
    EXPECT_FALSE(outbox.has_waiting());
}

// Paho's resends of the last run are unacknowledged publishes too: with them the
// broker would see more than the window, and mosquitto loses QoS 2 ones past it.
TEST(Outbox, PahosResendsFromTheLastRunTakeRoomInTheWindowUntilReleased) {
    Outbox outbox(limits(3, 10));
    outbox.hold_for_paho(2);
    auto a = message(0), b = message(1), c = message(2);
    EXPECT_TRUE(outbox.admit(a, true, ready, 1).in_flight) << "one place left beside the two";
    EXPECT_FALSE(outbox.admit(b, true, ready, 1).in_flight);
    EXPECT_FALSE(outbox.admit(c, true, ready, 1).in_flight);
    EXPECT_EQ(outbox.next(1).delivery, nullptr);

    EXPECT_TRUE(outbox.released_by_paho(1));
    EXPECT_EQ(outbox.next(1).delivery, b);
    EXPECT_EQ(outbox.next(1).delivery, nullptr);
    EXPECT_TRUE(outbox.released_by_paho(5)) << "more than held: the rest";
    EXPECT_EQ(outbox.next(1).delivery, c);
    EXPECT_FALSE(outbox.released_by_paho(1)) << "none held any more";
    EXPECT_EQ(outbox.sizes().in_flight, 3u);
}

TEST(Outbox, WaitsWhenItMayNotSendOrOthersWait) {
    Outbox outbox(limits(5, 10));
    auto a = message(0), b = message(1);
    EXPECT_FALSE(outbox.admit(a, false, ready, 1).in_flight) << "cannot hand off: it waits";
    EXPECT_FALSE(outbox.admit(b, true, ready, 1).in_flight) << "may not overtake the waiting one";
    EXPECT_EQ(outbox.next(1).delivery, a);
    EXPECT_EQ(outbox.next(1).delivery, b);
}

TEST(Outbox, WaitsWhileTheSessionIsNotReady) {
    Outbox outbox(limits(5, 10));
    const std::atomic<bool> not_ready{false};
    auto a = message(0);
    EXPECT_FALSE(outbox.admit(a, true, not_ready, 1).in_flight);
    EXPECT_EQ(outbox.sizes().waiting, 1u);
}

TEST(Outbox, AFailureIsGivenBackToTheWaitingOnesOrRemoved) {
    Outbox outbox(limits(5, 10));
    auto retried = message(0), refused = message(1);
    outbox.admit(retried, true, ready, 1);
    outbox.admit(refused, true, ready, 1);
    EXPECT_EQ(outbox.find(refused.get()), refused);
    EXPECT_EQ(outbox.sizes().in_flight, 2u) << "find leaves it in flight";

    auto back = outbox.give_back(refused.get(), [](const Delivery&) { return false; });
    EXPECT_EQ(back.delivery, refused);
    EXPECT_FALSE(back.requeued);
    back = outbox.give_back(retried.get(), [](const Delivery&) { return true; });
    EXPECT_EQ(back.delivery, retried);
    EXPECT_TRUE(back.requeued);
    EXPECT_EQ(outbox.sizes().waiting, 1u);
    EXPECT_EQ(outbox.sizes().in_flight, 0u);

    back = outbox.give_back(retried.get(), [](const Delivery&) { return true; });
    EXPECT_EQ(back.delivery, nullptr) << "not in flight any more";
    EXPECT_EQ(outbox.find(retried.get()), nullptr);
}

TEST(Outbox, OverflowRejectRefusesTheNewMessage) {
    Outbox outbox(limits(1, 2, BufferOverflow::reject));
    for (std::uint64_t i = 0; i < 2; ++i)
        EXPECT_FALSE(outbox.admit(message(i), false, ready, 0).rejected);
    auto refused = outbox.admit(message(2), false, ready, 0);
    EXPECT_TRUE(refused.rejected);
    EXPECT_TRUE(refused.dropped.empty());
    EXPECT_EQ(outbox.sizes().waiting, 2u);
    EXPECT_EQ(sequences(outbox.take_all()), (std::vector<std::uint64_t>{0, 1}));
}

TEST(Outbox, OverflowDropOldestMakesRoomWithTheOldestWaiting) {
    Outbox outbox(limits(1, 2, BufferOverflow::drop_oldest));
    auto first = message(0);
    outbox.admit(first, false, ready, 0);
    outbox.admit(message(1), false, ready, 0);
    auto admitted = outbox.admit(message(2), false, ready, 0);
    EXPECT_FALSE(admitted.rejected);
    EXPECT_EQ(admitted.dropped, std::vector{first});
    EXPECT_EQ(sequences(outbox.take_all()), (std::vector<std::uint64_t>{1, 2}));
}

TEST(Outbox, RequeuedMessagesGoBackInPublishOrder) {
    Outbox outbox(limits(3, 10));
    std::vector<std::shared_ptr<Delivery>> sent;
    for (std::uint64_t i = 0; i < 3; ++i) {
        sent.push_back(message(i));
        outbox.admit(sent.back(), true, ready, 1);
    }
    outbox.admit(message(3), true, ready, 1);  // waits: the window is full
    // A lost connection fails them in any order.
    for (int i : {2, 0, 1}) requeue(outbox, sent[i].get());
    std::vector<std::uint64_t> order;
    while (auto next = outbox.next(2).delivery) order.push_back(next->sequence());
    EXPECT_EQ(order, (std::vector<std::uint64_t>{0, 1, 2}));
    EXPECT_EQ(outbox.sizes().waiting, 1u);
}

TEST(Outbox, FindsTheStoredInFlightMessageByPacketIdentifier) {
    Outbox outbox(limits(2, 10));
    auto a = message(0), b = message(1);
    outbox.admit(a, true, ready, 1);
    outbox.admit(b, true, ready, 1);
    EXPECT_FALSE(outbox.claim(*a, 5));
    EXPECT_FALSE(outbox.claim(*b, 6));
    b->stored = true;
    EXPECT_EQ(outbox.written_by_paho(5), nullptr) << "not stored";
    EXPECT_EQ(outbox.written_by_paho(6), b);
    EXPECT_EQ(a->message_id.load(), 5);
}

// Paho's send thread may store the publish before publish() has returned its packet
// identifier: the claim that follows finds the write.
TEST(Outbox, AWriteBeforeTheIdentifierIsKnownIsFoundByTheClaim) {
    Outbox outbox(limits(3, 10));
    auto a = message(0), b = message(1);
    outbox.admit(a, true, ready, 1);
    outbox.admit(b, true, ready, 1);
    EXPECT_EQ(outbox.written_by_paho(7), nullptr);
    EXPECT_EQ(outbox.written_by_paho(8), nullptr);
    EXPECT_TRUE(outbox.claim(*a, 7));
    EXPECT_FALSE(outbox.claim(*a, 7)) << "claimed once";
    outbox.forgotten_by_paho(8);  // Paho was done with 8 before its claim came
    EXPECT_FALSE(outbox.claim(*b, 8));
    EXPECT_EQ(outbox.written_by_paho(9), nullptr);
    outbox.forget_all_written();  // Paho cleared its records
    EXPECT_FALSE(outbox.claim(*b, 9));
}

TEST(Outbox, TakeAllReturnsInFlightThenWaitingAndEmpties) {
    Outbox outbox(limits(1, 10));
    outbox.admit(message(0), true, ready, 1);
    outbox.admit(message(1), true, ready, 1);
    outbox.admit(message(2), true, ready, 1);
    EXPECT_EQ(sequences(outbox.take_all()), (std::vector<std::uint64_t>{0, 1, 2}));
    EXPECT_EQ(outbox.sizes().in_flight + outbox.sizes().waiting, 0u);
    EXPECT_TRUE(outbox.take_all().empty());
}

TEST(Outbox, PoisonGuardGivesUpTheOldestInFlightAfterMaxAttemptsInARow) {
    Outbox outbox(limits(2, 10, BufferOverflow::reject, 3));
    auto poison = message(0), later = message(1);
    outbox.admit(poison, true, ready, 1);
    outbox.admit(later, true, ready, 1);
    EXPECT_EQ(outbox.connection_lost(1).delivery, nullptr);
    EXPECT_EQ(outbox.connection_lost(2).delivery, nullptr);
    auto given_up = outbox.connection_lost(3);
    ASSERT_EQ(given_up.delivery, poison);
    EXPECT_TRUE(given_up.held_by_paho);
    EXPECT_EQ(outbox.sizes().in_flight, 1u);
    EXPECT_EQ(outbox.take(later.get()), later) << "the one behind it stays";
}

TEST(Outbox, PoisonGuardFindsTheSuspectBackAmongTheWaitingOnes) {
    Outbox outbox(limits(1, 10, BufferOverflow::reject, 2));
    auto poison = message(0);
    // Paho fails it before it reports the lost connection: it is back waiting then.
    outbox.admit(poison, true, ready, 1);
    requeue(outbox, poison.get());
    EXPECT_EQ(outbox.connection_lost(1).delivery, nullptr);
    ASSERT_EQ(outbox.next(2).delivery, poison);
    requeue(outbox, poison.get());
    auto given_up = outbox.connection_lost(2);
    ASSERT_EQ(given_up.delivery, poison);
    EXPECT_FALSE(given_up.held_by_paho);
    EXPECT_EQ(outbox.sizes().waiting, 0u);
}

TEST(Outbox, PoisonGuardCountsOnlyDropsInARowOfTheSameMessage) {
    Outbox outbox(limits(2, 10, BufferOverflow::reject, 2));
    auto a = message(0), b = message(1);
    outbox.admit(a, true, ready, 1);
    EXPECT_EQ(outbox.connection_lost(1).delivery, nullptr);
    outbox.take(a.get());  // confirmed after all
    outbox.admit(b, true, ready, 2);
    EXPECT_EQ(outbox.connection_lost(2).delivery, nullptr) << "a new suspect starts at one";
    outbox.take(b.get());
    EXPECT_EQ(outbox.connection_lost(3).delivery, nullptr) << "nothing in flight: no suspect";
    outbox.admit(b, true, ready, 4);
    EXPECT_EQ(outbox.connection_lost(4).delivery, nullptr) << "the count restarted";
    EXPECT_EQ(outbox.connection_lost(5).delivery, b);
}

TEST(Outbox, PoisonGuardIgnoresWaitingMessagesNotSentOnTheLostConnection) {
    Outbox outbox(limits(1, 10, BufferOverflow::reject, 1));
    auto a = message(0);
    outbox.admit(a, true, ready, 1);
    requeue(outbox, a.get());
    EXPECT_EQ(outbox.connection_lost(2).delivery, nullptr) << "sent on connection 1, not 2";
    EXPECT_EQ(outbox.connection_lost(1).delivery, a);
}

// ---- spilling (persistent sessions) ----------------------------------------------

const std::atomic<bool> offline{false};

std::shared_ptr<Delivery> stored_message(std::uint64_t sequence) {
    auto delivery = message(sequence);
    delivery->stored = true;  // its outbox record is in storage
    return delivery;
}

Outbox::Limits spilling(std::size_t spill_after, std::size_t max_pending = 100,
                        BufferOverflow overflow = BufferOverflow::reject) {
    auto l = limits(1, max_pending, overflow);
    l.spill_after = spill_after;
    return l;
}

// What the session's pump does: hands out the waiting messages in order, loading each
// spilled one (here: made anew, as storage would) when it reaches the front.
std::vector<std::uint64_t> drain(Outbox& outbox, std::size_t* loaded = nullptr) {
    std::vector<std::uint64_t> order;
    for (;;) {
        auto next = outbox.next(1);
        if (next.spilled) {
            EXPECT_TRUE(outbox.unspill(*next.spilled, stored_message(*next.spilled)));
            if (loaded) ++*loaded;
            continue;
        }
        if (!next.delivery) return order;
        order.push_back(next.delivery->sequence());
        outbox.take(next.delivery.get());  // confirmed: the window has room again
    }
}

TEST(OutboxSpill, MessagesOnlyTheOutboxHoldsLeaveMemoryAndComeBackInOrder) {
    Outbox outbox(spilling(3));
    for (std::uint64_t i = 0; i < 10; ++i) {
        outbox.admit(stored_message(i), true, offline, 1);  // the token is let go at once
    }
    const auto sizes = outbox.sizes();
    EXPECT_EQ(sizes.waiting, 10u);
    // Past three waiting, each message but the newest spills.
    EXPECT_EQ(sizes.spilled, 7u);
    EXPECT_EQ(sizes.waiting_bytes, 10 * message(0)->size());
    std::size_t loaded = 0;
    std::vector<std::uint64_t> expected{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    EXPECT_EQ(drain(outbox, &loaded), expected);
    EXPECT_EQ(loaded, 7u);
    EXPECT_EQ(outbox.sizes().waiting, 0u);
    EXPECT_EQ(outbox.sizes().spilled, 0u);
    EXPECT_EQ(outbox.sizes().waiting_bytes, 0u);
}

TEST(OutboxSpill, AHeldTokenAnObserverOrNoStorageRecordKeepsAMessageInMemory) {
    struct Observer : DeliveryObserver {
        void settled(const Error*, std::int64_t) noexcept override {}
    };
    auto observer = std::make_shared<Observer>();
    Outbox outbox(spilling(1));
    auto held = stored_message(1);
    auto observed = std::make_shared<Delivery>(mqtt::string_ref("t/2"), mqtt::binary_ref("x"), 1,
                                               false, mqtt::properties(), 2, observer, 0);
    observed->stored = true;
    auto unstored = message(3);  // QoS 0, or a session without storage
    outbox.admit(stored_message(0), true, offline, 1);
    outbox.admit(held, true, offline, 1);
    outbox.admit(std::move(observed), true, offline, 1);
    outbox.admit(std::move(unstored), true, offline, 1);
    outbox.admit(stored_message(4), true, offline, 1);
    outbox.admit(stored_message(5), true, offline, 1);
    EXPECT_EQ(outbox.sizes().spilled, 2u) << "messages 0 and 4 only";
    std::vector<std::uint64_t> expected{0, 1, 2, 3, 4, 5};
    EXPECT_EQ(drain(outbox), expected);
}

TEST(OutboxSpill, DropOldestDropsSpilledMessagesBySequence) {
    Outbox outbox(spilling(1, 4, BufferOverflow::drop_oldest));
    std::vector<std::uint64_t> dropped;
    for (std::uint64_t i = 0; i < 8; ++i) {
        auto admission = outbox.admit(stored_message(i), true, offline, 1);
        EXPECT_TRUE(admission.dropped.empty());
        dropped.insert(dropped.end(), admission.dropped_spilled.begin(),
                       admission.dropped_spilled.end());
    }
    EXPECT_EQ(dropped, (std::vector<std::uint64_t>{0, 1, 2, 3}));
    EXPECT_EQ(outbox.sizes().waiting, 4u);
    EXPECT_EQ(drain(outbox), (std::vector<std::uint64_t>{4, 5, 6, 7}));
}

TEST(OutboxSpill, TheByteBoundCountsTopicsAndPayloads) {
    const auto size = message(0)->size();
    auto bounded = limits(1, 100);
    bounded.max_pending_bytes = 3 * size;
    Outbox outbox(bounded);
    for (std::uint64_t i = 0; i < 3; ++i) {
        EXPECT_FALSE(outbox.admit(stored_message(i), true, offline, 1).rejected);
    }
    EXPECT_TRUE(outbox.admit(stored_message(3), true, offline, 1).rejected);
    EXPECT_EQ(outbox.sizes().waiting_bytes, 3 * size);

    bounded.overflow = BufferOverflow::drop_oldest;
    Outbox dropping(bounded);
    auto huge = std::make_shared<Delivery>(mqtt::string_ref("t"),
                                           mqtt::binary_ref(std::string(4 * size, 'x')), 1, false,
                                           mqtt::properties(), 9);
    dropping.admit(stored_message(0), true, offline, 1);
    const auto admission = dropping.admit(huge, true, offline, 1);
    EXPECT_TRUE(admission.rejected) << "larger than the bound on its own";
    EXPECT_TRUE(admission.dropped.empty()) << "nothing is dropped for it";
    EXPECT_EQ(dropping.sizes().waiting, 1u);
}

TEST(OutboxSpill, AnUnreadableSpilledMessageLeavesTheOutbox) {
    Outbox outbox(spilling(1));
    for (std::uint64_t i = 0; i < 4; ++i) outbox.admit(stored_message(i), true, offline, 1);
    ASSERT_EQ(outbox.sizes().spilled, 3u);  // all but the newest
    auto next = outbox.next(1);
    ASSERT_EQ(next.spilled, std::optional<std::uint64_t>(0));
    EXPECT_FALSE(outbox.unspill(1, nullptr)) << "not at the front";
    EXPECT_TRUE(outbox.unspill(0, nullptr));
    EXPECT_EQ(outbox.sizes().waiting, 3u);
    EXPECT_EQ(outbox.sizes().spilled, 2u);
    EXPECT_EQ(outbox.next(1).spilled, std::optional<std::uint64_t>(1));
    outbox.take_all();
    EXPECT_EQ(outbox.sizes().waiting_bytes, 0u);
}

}  // namespace
}  // namespace mqttx::detail
