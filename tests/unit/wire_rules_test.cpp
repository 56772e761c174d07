// The classes of input that once passed validation and then broke on the wire or in the
// clock, each tested the same way everywhere it can enter: every string field against
// every string the MQTT rules refuse, every enum field with a value that is no
// enumerator, every user-given timeout at the clock's limits.
#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "channel_queue.hpp"
#include "deadline.hpp"
#include "delivery.hpp"
#include "mqttx/detail/mqtt_string.hpp"
#include "mqttx/forwarder.hpp"
#include "mqttx/options.hpp"
#include "mqttx/session_manager.hpp"
#include "mqttx/topic.hpp"
#include "problems.hpp"
#include "session/backoff.hpp"
#include "wire_checks.hpp"

namespace mqttx {
namespace {

using namespace std::chrono_literals;

const MessageHandler noop = [](const Message&) {};

// The Error `action` throws, or nullopt when it throws none.
std::optional<Error> error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const Error& e) {
        return e;
    }
    return std::nullopt;
}

std::vector<std::string> context_keys(const Error& e) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : e.context()) keys.push_back(key);
    return keys;
}

Options valid_options() {
    return Options{.name = "s", .brokers = {"tcp://127.0.0.1:1883"}};
}

ForwarderConfig valid_forwarder() {
    return ForwarderConfig{.name = "f", .sources = {{"a", {"x/#"}}}, .target = "b"};
}

void check_properties(const PublishProperties& properties) {
    detail::Problems problems;
    detail::check_publish_properties(properties, problems, "properties");
    if (!problems.empty()) problems.raise("invalid publish properties");
}

// ---- strings ----------------------------------------------------------------------------

struct Sample {
    std::string label;
    std::string text;
};

// What MQTT 5 s1.5.4 / 3.1.1 s1.5.3 forbid, and what brokers refuse though the spec
// only says SHOULD NOT (mosquitto closes the connection on every one of these).
std::vector<Sample> refused_strings() {
    return {
        {"Nul", std::string("a\0b", 3)},
        {"Control01", "a\x01"},
        {"Newline", "a\nb"},
        {"Delete", "a\x7f"},
        {"C1Control", "a\xc2\x80"},
        {"NonCharacterFFFE", "a\xef\xbf\xbe"},
        {"NonCharacterFDD0", "a\xef\xb7\x90"},
        {"NonCharacterPlane1", "a\xf0\x9f\xbf\xbf"},
        {"InvalidByte", "a\xff"},
        {"LoneContinuation", "a\x80"},
        {"Truncated", "a\xe2\x82"},
        {"Overlong", "a\xc0\xaf"},
        {"Surrogate", "a\xed\xa0\x80"},
        {"AboveUnicode", "a\xf4\x90\x80\x80"},
        {"TooLong", std::string(65536, 'a')},
    };
}

std::vector<Sample> accepted_strings() {
    return {
        {"Ascii", "plain"},
        {"Latin1", "caf\xc3\xa9"},
        {"Cjk", "\xe6\x97\xa5\xe6\x9c\xac"},
        {"Emoji", "\xf0\x9f\x98\x80"},
        {"LongestAllowed", std::string(65535, 'a')},
    };
}

// A field that carries a UTF-8 Encoded String: `refuse` puts the text in an otherwise
// valid configuration and returns what validation threw.
struct StringField {
    std::string name;  // the field the Error must name
    std::function<std::optional<Error>(const std::string&)> refuse;
};

template <class Set>
std::function<std::optional<Error>(const std::string&)> options_field(Set set) {
    return [set](const std::string& text) {
        auto options = valid_options();
        set(options, text);
        return error_of([&] { validate(options); });
    };
}

template <class Set>
std::function<std::optional<Error>(const std::string&)> forwarder_field(Set set) {
    return [set](const std::string& text) {
        auto config = valid_forwarder();
        set(config, text);
        return error_of([&] { validate(config); });
    };
}

template <class Set>
std::function<std::optional<Error>(const std::string&)> property_field(Set set) {
    return [set](const std::string& text) {
        PublishProperties properties;
        set(properties, text);
        return error_of([&] { check_properties(properties); });
    };
}

