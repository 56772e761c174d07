#include "mqttx/topic.hpp"

#include <gtest/gtest.h>

#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "mqttx/error.hpp"

using namespace std::string_view_literals;

namespace mqttx::topic {
namespace {

static_assert(std::forward_iterator<LevelIterator>);

struct Invalid {
    std::string_view input;
    std::string_view problem;  // expected substring of the description
};

// Printable form of a test input for failure messages (inputs contain NUL and bytes >= 0x80).
std::string show(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : s) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7F) {
            out += c;
        } else {
            out += "\\x";
            out += hex[b >> 4];
            out += hex[b & 0xF];
        }
    }
    if (out.size() > 80) out = out.substr(0, 40) + "...(" + std::to_string(s.size()) + " bytes)";
    return out;
}

constexpr std::string_view kEmpty = "empty";
constexpr std::string_view kTooLong = "longer than 65535 bytes";
constexpr std::string_view kWildcard = "contains a wildcard ('+' or '#')";
constexpr std::string_view kNul = "contains U+0000";
constexpr std::string_view kUtf8 = "not well-formed UTF-8";
constexpr std::string_view kControl = "contains a control character";
constexpr std::string_view kNonCharacter = "contains a Unicode non-character";
constexpr std::string_view kHashLast = "'#' must be the last level";
constexpr std::string_view kHashLevel = "'#' must occupy a whole level";
constexpr std::string_view kPlusLevel = "'+' must occupy a whole level";
constexpr std::string_view kShared = "shared subscription needs a group and a filter";
constexpr std::string_view kSharedGroup = "shared subscription group contains a wildcard";

const std::string kMaxLen(65535, 'a');
const std::string kTooLongStr(65536, 'a');

// Valid as names and (having no wildcards) as filters.
const std::vector<std::string_view> kValidNames = {
    "a",
    "/",
    "//",
    "a/b/c",
    "/a",
    "a/",
    " ",
    "sport/tennis/player1",
    "$SYS/broker/load",
    "$share",            // only "$share/" starts a shared subscription
    "caf\xC3\xA9",       // U+00E9, 2 bytes
    "\xE2\x82\xAC",      // U+20AC, 3 bytes
    "\xF0\x9F\x98\x80",  // U+1F600, 4 bytes
    "\xF4\x8F\xBF\xBD",  // U+10FFFD, the highest code point that is a character
    "\xED\x9F\xBF",      // U+D7FF, just below the surrogates
    "\xEE\x80\x80",      // U+E000, just above the surrogates
    "\xEF\xBF\xBD",      // U+FFFD, just below the non-characters U+FFFE/U+FFFF
    "\xEF\xB7\x8F",      // U+FDCF, just below the non-characters U+FDD0..U+FDEF
    "\xEF\xB7\xB0",      // U+FDF0, just above them
    "\xF0\x9F\xBF\xBD",  // U+1FFFD
    "~",                 // U+007E, just below the control characters U+007F..U+009F
    "\xC2\xA0",          // U+00A0, just above them (smallest 2-byte past them)
    "\xE0\xA0\x80",      // U+0800, smallest 3-byte
    "\xF0\x90\x80\x80",  // U+10000, smallest 4-byte
    kMaxLen,
};

