#include "router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "logging.hpp"
#include "mqttx/message.hpp"
#include "mqttx/topic.hpp"
#include "session_stats.hpp"

namespace mqttx::detail {
namespace {

using Entries = std::vector<std::shared_ptr<RouteEntry>>;

const MessageHandler noop = [](const Message&) {};

std::shared_ptr<RouteEntry> make_entry(std::string filter, MessageHandler handler = noop,
                                       std::weak_ptr<RouteOwner> owner = {}) {
    return std::make_shared<RouteEntry>(std::move(filter), 1, std::move(handler), std::move(owner));
}

class RouterTest : public ::testing::Test {
  protected:
    std::shared_ptr<RouteEntry> add(std::string filter, MessageHandler handler = noop) {
        auto entry = make_entry(std::move(filter), std::move(handler));
        router_.insert(entry);
        return entry;
    }

    Entries match(std::string_view topic) const {
        Entries out;
        router_.match(topic, out);
        return out;
    }

    // The matched filters, sorted (duplicates kept).
    std::multiset<std::string> filters(std::string_view topic) const {
        std::multiset<std::string> out;
        for (const auto& entry : match(topic)) out.insert(entry->filter());
        return out;
    }

    static std::set<const RouteEntry*> ids(const Entries& entries) {
        std::set<const RouteEntry*> out;
        for (const auto& entry : entries) out.insert(entry.get());
        return out;
    }