std::vector<StringField> string_fields() {
    return {
        {"client_id", options_field([](Options& o, const std::string& s) { o.client_id = s; })},
        {"credentials.username", options_field([](Options& o, const std::string& s) {
             o.credentials = Credentials{.username = s};
         })},
        {"will.topic",
         options_field([](Options& o, const std::string& s) { o.will = Will{.topic = s}; })},
        {"subscriptions[0].filter", options_field([](Options& o, const std::string& s) {
             o.subscriptions.push_back({.filter = s, .handler = noop});
         })},
        {"sources[0].filters", forwarder_field([](ForwarderConfig& c, const std::string& s) {
             c.sources[0].filters = {s};
         })},
        {"topic_filters",
         forwarder_field([](ForwarderConfig& c, const std::string& s) { c.topic_filters = {s}; })},
        {"prefix", forwarder_field([](ForwarderConfig& c, const std::string& s) { c.prefix = s; })},
        {"mappings[0]",  // its `to`
         forwarder_field([](ForwarderConfig& c, const std::string& s) {
             c.mappings = {{"x/#", s}};
         })},
        {"mappings[0]",  // its `from`
         forwarder_field([](ForwarderConfig& c, const std::string& s) {
             c.mappings = {{s, "y"}};
         })},
        {"metadata[0].key", forwarder_field([](ForwarderConfig& c, const std::string& s) {
             c.metadata = {{s, "v"}};
         })},
        {"metadata[0].value", forwarder_field([](ForwarderConfig& c, const std::string& s) {
             c.metadata = {{"k", s}};
         })},
        {"properties.user_properties[0].key",
         property_field([](PublishProperties& p, const std::string& s) {
             p.user_properties = {{s, "v"}};
         })},
        {"properties.user_properties[0].value",
         property_field([](PublishProperties& p, const std::string& s) {
             p.user_properties = {{"k", s}};
         })},
        {"properties.content_type",
         property_field([](PublishProperties& p, const std::string& s) { p.content_type = s; })},
        {"properties.response_topic",
         property_field([](PublishProperties& p, const std::string& s) { p.response_topic = s; })},
    };
}

TEST(WireRules, EveryStringFieldRefusesWhatTheWireRefusesNamingTheField) {
    for (const auto& field : string_fields()) {
        for (const auto& sample : refused_strings()) {
            SCOPED_TRACE(field.name + " <- " + sample.label);
            const auto error = field.refuse(sample.text);
            ASSERT_TRUE(error.has_value()) << "accepted";
            EXPECT_EQ(error->kind(), ErrorKind::configuration);
            EXPECT_EQ(context_keys(*error), std::vector<std::string>{field.name}) << error->what();
            // The message stays one readable line whatever the input held.
            const std::string what = error->what();
            EXPECT_EQ(what.find('\0'), std::string::npos);
            EXPECT_EQ(what.find('\n'), std::string::npos);
            EXPECT_LT(what.size(), 1000u);
        }
    }
}

TEST(WireRules, EveryStringFieldAcceptsWellFormedUnicode) {
    for (const auto& field : string_fields()) {
        for (const auto& sample : accepted_strings()) {
            SCOPED_TRACE(field.name + " <- " + sample.label);
            const auto error = field.refuse(sample.text);
            EXPECT_FALSE(error.has_value()) << error->what();
        }
    }
}

TEST(WireRules, TopicNamesFollowTheSameRulesAsEveryOtherString) {
    for (const auto& sample : refused_strings()) {
        EXPECT_FALSE(topic::check_topic_name(sample.text).empty()) << sample.label;
        EXPECT_FALSE(topic::check_topic_filter(sample.text).empty()) << sample.label;
    }
    for (const auto& sample : accepted_strings()) {
        EXPECT_EQ(topic::check_topic_name(sample.text), "") << sample.label;
    }
}