// Problems common to names and filters: length, UTF-8, NUL.
const std::vector<Invalid> kInvalidText = {
    {"", kEmpty},
    {kTooLongStr, kTooLong},
    {"a\0b"sv, kNul},
    {"\0"sv, kNul},
    {"a/\0"sv, kNul},
    {"\xC0\xAF", kUtf8},          // overlong '/'
    {"\xC1\xBF", kUtf8},          // overlong
    {"\xC0\x80", kUtf8},          // overlong NUL ("modified UTF-8")
    {"\xE0\x80\xAF", kUtf8},      // overlong 3-byte '/'
    {"\xE0\x9F\xBF", kUtf8},      // overlong 3-byte
    {"\xF0\x80\x80\xAF", kUtf8},  // overlong 4-byte '/'
    {"\xF0\x8F\xBF\xBF", kUtf8},  // overlong 4-byte
    {"\xED\xA0\x80", kUtf8},      // U+D800, a surrogate
    {"\xED\xBF\xBF", kUtf8},      // U+DFFF, a surrogate
    {"\xF4\x90\x80\x80", kUtf8},  // U+110000
    {"\xF5\x80\x80\x80", kUtf8},  // lead byte above F4
    {"\xFF", kUtf8},
    {"\xFE", kUtf8},
    {"\x80", kUtf8},  // lone continuation byte
    {"a\xBF/b", kUtf8},
    {"\xC3", kUtf8},          // truncated 2-byte
    {"a/\xE2\x82", kUtf8},    // truncated 3-byte
    {"\xF0\x9F\x98", kUtf8},  // truncated 4-byte
    {"\xE2\x82/", kUtf8},     // truncated by a '/'
    {"\xC3\x00"sv, kUtf8},    // truncated by a NUL
    {"\xC3\xA9\xA9", kUtf8},  // one continuation byte too many
    // Only "SHOULD NOT" in the spec, but brokers close the connection on them.
    {"a\x01", kControl},
    {"\x1F", kControl},
    {"a\tb", kControl},
    {"a\nb", kControl},
    {"a\x7F", kControl},
    {"\xC2\x80", kControl},               // U+0080
    {"\xC2\x9F", kControl},               // U+009F
    {"\xEF\xBF\xBE", kNonCharacter},      // U+FFFE
    {"\xEF\xBF\xBF", kNonCharacter},      // U+FFFF
    {"\xEF\xB7\x90", kNonCharacter},      // U+FDD0
    {"\xEF\xB7\xAF", kNonCharacter},      // U+FDEF
    {"\xF0\x9F\xBF\xBE", kNonCharacter},  // U+1FFFE
    {"\xF4\x8F\xBF\xBF", kNonCharacter},  // U+10FFFF
};

TEST(TopicName, AcceptsValid) {
    for (const auto name : kValidNames) {
        EXPECT_EQ(check_topic_name(name), ""sv) << show(name);
        EXPECT_NO_THROW(validate_topic_name(name)) << show(name);
    }
}

TEST(TopicName, RejectsInvalid) {
    std::vector<Invalid> cases = kInvalidText;
    cases.insert(cases.end(), {
                                  {"+", kWildcard},
                                  {"#", kWildcard},
                                  {"a/+/b", kWildcard},
                                  {"a/#", kWildcard},
                                  {"a+b", kWildcard},
                                  {"a#", kWildcard},
                                  {"$share/g/a", ""},  // a valid name: "$share" is a level
                              });
    for (const auto& c : cases) {
        if (c.problem.empty()) {
            EXPECT_EQ(check_topic_name(c.input), ""sv) << show(c.input);
            continue;
        }
        const auto problem = check_topic_name(c.input);
        EXPECT_NE(problem.find(c.problem), std::string_view::npos)
            << show(c.input) << " gave \"" << problem << "\", expected \"" << c.problem << '"';
    }
}

TEST(TopicName, LengthLimitIsInBytes) {
    // 21845 three-byte characters = 65535 bytes; one more byte is too long.
    std::string s;
    for (int i = 0; i < 21845; ++i) s += "\xE2\x82\xAC";
    ASSERT_EQ(s.size(), 65535u);
    EXPECT_EQ(check_topic_name(s), ""sv);
    EXPECT_EQ(check_topic_filter(s), ""sv);
    s += 'a';
    EXPECT_EQ(check_topic_name(s), kTooLong);
    EXPECT_EQ(check_topic_filter(s), kTooLong);
}

TEST(TopicFilter, AcceptsValid) {
    std::vector<std::string_view> cases = kValidNames;
    cases.insert(cases.end(), {
                                  "#",
                                  "+",
                                  "/#",
                                  "/+",
                                  "+/",
                                  "+/+",
                                  "+/#",
                                  "a/#",
                                  "a/+/b",
                                  "a/+/+/#",
                                  "+//+",
                                  "//#",
                                  "sport/tennis/+",
                                  "$SYS/#",
                                  "$SYS/+/x",
                                  "\xC3\xA9/+/#",
                                  "$share/g/a",
                                  "$share/g/#",
                                  "$share/g/+/b/#",
                                  "$share/g//",
                                  "$share/g/$SYS/#",
                                  "$share/caf\xC3\xA9/a",
                                  "$share/g/$share/h/x",
                              });
    for (const auto filter : cases) {
        EXPECT_EQ(check_topic_filter(filter), ""sv) << show(filter);
        EXPECT_NO_THROW(validate_topic_filter(filter)) << show(filter);
    }
}