    std::shared_ptr<SessionStats> stats_ = std::make_shared<SessionStats>();
    Router router_{stats_, default_logger()};
};

using Filters = std::multiset<std::string>;

// ---------------------------------------------------------------------------------------------
// Matching

TEST_F(RouterTest, EmptyRouterMatchesNothing) {
    EXPECT_TRUE(match("a").empty());
    EXPECT_TRUE(match("$SYS/x").empty());
}

TEST_F(RouterTest, ExactFilter) {
    add("a/b");
    EXPECT_EQ(filters("a/b"), Filters{"a/b"});
    EXPECT_TRUE(match("a").empty());
    EXPECT_TRUE(match("a/b/c").empty());
    EXPECT_TRUE(match("a/bc").empty());
    EXPECT_TRUE(match("A/b").empty());
    EXPECT_TRUE(match("/a/b").empty());
}

TEST_F(RouterTest, PlusMatchesExactlyOneLevel) {
    add("a/+");
    add("+");
    add("+/+");
    EXPECT_EQ(filters("a/b"), (Filters{"+/+", "a/+"}));
    EXPECT_EQ(filters("a/"), (Filters{"+/+", "a/+"}));  // '+' matches an empty level
    EXPECT_EQ(filters("a"), Filters{"+"});
    EXPECT_EQ(filters("/"), Filters{"+/+"});
    EXPECT_TRUE(match("a/b/c").empty());
    EXPECT_EQ(filters("x/y"), Filters{"+/+"});
}

TEST_F(RouterTest, PlusInTheMiddle) {
    add("a/+/c");
    EXPECT_EQ(filters("a/b/c"), Filters{"a/+/c"});
    EXPECT_EQ(filters("a//c"), Filters{"a/+/c"});
    EXPECT_TRUE(match("a/b/d").empty());
    EXPECT_TRUE(match("a/b/c/d").empty());
    EXPECT_TRUE(match("a/c").empty());
}

TEST_F(RouterTest, HashMatchesEverything) {
    add("#");
    for (const char* topic : {"a", "a/b", "a/b/c", "/", "/a", "a/"}) {
        EXPECT_EQ(filters(topic), Filters{"#"}) << topic;
    }
}

TEST_F(RouterTest, HashMatchesItsParentLevel) {
    add("a/#");
    EXPECT_EQ(filters("a"), Filters{"a/#"});
    EXPECT_EQ(filters("a/b"), Filters{"a/#"});
    EXPECT_EQ(filters("a/b/c/d"), Filters{"a/#"});
    EXPECT_EQ(filters("a/"), Filters{"a/#"});
    EXPECT_TRUE(match("ab").empty());
    EXPECT_TRUE(match("b/a").empty());
}

TEST_F(RouterTest, PlusThenHash) {
    add("+/#");
    add("a/+/#");
    EXPECT_EQ(filters("a"), Filters{"+/#"});
    EXPECT_EQ(filters("a/b"), (Filters{"+/#", "a/+/#"}));
    EXPECT_EQ(filters("a/b/c"), (Filters{"+/#", "a/+/#"}));
    EXPECT_EQ(filters("b/b/c"), Filters{"+/#"});
}

TEST_F(RouterTest, DollarTopicsAreNotMatchedByLeadingWildcards) {
    add("#");
    add("+/x");
    add("+");
    add("+/#");
    add("$SYS/#");
    add("$SYS/+");
    add("$SYS/x");
    EXPECT_EQ(filters("$SYS/x"), (Filters{"$SYS/#", "$SYS/+", "$SYS/x"}));
    EXPECT_EQ(filters("$SYS"), Filters{"$SYS/#"});
    EXPECT_TRUE(match("$other/x").empty());
    EXPECT_TRUE(match("$").empty());
    // '$' below the first level is an ordinary character.
    EXPECT_EQ(filters("a/$x"), (Filters{"#", "+/#"}));
    EXPECT_EQ(filters("b/x"), (Filters{"#", "+/#", "+/x"}));
}

TEST_F(RouterTest, SharedSubscriptionMatchesAsItsInnerFilter) {
    add("$share/g/a/+");
    EXPECT_EQ(filters("a/b"), Filters{"$share/g/a/+"});
    EXPECT_TRUE(match("a").empty());
    EXPECT_TRUE(match("a/b/c").empty());
    EXPECT_TRUE(match("$share/g/a/b").empty());
}

TEST_F(RouterTest, SharedLeadingWildcardDoesNotMatchDollarTopics) {
    add("$share/g/#");
    EXPECT_EQ(filters("a/b"), Filters{"$share/g/#"});
    EXPECT_TRUE(match("$SYS/x").empty());
}

TEST_F(RouterTest, TwoRoutesOnTheSameFilterBothMatch) {
    auto first = add("a/b");
    auto second = add("a/b");
    const auto matched = match("a/b");
    ASSERT_EQ(matched.size(), 2u);
    EXPECT_EQ(ids(matched), (std::set<const RouteEntry*>{first.get(), second.get()}));
}

TEST_F(RouterTest, SharedAndPlainOnTheSameInnerFilterBothMatch) {
    auto plain = add("a/+");
    auto shared = add("$share/g/a/+");
    auto other_group = add("$share/h/a/+");
    EXPECT_EQ(ids(match("a/b")),
              (std::set<const RouteEntry*>{plain.get(), shared.get(), other_group.get()}));
}

TEST_F(RouterTest, OverlappingFiltersEachMatchOnce) {
    const std::vector<std::string> all = {"a/b", "a/+", "+/b", "#", "a/#", "+/+", "a/b/#", "+/#"};
    for (const auto& filter : all) add(filter);
    const auto matched = match("a/b");
    EXPECT_EQ(matched.size(), all.size());
    EXPECT_EQ(ids(matched).size(), all.size());  // no entry twice
    EXPECT_EQ(filters("a/b"), Filters(all.begin(), all.end()));
}

TEST_F(RouterTest, MatchAppendsToTheOutput) {
    auto existing = make_entry("zzz");
    add("a");
    Entries out{existing};
    router_.match("a", out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0], existing);
    EXPECT_EQ(out[1]->filter(), "a");
}

TEST_F(RouterTest, EmptyLevels) {
    add("/");
    add("/a");
    add("a//b");
    add("+/+/+");
    EXPECT_EQ(filters("/"), Filters{"/"});
    EXPECT_EQ(filters("/a"), Filters{"/a"});
    EXPECT_EQ(filters("a//b"), (Filters{"+/+/+", "a//b"}));
    EXPECT_EQ(filters("//"), Filters{"+/+/+"});
}

// ---------------------------------------------------------------------------------------------
// Removal

TEST_F(RouterTest, EraseRemovesExactlyOne) {
    auto first = add("a/+");
    auto second = add("a/+");
    auto other = add("a/b");
    EXPECT_TRUE(router_.erase(*first));
    EXPECT_EQ(ids(match("a/b")), (std::set<const RouteEntry*>{second.get(), other.get()}));
    EXPECT_FALSE(router_.erase(*first));  // already gone
    EXPECT_TRUE(router_.erase(*second));
    EXPECT_EQ(ids(match("a/b")), std::set<const RouteEntry*>{other.get()});
    EXPECT_TRUE(router_.erase(*other));
    EXPECT_TRUE(match("a/b").empty());
}

TEST_F(RouterTest, EraseOfAnUnknownEntryIsFalse) {
    add("a/b");
    auto stranger = make_entry("a/b");
    EXPECT_FALSE(router_.erase(*stranger));
    auto elsewhere = make_entry("x/y/z");
    EXPECT_FALSE(router_.erase(*elsewhere));
    auto hash = make_entry("a/#");
    EXPECT_FALSE(router_.erase(*hash));
    auto plus = make_entry("+/b");
    EXPECT_FALSE(router_.erase(*plus));
    EXPECT_EQ(filters("a/b"), Filters{"a/b"});
}

TEST_F(RouterTest, EraseEveryKindOfFilter) {
    std::vector<std::shared_ptr<RouteEntry>> entries;
    for (const char* filter :
         {"#", "+", "a/#", "a/+", "a/b", "$share/g/a/b", "$SYS/#", "/", "a//b"}) {
        entries.push_back(add(filter));
    }
    for (const auto& entry : entries) {
        SCOPED_TRACE(entry->filter());
        EXPECT_TRUE(router_.erase(*entry));
        EXPECT_FALSE(router_.erase(*entry));
    }
    for (const char* topic : {"a", "a/b", "$SYS/x", "/", "a//b", "z"}) {
        EXPECT_TRUE(match(topic).empty()) << topic;
    }
    EXPECT_TRUE(router_.take_all().empty());
}

TEST_F(RouterTest, PruningKeepsTheRoutesThatShareAPath) {
    auto deep = add("a/b/c");
    auto parent = add("a/b");
    auto below = add("a/b/#");
    auto plus = add("a/+/c");
    EXPECT_TRUE(router_.erase(*deep));
    EXPECT_EQ(filters("a/b"), (Filters{"a/b", "a/b/#"}));
    EXPECT_EQ(filters("a/b/c"), (Filters{"a/+/c", "a/b/#"}));
    EXPECT_TRUE(router_.erase(*below));
    EXPECT_EQ(filters("a/b"), Filters{"a/b"});
    EXPECT_EQ(filters("a/b/c"), Filters{"a/+/c"});
    EXPECT_TRUE(router_.erase(*parent));
    EXPECT_TRUE(match("a/b").empty());
    EXPECT_EQ(filters("a/b/c"), Filters{"a/+/c"});
    EXPECT_TRUE(router_.erase(*plus));
    EXPECT_TRUE(match("a/b/c").empty());
    // The pruned paths can be used again.
    auto again = add("a/b/c");
    EXPECT_EQ(ids(match("a/b/c")), std::set<const RouteEntry*>{again.get()});
}

TEST_F(RouterTest, TakeFilterReturnsOnlyExactFilterRoutes) {
    auto p1 = add("a/+");
    auto p2 = add("a/+");
    add("a/b");
    add("a/#");
    add("#");
    add("+/+");
    auto shared = add("$share/g/a/+");
    add("+");

    const auto taken = router_.take_filter("a/+");
    EXPECT_EQ(ids(taken), (std::set<const RouteEntry*>{p1.get(), p2.get()}));
    EXPECT_EQ(taken.size(), 2u);
    EXPECT_EQ(filters("a/b"), (Filters{"#", "$share/g/a/+", "+/+", "a/#", "a/b"}));
    EXPECT_TRUE(router_.take_filter("a/+").empty());

    const auto taken_shared = router_.take_filter("$share/g/a/+");
    EXPECT_EQ(ids(taken_shared), std::set<const RouteEntry*>{shared.get()});
    EXPECT_EQ(filters("a/b"), (Filters{"#", "+/+", "a/#", "a/b"}));
}

TEST_F(RouterTest, TakeFilterOnWildcardFilters) {
    auto hash = add("#");
    add("+");
    auto a_hash = add("a/#");
    add("a");
    auto dollar = add("$SYS/#");
    EXPECT_EQ(ids(router_.take_filter("#")), std::set<const RouteEntry*>{hash.get()});
    EXPECT_EQ(ids(router_.take_filter("a/#")), std::set<const RouteEntry*>{a_hash.get()});
    EXPECT_EQ(ids(router_.take_filter("$SYS/#")), std::set<const RouteEntry*>{dollar.get()});
    EXPECT_EQ(filters("a"), (Filters{"+", "a"}));
    EXPECT_TRUE(match("$SYS/x").empty());
    EXPECT_TRUE(router_.take_filter("nothing/here").empty());
}

TEST_F(RouterTest, TakeAllEmptiesTheRouter) {
    std::set<const RouteEntry*> inserted;
    for (const char* filter : {"#", "+", "a/#", "a/+", "a/b", "a/b", "$share/g/a/b", "$SYS/#"}) {
        inserted.insert(add(filter).get());
    }
    const auto taken = router_.take_all();
    EXPECT_EQ(taken.size(), 8u);
    EXPECT_EQ(ids(taken), inserted);
    for (const char* topic : {"a", "a/b", "$SYS/x", "b"}) EXPECT_TRUE(match(topic).empty());
    EXPECT_TRUE(router_.take_all().empty());
    add("a/b");
    EXPECT_EQ(filters("a/b"), Filters{"a/b"});
}

// ---------------------------------------------------------------------------------------------
// Delivery

TEST_F(RouterTest, DeliverHandsTheMessageToEveryMatchingHandler) {
    struct Seen {
        std::string topic;
        std::string payload;
        int qos = -1;
        bool retained = false;
        std::string session;
    };
    std::vector<Seen> seen;
    auto record = [&seen](const Message& m) {
        seen.push_back({std::string(m.topic()), m.payload_string(), m.qos(), m.retained(),
                        std::string(m.session())});
    };
    auto exact = add("a/b", record);
    auto wildcard = add("a/#", record);
    auto unrelated = add("x", record);

    router_.deliver(Message::make("a/b", std::string_view("he\0llo", 6), 1, true),
                    Router::Pass::all);
    ASSERT_EQ(seen.size(), 2u);
    for (const auto& s : seen) {
        EXPECT_EQ(s.topic, "a/b");
        EXPECT_EQ(s.payload, std::string("he\0llo", 6));
        EXPECT_EQ(s.qos, 1);
        EXPECT_TRUE(s.retained);
        EXPECT_EQ(s.session, "");
    }
    EXPECT_EQ(exact->stats().received, 1u);
    EXPECT_EQ(exact->stats().bytes, 6u);
    EXPECT_EQ(exact->stats().errors, 0u);
    EXPECT_GT(exact->stats().last_message.time_since_epoch().count(), 0);
    EXPECT_EQ(wildcard->stats().received, 1u);
    EXPECT_EQ(unrelated->stats().received, 0u);
    EXPECT_EQ(unrelated->stats().last_message.time_since_epoch().count(), 0);
    EXPECT_EQ(stats_->errors.load(), 0u);
    EXPECT_EQ(stats_->unrouted.load(), 0u);
}

TEST_F(RouterTest, HandlerExceptionsAreCountedAndDeliveryGoesOn) {
    int after = 0;
    auto throws_std = add("t", [](const Message&) { throw std::runtime_error("handler broke"); });
    auto throws_other = add("t", [](const Message&) { throw 42; });
    auto fine = add("t", [&after](const Message&) { ++after; });

    router_.deliver(Message::make("t", "x"), Router::Pass::all);
    router_.deliver(Message::make("t", "yy"), Router::Pass::all);

    EXPECT_EQ(after, 2);
    EXPECT_EQ(stats_->errors.load(), 4u);
    EXPECT_GT(stats_->last_error_ns.load(), 0);
    EXPECT_EQ(throws_std->stats().received, 2u);
    EXPECT_EQ(throws_std->stats().errors, 2u);
    EXPECT_EQ(throws_std->stats().bytes, 3u);
    EXPECT_EQ(throws_other->stats().received, 2u);
    EXPECT_EQ(throws_other->stats().errors, 2u);
    EXPECT_EQ(fine->stats().received, 2u);
    EXPECT_EQ(fine->stats().errors, 0u);
    EXPECT_EQ(stats_->snapshot().errors, 4u);
}

TEST_F(RouterTest, UnroutedCountsMessagesNobodyWanted) {
    add("a/+");
    router_.deliver(Message::make("b/c", "x"), Router::Pass::all);
    router_.deliver(Message::make("a", "x"), Router::Pass::all);
    EXPECT_EQ(stats_->unrouted.load(), 2u);
    router_.deliver(Message::make("a/c", "x"), Router::Pass::all);
    EXPECT_EQ(stats_->unrouted.load(), 2u);
    add("#");
    router_.deliver(Message::make("$SYS/load", "x"),
                    Router::Pass::all);  // '#' does not take '$' topics
    EXPECT_EQ(stats_->unrouted.load(), 3u);
    EXPECT_EQ(stats_->errors.load(), 0u);
}

TEST_F(RouterTest, DeactivatedRouteGetsNothing) {
    int calls = 0;
    auto entry = add("a", [&calls](const Message&) { ++calls; });
    entry->deactivate();
    EXPECT_FALSE(entry->active());
    router_.deliver(Message::make("a", "x"), Router::Pass::all);
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(entry->stats().received, 0u);
    EXPECT_EQ(stats_->errors.load(), 0u);
}

class RecordingOwner final : public RouteOwner {
  public:
    explicit RecordingOwner(Router& router) : router_(router) {}
    void remove_route(RouteEntry& entry) noexcept override {
        ++removed;
        erased = router_.erase(entry);
    }
    int removed = 0;
    bool erased = false;