TEST(WireRules, BinaryFieldsAreBoundByTheirTwoByteLength) {
    const std::string longest(65535, '\xff');  // any bytes at all
    const std::string too_long(65536, 'x');
    auto options = valid_options();
    options.credentials = Credentials{.username = "u", .password = longest};
    options.will = Will{.topic = "t", .payload = longest};
    EXPECT_NO_THROW(validate(options));
    for (auto protocol : {Protocol::v311, Protocol::v5}) {
        options.protocol = protocol;
        options.credentials->password = too_long;
        options.will->payload = too_long;
        const auto error = error_of([&] { validate(options); });
        ASSERT_TRUE(error.has_value());
        EXPECT_EQ(context_keys(*error),
                  (std::vector<std::string>{"credentials.password", "will.payload"}));
        // A password is never repeated, not even in part.
        EXPECT_EQ(std::string(error->what()).find("xxxx"), std::string::npos);
        options.credentials->password = longest;
        options.will->payload = longest;
    }

    EXPECT_NO_THROW(check_properties({.correlation_data = longest}));
    const auto error = error_of([&] { check_properties({.correlation_data = too_long}); });
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(context_keys(*error), std::vector<std::string>{"properties.correlation_data"});
}

TEST(WireRules, ResponseTopicsAndExpiryFollowTheirOwnRules) {
    for (const char* wildcard : {"a/+", "a/#", "+"}) {
        const auto error = error_of([&] { check_properties({.response_topic = wildcard}); });
        ASSERT_TRUE(error.has_value()) << wildcard;
        EXPECT_EQ(context_keys(*error), std::vector<std::string>{"properties.response_topic"});
    }
    for (auto bad : {-1s, std::chrono::seconds(std::int64_t{1} << 32)}) {
        const auto error = error_of([&] { check_properties({.message_expiry = bad}); });
        ASSERT_TRUE(error.has_value()) << bad.count();
        EXPECT_EQ(context_keys(*error), std::vector<std::string>{"properties.message_expiry"});
    }
    EXPECT_NO_THROW(check_properties({.message_expiry = 0s}));
    EXPECT_NO_THROW(check_properties({.message_expiry = std::chrono::seconds(2147483647)}));
    // Paho C 1.3.12 would write 2^31 and more wrongly (0xFFFFFFFF as 255).
    EXPECT_THROW(check_properties({.message_expiry = std::chrono::seconds(2147483648)}),
                 mqttx::Error);
}

TEST(WireRules, QuotedInputIsOneReadableLine) {
    EXPECT_EQ(detail::quoted("a/b"), "'a/b'");
    EXPECT_EQ(detail::quoted("caf\xc3\xa9"), "'caf\xc3\xa9'");  // well-formed UTF-8 stays
    EXPECT_EQ(detail::quoted(std::string("a\0b\n\xff\\", 6)), "'a\\x00b\\x0A\\xFF\\x5C'");
    const auto long_text = detail::quoted(std::string(70000, 'h'));
    EXPECT_LT(long_text.size(), 200u);
    EXPECT_NE(long_text.find("70000 bytes"), std::string::npos);
}

// ---- enums --------------------------------------------------------------------------------

// An enum class converts from any integer; what is not an enumerator must be refused
// where it comes in, before Paho puts it on the wire or a table is indexed with it.
struct EnumCase {
    std::string label;
    std::function<void()> action;
    std::string field;  // the context key; empty when the Error has none
};

template <class Enum>
Enum bogus(int value) {
    return static_cast<Enum>(value);
}