TEST(TopicFilter, RejectsInvalid) {
    std::vector<Invalid> cases = kInvalidText;
    cases.insert(cases.end(), {
                                  {"#/", kHashLast},
                                  {"#/a", kHashLast},
                                  {"a/#/b", kHashLast},
                                  {"a/#/#", kHashLast},
                                  {"a#", kHashLevel},
                                  {"a/#b", kHashLevel},
                                  {"a/b#", kHashLevel},
                                  {"##", kHashLevel},
                                  {"a+", kPlusLevel},
                                  {"+a", kPlusLevel},
                                  {"a/+b/c", kPlusLevel},
                                  {"a/b+", kPlusLevel},
                                  {"++", kPlusLevel},
                                  {"+#", kPlusLevel},
                                  {"$share/", kShared},
                                  {"$share/g", kShared},
                                  {"$share/g/", kShared},
                                  {"$share//a", kShared},
                                  {"$share//", kShared},
                                  {"$share/+/a", kSharedGroup},
                                  {"$share/#/a", kSharedGroup},
                                  {"$share/g+/a", kSharedGroup},
                                  {"$share/g/a#", kHashLevel},
                                  {"$share/g/#/a", kHashLast},
                                  {"$share/g/a+", kPlusLevel},
                                  {"$share/g/a\0"sv, kNul},
                                  {"$share/g\0/a"sv, kNul},
                                  {"$share/\xC3/a", kUtf8},
                                  {"$share/g/\xED\xA0\x80", kUtf8},
                              });
    for (const auto& c : cases) {
        const auto problem = check_topic_filter(c.input);
        EXPECT_NE(problem.find(c.problem), std::string_view::npos)
            << show(c.input) << " gave \"" << problem << "\", expected \"" << c.problem << '"';
    }
}

TEST(Validate, ThrowsErrorWithKindAndTopic) {
    const std::string name = "a/+/b";
    try {
        validate_topic_name(name);
        FAIL() << "validate_topic_name did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::invalid_topic);
        EXPECT_EQ(e.topic(), name);
        EXPECT_EQ(e.message(), "invalid topic name: contains a wildcard ('+' or '#')");
    }

    const std::string filter = "a/#/b";
    try {
        validate_topic_filter(filter);
        FAIL() << "validate_topic_filter did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::invalid_topic);
        EXPECT_EQ(e.topic(), filter);
        EXPECT_EQ(e.message(), "invalid topic filter: '#' must be the last level");
    }

    // Bytes are kept as given, including an embedded NUL.
    const std::string with_nul("a\0b", 3);
    try {
        validate_topic_name(with_nul);
        FAIL() << "validate_topic_name did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::invalid_topic);
        EXPECT_EQ(e.topic(), with_nul);
        EXPECT_NE(e.message().find("contains U+0000"), std::string::npos);
    }

    EXPECT_THROW(validate_topic_name(""), Error);
    EXPECT_THROW(validate_topic_filter(""), Error);
    EXPECT_THROW(validate_topic_filter("$share/g"), Error);
}

struct Match {
    std::string_view filter;
    std::string_view topic;
    bool expected;
};

void expect_matches(const std::vector<Match>& cases) {
    for (const auto& c : cases) {
        // The table must only hold valid inputs: matches() assumes them.
        ASSERT_EQ(check_topic_filter(c.filter), ""sv) << show(c.filter);
        ASSERT_EQ(check_topic_name(c.topic), ""sv) << show(c.topic);
        EXPECT_EQ(matches(c.filter, c.topic), c.expected)
            << "filter \"" << show(c.filter) << "\" topic \"" << show(c.topic) << '"';
    }
}