  private:
    Router& router_;
};

TEST_F(RouterTest, StopTellsTheOwnerOnce) {
    auto owner = std::make_shared<RecordingOwner>(router_);
    auto entry = make_entry("a/+", noop, owner);
    router_.insert(entry);
    EXPECT_TRUE(entry->active());
    entry->stop();
    EXPECT_FALSE(entry->active());
    EXPECT_EQ(owner->removed, 1);
    EXPECT_TRUE(owner->erased);
    EXPECT_TRUE(match("a/b").empty());
    entry->stop();
    EXPECT_EQ(owner->removed, 1);
}

TEST_F(RouterTest, StopWithoutOwnerOnlyDeactivates) {
    auto entry = add("a");
    entry->stop();
    EXPECT_FALSE(entry->active());
    EXPECT_EQ(match("a").size(), 1u);  // nobody removed it from the tree
    router_.deliver(Message::make("a", "x"), Router::Pass::all);
    EXPECT_EQ(entry->stats().received, 0u);
}

TEST_F(RouterTest, RouteExposesFilterAndQos) {
    auto entry = std::make_shared<RouteEntry>("x/#", 2, noop, std::weak_ptr<RouteOwner>{});
    EXPECT_EQ(entry->filter(), "x/#");
    EXPECT_EQ(entry->qos(), 2);
    Route route(entry);
    EXPECT_TRUE(route.active());
    EXPECT_EQ(route.filter(), "x/#");
    route.stop();
    EXPECT_FALSE(entry->active());
}

TEST_F(RouterTest, ConcurrentDeliveryAndChanges) {
    std::atomic<int> delivered{0};
    auto counted = [&delivered](const Message&) { delivered.fetch_add(1); };
    auto stable = add("s/+", counted);
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (int i = 0; i < 2000; ++i) {
            auto entry = make_entry(i % 2 ? "s/#" : "s/" + std::to_string(i % 7), counted);
            router_.insert(entry);
            router_.erase(*entry);
        }
        done = true;
    });
    int sent = 0;
    while (!done.load()) {
        router_.deliver(Message::make("s/3", "x"), Router::Pass::all);
        ++sent;
    }
    writer.join();
    EXPECT_GE(stable->stats().received, static_cast<std::uint64_t>(sent));
    EXPECT_GE(delivered.load(), sent);
    EXPECT_EQ(ids(match("s/3")), std::set<const RouteEntry*>{stable.get()});
}