std::vector<EnumCase> enum_cases() {
    auto with = [](auto set) {
        return [set] {
            auto options = valid_options();
            set(options);
            validate(options);
        };
    };
    auto forwarder = [](auto set) {
        return [set] {
            auto config = valid_forwarder();
            set(config);
            validate(config);
        };
    };
    return {
        {"Protocol", with([](Options& o) { o.protocol = bogus<Protocol>(9); }), "protocol"},
        {"BufferOverflow",
         with([](Options& o) { o.performance.overflow = bogus<BufferOverflow>(5); }),
         "performance.overflow"},
        {"StorageType", with([](Options& o) {
             o.client_id = "c";
             o.persistent = true;
             o.clean_session = false;
             o.storage = StorageOptions{.type = bogus<StorageType>(9)};
         }),
         "storage.type"},
        {"TlsVersion", with([](Options& o) {
             o.brokers = {"127.0.0.1:8883"};
             o.tls = TlsConfig{.min_version = bogus<TlsVersion>(9)};
         }),
         "tls.min_version"},
        {"RetainHandling", with([](Options& o) {
             o.protocol = Protocol::v5;
             o.subscriptions.push_back({.filter = "a",
                                        .handler = noop,
                                        .options = {.retain_handling = bogus<RetainHandling>(7)}});
         }),
         "subscriptions[0].options"},
        {"HandlerThread", with([](Options& o) {
             o.subscriptions.push_back({.filter = "a",
                                        .handler = noop,
                                        .options = {.handler_thread = bogus<HandlerThread>(5)}});
         }),
         "subscriptions[0].options"},
        {"ForwardMode", forwarder([](ForwarderConfig& c) { c.mode = bogus<ForwardMode>(5); }),
         "mode"},
        {"ForwarderOverflow",
         forwarder([](ForwarderConfig& c) { c.overflow = bogus<Overflow>(7); }), "overflow"},
        {"ChannelOverflow",
         [] {
             SessionManager manager;
             (void)manager.listen("a/#", 0, ChannelOptions{.overflow = bogus<Overflow>(7)});
         },
         ""},
        {"HandleRetainHandling",
         [] {
             SessionManager manager;
             (void)manager.handle("a/#", noop, 0, {.retain_handling = bogus<RetainHandling>(-1)});
         },
         ""},
        {"EventType",
         [] {
             SessionManager manager;
             (void)manager.on_event(bogus<EventType>(99), [](const Event&) {});
         },
         ""},
    };
}

TEST(WireRules, EveryEnumFieldRefusesAValueThatIsNoEnumerator) {
    for (const auto& c : enum_cases()) {
        SCOPED_TRACE(c.label);
        const auto error = error_of(c.action);
        ASSERT_TRUE(error.has_value()) << "accepted";
        EXPECT_EQ(error->kind(), ErrorKind::configuration) << error->what();
        if (!c.field.empty()) {
            EXPECT_EQ(context_keys(*error), std::vector<std::string>{c.field}) << error->what();
        }
    }
}

TEST(WireRules, AnEmptyEventHandlerIsRefused) {
    SessionManager manager;
    for (auto subscribe :
         std::vector<std::function<void()>>{[&] { (void)manager.on_event(EventType::error, {}); },
                                            [&] { (void)manager.on_any_event({}); }}) {
        const auto error = error_of(subscribe);
        ASSERT_TRUE(error.has_value());
        EXPECT_EQ(error->kind(), ErrorKind::configuration);
    }
}

// ---- timeouts -----------------------------------------------------------------------------

TEST(WireRules, DeadlinesSaturateInsteadOfOverflowing) {
    const auto now = detail::SteadyClock::now();
    const auto never = detail::SteadyClock::time_point::max();
    EXPECT_EQ(detail::deadline_after(std::chrono::milliseconds::max(), now), never);
    EXPECT_EQ(detail::deadline_after(std::chrono::hours(24 * 365 * 300), now), never);
    EXPECT_EQ(detail::deadline_after(std::chrono::seconds::max(), now), never);
    EXPECT_EQ(detail::deadline_after(std::chrono::nanoseconds::max(), now), never);
    EXPECT_EQ(detail::deadline_after(std::chrono::hours::max(), now), never);
    EXPECT_EQ(detail::deadline_after(1500ms, now), now + 1500ms);
    EXPECT_EQ(detail::deadline_after(std::chrono::hours(24 * 365), now),
              now + std::chrono::hours(24 * 365));
    EXPECT_EQ(detail::deadline_after(0ms, now), now);
    EXPECT_EQ(detail::deadline_after(-5ms, now), now);
    EXPECT_EQ(detail::deadline_after(std::chrono::milliseconds::min(), now), now);
}