// The Paho / Eclipse interoperability test fixtures, full truth table.
TEST(Matches, InteropFixtures) {
    constexpr std::string_view topics[] = {"TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"};
    struct Row {
        std::string_view filter;
        bool expected[5];
    };
    constexpr Row rows[] = {
        // filter      TopicA  TopicA/B Topic/C TopicA/C /TopicA
        {"TopicA/+", {false, true, false, true, false}}, {"+/C", {false, false, true, true, false}},
        {"#", {true, true, true, true, true}},           {"/#", {false, false, false, false, true}},
        {"/+", {false, false, false, false, true}},      {"+/+", {false, true, true, true, true}},
        {"TopicA/#", {true, true, false, true, false}},
    };
    std::vector<Match> cases;
    for (const auto& row : rows) {
        for (int i = 0; i < 5; ++i) cases.push_back({row.filter, topics[i], row.expected[i]});
    }
    expect_matches(cases);
}

TEST(Matches, Semantics) {
    expect_matches({
        // Exact.
        {"a", "a", true},
        {"a", "b", false},
        {"a/b", "a/b", true},
        {"a/b", "a/b/c", false},
        {"a/b/c", "a/b", false},
        {"a", "A", false},  // case-sensitive (s4.7.3)
        {"a", "a/", false},
        {"a/", "a/", true},
        {"a/", "a", false},
        {"/", "/", true},
        {" ", " ", true},
        {"ab", "a", false},
        {"a", "ab", false},
        // '+' is exactly one level, possibly empty.
        {"+", "a", true},
        {"+", "a/b", false},
        {"+", "/", false},
        {"+/+", "/", true},
        {"/+", "/", true},
        {"+/", "/", true},
        {"+/", "a/", true},
        {"+/", "a", false},
        {"a/+", "a/", true},
        {"a/+", "a", false},
        {"a/+/c", "a//c", true},
        {"a/+/c", "a/b/c", true},
        {"a/+/c", "a/b/d", false},
        {"a/+/c", "a/b/c/d", false},
        {"+/+/+", "a/b", false},
        {"+//+", "a//b", true},
        // '#' is the parent level and everything below (s4.7.1.2).
        {"a/#", "a", true},
        {"a/#", "a/", true},
        {"a/#", "a/b", true},
        {"a/#", "a/b/c", true},
        {"a/#", "ab", false},
        {"a/#", "b/a", false},
        {"a/b/#", "a", false},
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/#", "sport", true},
        {"#", "/", true},
        {"/#", "/", true},
        {"/#", "a", false},
        {"+/#", "a", true},
        {"+/#", "a/b/c", true},
        {"a/+/#", "a/b", true},
        {"a/+/#", "a", false},
        {"//#", "/", true},
        {"//#", "//", true},
        // Topics starting with '$' (s4.7.2).
        {"#", "$SYS/x", false},
        {"+/x", "$SYS/x", false},
        {"+", "$SYS", false},
        {"+/#", "$SYS/x", false},
        {"$SYS/#", "$SYS/x", true},
        {"$SYS/#", "$SYS", true},
        {"$SYS/+", "$SYS/x", true},
        {"$SYS/x", "$SYS/x", true},
        {"#", "a/$SYS", true},  // only a leading '$' counts
        {"a/+", "a/$x", true},
        {"/#", "/$x", true},
        // UTF-8 compared as bytes.
        {"caf\xC3\xA9/+", "caf\xC3\xA9/x", true},
        {"caf\xC3\xA9", "cafe", false},
    });
}

TEST(Shared, Parse) {
    const auto s = parse_shared("$share/group/a/+/#");
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->group, "group");
    EXPECT_EQ(s->filter, "a/+/#");

    const auto t = parse_shared("$share/g//");
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->group, "g");
    EXPECT_EQ(t->filter, "/");

    const auto nested = parse_shared("$share/g/$share/h/x");
    ASSERT_TRUE(nested.has_value());
    EXPECT_EQ(nested->group, "g");
    EXPECT_EQ(nested->filter, "$share/h/x");

    for (const auto f : {"a/b"sv, "$share"sv, "$share/"sv, "$share/g"sv, "$share/g/"sv,
                         "$share//a"sv, "$share/+/a"sv, "$share/g#/a"sv, "$SHARE/g/a"sv,
                         "$shared/g/a"sv, "x$share/g/a"sv, ""sv}) {
        EXPECT_FALSE(parse_shared(f).has_value()) << show(f);
    }
}