// ---------------------------------------------------------------------------------------------
// Randomized cross-check against topic::matches

std::string join(const std::vector<std::string>& levels) {
    std::string out;
    for (std::size_t i = 0; i < levels.size(); ++i) {
        if (i > 0) out += '/';
        out += levels[i];
    }
    return out;
}

TEST_F(RouterTest, AgreesWithTopicMatches) {
    std::mt19937 rng(20240607);
    auto pick = [&rng](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    const std::vector<std::string> filter_words = {"a", "b", "c", "", "$SYS", "$x"};
    const std::vector<std::string> topic_words = {"a", "b", "c", "", "$SYS", "$x", "d"};

    std::vector<std::string> filter_texts;
    while (filter_texts.size() < 50) {
        std::vector<std::string> levels;
        const std::size_t depth = 1 + pick(4);
        for (std::size_t i = 0; i < depth; ++i) {
            levels.push_back(pick(4) == 0 ? "+" : filter_words[pick(filter_words.size())]);
        }
        if (pick(4) == 0) levels.back() = "#";
        std::string filter = join(levels);
        if (pick(8) == 0) filter = "$share/g" + std::to_string(pick(2)) + "/" + filter;
        ASSERT_TRUE(topic::check_topic_filter(filter).empty()) << filter;
        filter_texts.push_back(filter);
        if (pick(10) == 0) filter_texts.push_back(filter);  // a second route on the same filter
    }
    for (const char* extra : {"#", "+", "+/#", "$SYS/#", "a/#", "+/+"})
        filter_texts.push_back(extra);

    std::vector<std::string> topics;
    while (topics.size() < 200) {
        std::vector<std::string> levels;
        const std::size_t depth = 1 + pick(5);
        for (std::size_t i = 0; i < depth; ++i)
            levels.push_back(topic_words[pick(topic_words.size())]);
        std::string topic = join(levels);
        if (!topic::check_topic_name(topic).empty()) continue;  // "" is not a topic
        topics.push_back(topic);
    }

    Entries entries;
    for (const auto& filter : filter_texts) entries.push_back(add(filter));

    std::size_t total_matches = 0;
    auto check_all = [&](const Entries& live) {
        for (const auto& topic : topics) {
            std::set<const RouteEntry*> expected;
            for (const auto& entry : live) {
                if (topic::matches(entry->filter(), topic)) expected.insert(entry.get());
            }
            const auto matched = match(topic);
            const auto got = ids(matched);
            EXPECT_EQ(got.size(), matched.size()) << "an entry matched twice for " << topic;
            if (got != expected) {
                std::string detail;
                for (const auto& entry : live) {
                    const bool want = expected.count(entry.get()) > 0;
                    const bool have = got.count(entry.get()) > 0;
                    if (want != have) {
                        detail += "\n  " + entry->filter() + (want ? " missing" : " unexpected");
                    }
                }
                ADD_FAILURE() << "topic '" << topic << "':" << detail;
            }
            total_matches += expected.size();
        }
    };
    check_all(entries);
    EXPECT_GT(total_matches, topics.size());  // the sample really exercises matching

    // Remove a random half, then every route of a few filters, and check again.
    std::shuffle(entries.begin(), entries.end(), rng);
    Entries live(entries.begin() + static_cast<std::ptrdiff_t>(entries.size() / 2), entries.end());
    for (std::size_t i = 0; i < entries.size() / 2; ++i) {
        ASSERT_TRUE(router_.erase(*entries[i])) << entries[i]->filter();
    }
    check_all(live);

    for (int round = 0; round < 5 && !live.empty(); ++round) {
        const std::string filter = live[pick(live.size())]->filter();
        const auto taken = router_.take_filter(filter);
        std::set<const RouteEntry*> expected;
        for (const auto& entry : live) {
            if (entry->filter() == filter) expected.insert(entry.get());
        }
        EXPECT_EQ(ids(taken), expected) << filter;
        std::erase_if(live, [&filter](const auto& entry) { return entry->filter() == filter; });
        check_all(live);
    }

    const auto rest = router_.take_all();
    EXPECT_EQ(ids(rest), ids(live));
    check_all({});
}

}  // namespace
}  // namespace mqttx::detail