// Each long wait below would, before, have computed a deadline in the past and given
// up at once. What completes it runs on another thread, so the wait must really wait.
template <class Wait, class Complete>
void expect_long_wait_waits(Wait wait, Complete complete) {
    std::mutex mutex;
    std::condition_variable changed;
    bool waiting = false;
    std::optional<bool> result;
    std::thread waiter([&] {
        {
            std::lock_guard lock(mutex);
            waiting = true;
        }
        changed.notify_all();
        const bool got = wait();
        std::lock_guard lock(mutex);
        result = got;
        changed.notify_all();
    });
    {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return waiting; });
        // The waiter may not have reached its wait yet; whichever comes first, a wait
        // that honours its timeout returns true.
        changed.wait_for(lock, 50ms, [&] { return result.has_value(); });
    }
    complete();
    waiter.join();
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(*result);
}

TEST(WireRules, LongTimeoutsWaitInsteadOfFiringAtOnce) {
    for (auto timeout : {std::chrono::milliseconds::max(),
                         std::chrono::milliseconds(std::chrono::hours(24 * 365 * 300))}) {
        SCOPED_TRACE(timeout.count());
        auto delivery = std::make_shared<detail::Delivery>(
            mqtt::string_ref("t"), mqtt::binary_ref("p"), 1, false, mqtt::properties(), 1);
        expect_long_wait_waits([&] { return delivery->wait_for(timeout); },
                               [&] { delivery->complete(); });

        detail::ChannelQueue queue(ChannelOptions{.capacity = 1});
        expect_long_wait_waits([&] { return queue.pop(timeout).has_value(); },
                               [&] { queue.push(Message::make("t", "p")); });

        // A full channel that blocks: the push waits for room.
        detail::ChannelQueue full(
            ChannelOptions{.capacity = 1, .overflow = Overflow::block, .block_timeout = timeout});
        ASSERT_TRUE(full.push(Message::make("t", "1")));
        expect_long_wait_waits([&] { return full.push(Message::make("t", "2")); },
                               [&] { (void)full.try_pop(); });
    }
}

TEST(WireRules, TimeoutsPahoHoldsInAnIntAreBounded) {
    const auto limit = std::chrono::milliseconds(INT_MAX);
    for (auto timeout : {limit + 1ms, std::chrono::milliseconds::max()}) {
        auto options = valid_options();
        options.connect_timeout = timeout;
        options.disconnect_timeout = timeout;
        const auto error = error_of([&] { validate(options); });
        ASSERT_TRUE(error.has_value());
        EXPECT_EQ(context_keys(*error),
                  (std::vector<std::string>{"connect_timeout", "disconnect_timeout"}));
    }
    auto options = valid_options();
    options.connect_timeout = limit;
    options.disconnect_timeout = limit;
    // Ours to wait: any length is honoured.
    options.write_timeout = std::chrono::milliseconds::max();
    options.reconnect.max = std::chrono::milliseconds::max();
    EXPECT_NO_THROW(validate(options));
}

TEST(WireRules, AnInfiniteReconnectMultiplierIsRefused) {
    for (double multiplier :
         {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
        auto options = valid_options();
        options.reconnect.multiplier = multiplier;
        const auto error = error_of([&] { validate(options); });
        ASSERT_TRUE(error.has_value()) << multiplier;
        EXPECT_EQ(context_keys(*error), std::vector<std::string>{"reconnect.multiplier"});
    }
}

TEST(WireRules, AHugeReconnectMaxGrowsTheDelayInsteadOfWrappingIt) {
    for (double jitter : {0.0, 0.99}) {
        detail::Backoff backoff(ReconnectPolicy{.initial = 1000ms,
                                                .max = std::chrono::milliseconds::max(),
                                                .multiplier = 1000.0,
                                                .jitter = jitter},
                                [] { return 0.999; });
        std::chrono::milliseconds previous{0};
        for (int i = 0; i < 20; ++i) {
            const auto delay = backoff.next();
            EXPECT_GE(delay, previous) << "attempt " << i;  // llround's overflow gave 1 ms
            previous = delay;
        }
        EXPECT_GT(previous, std::chrono::hours(24 * 365 * 1000));
    }
}

}  // namespace
}  // namespace mqttx