TEST(Shared, MatchesAsInnerFilter) {
    expect_matches({
        {"$share/g/a/+", "a/b", true},
        {"$share/g/a/+", "a/b/c", false},
        {"$share/g/#", "x/y", true},
        {"$share/g/#", "$SYS/x", false},  // the inner filter starts with a wildcard
        {"$share/g/$SYS/#", "$SYS/x", true},
        {"$share/g/a", "$share/g/a", false},
        {"$share/g/g/a", "g/a", true},
        {"$share/g/TopicA/#", "TopicA", true},
        // As a topic name "$share" is an ordinary level; '#' skips it like any '$' topic.
        {"$share/g/$share/#", "$share/g/a", true},
        {"#", "$share/g/a", false},
    });
}

TEST(HasWildcards, Cases) {
    EXPECT_FALSE(has_wildcards("a/b"));
    EXPECT_FALSE(has_wildcards("/"));
    EXPECT_FALSE(has_wildcards("$share/g/a"));
    EXPECT_TRUE(has_wildcards("#"));
    EXPECT_TRUE(has_wildcards("+"));
    EXPECT_TRUE(has_wildcards("a/+/b"));
    EXPECT_TRUE(has_wildcards("a/#"));
    EXPECT_TRUE(has_wildcards("$share/g/a/#"));
    EXPECT_TRUE(has_wildcards("$share/g/+"));
}

std::vector<std::string> collect_iter(std::string_view s) {
    std::vector<std::string> out;
    for (const std::string_view level : levels(s)) out.emplace_back(level);
    return out;
}

std::vector<std::string> collect_callback(std::string_view s) {
    std::vector<std::string> out;
    for_each_level(s, [&](std::string_view level) { out.emplace_back(level); });
    return out;
}

TEST(Levels, Split) {
    using V = std::vector<std::string>;
    struct Case {
        std::string_view input;
        V expected;
    };
    const Case cases[] = {
        {"a", V{"a"}},
        {"a/b/c", V{"a", "b", "c"}},
        {"/", V{"", ""}},
        {"//", V{"", "", ""}},
        {"/a", V{"", "a"}},
        {"a/", V{"a", ""}},
        {"a//b", V{"a", "", "b"}},
        {"", V{""}},
        {"$share/g/#", V{"$share", "g", "#"}},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(collect_iter(c.input), c.expected) << show(c.input);
        EXPECT_EQ(collect_callback(c.input), c.expected) << show(c.input);
    }
}

TEST(Levels, IteratorDetails) {
    const std::string_view s = "a/b/c";
    LevelIterator it(s);
    EXPECT_EQ(*it, "a");
    EXPECT_FALSE(it.is_last());
    const LevelIterator copy = it++;
    EXPECT_EQ(*copy, "a");
    EXPECT_EQ(*it, "b");
    ++it;
    EXPECT_EQ(*it, "c");
    EXPECT_TRUE(it.is_last());
    ++it;
    EXPECT_EQ(it, LevelIterator{});
    EXPECT_EQ(std::distance(levels(s).begin(), levels(s).end()), 3);
    // Views point into the input: no copies.
    EXPECT_EQ((*LevelIterator(s)).data(), s.data());
}

TEST(Levels, ForEachStopsEarly) {
    std::vector<std::string> seen;
    const bool completed = for_each_level("a/b/c/d", [&](std::string_view level) {
        seen.emplace_back(level);
        return level != "b";
    });
    EXPECT_FALSE(completed);
    EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(for_each_level("a/b", [](std::string_view) { return true; }));
    EXPECT_TRUE(for_each_level("a/b", [](std::string_view) {}));
}

}  // namespace
}  // namespace mqttx::topic
