// MQTT topic names and topic filters: checking, matching, shared subscriptions.
//
// Rules follow MQTT 3.1.1 s4.7 and MQTT 5.0 s4.7 / s4.8.2 (shared subscriptions).
// Everything used per message (matching, level splitting) is inline and never
// allocates; only validate_* (which build an exception) live in src/topic.cpp.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <string_view>
#include <type_traits>

#include "mqttx/detail/mqtt_string.hpp"

namespace mqttx::topic {

// Topic names and filters are UTF-8 strings with a 16-bit length prefix (s1.5.3/s1.5.4).
inline constexpr std::size_t max_length = mqttx::detail::max_string_length;

// The prefix of a shared subscription filter, "$share/{group}/{filter}" (5.0 s4.8.2).
inline constexpr std::string_view shared_prefix = "$share/";

namespace detail {

// One pass over the bytes: the string rules of mqtt_string.hpp and the wildcards.
// '/', '+', '#' and NUL are ASCII and never occur inside a multi-byte sequence,
// so looking at their neighbouring bytes is safe.
inline std::string_view check_text(std::string_view s, bool is_filter) noexcept {
    const std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
        const char c = s[i];
        if (static_cast<unsigned char>(c) >= 0x80 || static_cast<unsigned char>(c) < 0x20 ||
            c == 0x7F) {
            const std::size_t len = mqttx::detail::utf8_sequence_length(s, i);
            if (len == 0) return "not well-formed UTF-8";
            if (auto problem = mqttx::detail::check_code_point(s, i, len); !problem.empty()) {
                return problem;
            }
            i += len;
            continue;
        }
        if (c == '+' || c == '#') {
            if (!is_filter) return "contains a wildcard ('+' or '#')";
            const bool starts_level = i == 0 || s[i - 1] == '/';
            const bool ends_level = i + 1 == n || s[i + 1] == '/';
            // s4.7.1.2 / s4.7.1.3: a wildcard is a whole level; '#' is also the last one.
            if (!starts_level || !ends_level) {
                return c == '#' ? "'#' must occupy a whole level" : "'+' must occupy a whole level";
            }
            if (c == '#' && i + 1 != n) return "'#' must be the last level";
        }
        ++i;
    }
    return {};
}

inline constexpr std::string_view shared_malformed =
    "shared subscription needs a group and a filter";

}  // namespace detail

// "$share/{group}/{filter}" split into its parts (MQTT 5.0 s4.8.2).
struct SharedSubscription {
    std::string_view group;
    std::string_view filter;
};

// The parts of a shared subscription filter, or nullopt when `filter` does not
// start with "$share/" or has no non-empty group without wildcards followed by a
// non-empty filter. The inner filter itself is not checked: see check_topic_filter.
// Shared subscriptions are recognised whatever the protocol version, as Mosquitto
// does for 3.1.1 clients too.
inline std::optional<SharedSubscription> parse_shared(std::string_view filter) noexcept {
    if (!filter.starts_with(shared_prefix)) return std::nullopt;
    const std::string_view rest = filter.substr(shared_prefix.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
        return std::nullopt;
    }
    const std::string_view group = rest.substr(0, slash);
    if (group.find_first_of("+#") != std::string_view::npos) return std::nullopt;
    return SharedSubscription{group, rest.substr(slash + 1)};
}

// "" when `topic` is a valid topic name (for PUBLISH), else a short static
// description of the first problem. s4.7.3: at least one byte; s4.7.1: no wildcards.
inline std::string_view check_topic_name(std::string_view topic) noexcept {
    if (topic.empty()) return "empty";
    if (topic.size() > max_length) return "longer than 65535 bytes";
    return detail::check_text(topic, false);
}

// "" when `filter` is a valid topic filter (for SUBSCRIBE/UNSUBSCRIBE), else a
// short static description of the first problem.
inline std::string_view check_topic_filter(std::string_view filter) noexcept {
    if (filter.empty()) return "empty";
    if (filter.size() > max_length) return "longer than 65535 bytes";
    if (!filter.starts_with(shared_prefix)) return detail::check_text(filter, true);

    // s4.8.2: ShareName is at least one character, without '/', '+' or '#', and is
    // followed by '/' and a non-empty topic filter.
    const std::string_view rest = filter.substr(shared_prefix.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
        return detail::shared_malformed;
    }
    const std::string_view group = rest.substr(0, slash);
    if (group.find_first_of("+#") != std::string_view::npos) {
        return "shared subscription group contains a wildcard ('+' or '#')";
    }
    if (const auto problem = detail::check_text(group, false); !problem.empty()) return problem;
    return detail::check_text(rest.substr(slash + 1), true);
}

// Throw mqttx::Error (kind invalid_topic, topic() = the input) unless valid.
void validate_topic_name(std::string_view topic);
void validate_topic_filter(std::string_view filter);

// The group of a shared subscription ("$share/{group}/{filter}", MQTT 5.0 4.8.2):
// non-empty, without '/', '+' or '#'. Returns "" when valid, else the problem.
inline std::string_view check_share_group(std::string_view group) noexcept {
    if (group.empty()) return "empty share group";
    if (group.find_first_of("/+#") != std::string_view::npos) {
        return "share group contains '/', '+' or '#'";
    }
    return detail::check_text(group, false);  // UTF-8, no U+0000
}

// True when `filter` contains '+' or '#' (in its inner filter, for a shared one).
inline bool has_wildcards(std::string_view filter) noexcept {
    if (const auto shared = parse_shared(filter)) filter = shared->filter;
    return filter.find_first_of("+#") != std::string_view::npos;
}

// Whether a message published to `topic` is delivered to a subscription on
// `filter`. Both must already be valid. s4.7.1.2: '#' matches its parent level
// and any number of levels below; s4.7.1.3: '+' matches exactly one level, which
// may be empty; s4.7.2: a filter starting with a wildcard does not match topic
// names starting with '$'. A shared subscription matches as its inner filter.
inline bool matches(std::string_view filter, std::string_view topic) noexcept {
    if (const auto shared = parse_shared(filter)) filter = shared->filter;
    if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
        (filter.front() == '+' || filter.front() == '#')) {
        return false;
    }
    constexpr auto npos = std::string_view::npos;
    std::size_t fi = 0;  // start of the current level in filter
    std::size_t ti = 0;  // start of the current level in topic
    for (;;) {
        std::size_t fe = filter.find('/', fi);
        if (fe == npos) fe = filter.size();
        const std::string_view flevel = filter.substr(fi, fe - fi);
        if (flevel == "#") return true;

        std::size_t te = topic.find('/', ti);
        if (te == npos) te = topic.size();
        if (flevel != "+" && flevel != topic.substr(ti, te - ti)) return false;

        const bool filter_done = fe == filter.size();
        const bool topic_done = te == topic.size();
        if (topic_done) {
            // "a/#" also matches "a": the rest of the filter may be exactly "#".
            return filter_done || filter.substr(fe + 1) == "#";
        }
        if (filter_done) return false;
        fi = fe + 1;
        ti = te + 1;
    }
}

// Forward iterator over the '/'-separated levels of a topic or filter, as views
// into it. "a//b" gives "a", "", "b"; "/" gives "", ""; "" gives a single "".
// Meant for tries keyed by level; never allocates.
class LevelIterator {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = std::string_view;

    LevelIterator() noexcept = default;  // the end iterator
    explicit LevelIterator(std::string_view s) noexcept : s_(s), begin_(0), end_(level_end(0)) {}

    std::string_view operator*() const noexcept { return s_.substr(begin_, end_ - begin_); }
    // True on the last level, so a trie knows when to look at its terminal node.
    bool is_last() const noexcept { return end_ == s_.size(); }

    LevelIterator& operator++() noexcept {
        if (is_last()) {
            *this = LevelIterator{};
        } else {
            begin_ = end_ + 1;
            end_ = level_end(begin_);
        }
        return *this;
    }
    LevelIterator operator++(int) noexcept {
        LevelIterator old = *this;
        ++*this;
        return old;
    }
    // Only iterators over the same string compare meaningfully, as for containers.
    friend bool operator==(const LevelIterator& a, const LevelIterator& b) noexcept {
        return a.begin_ == b.begin_;
    }

  private:
    std::size_t level_end(std::size_t from) const noexcept {
        const std::size_t e = s_.find('/', from);
        return e == std::string_view::npos ? s_.size() : e;
    }

    std::string_view s_;
    std::size_t begin_ = std::string_view::npos;  // npos marks the end iterator
    std::size_t end_ = std::string_view::npos;
};

// A range over the levels of `s`: `for (std::string_view level : topic::levels(s))`.
class Levels {
  public:
    explicit Levels(std::string_view s) noexcept : s_(s) {}
    LevelIterator begin() const noexcept { return LevelIterator(s_); }
    LevelIterator end() const noexcept { return {}; }

  private:
    std::string_view s_;
};

inline Levels levels(std::string_view s) noexcept {
    return Levels(s);
}

// Call f(level) for each level of `s`, in order. If f returns bool, false stops
// the walk early; for_each_level then returns false (true when it ran to the end).
template <class F>
bool for_each_level(std::string_view s, F&& f) {
    std::size_t begin = 0;
    for (;;) {
        std::size_t end = s.find('/', begin);
        if (end == std::string_view::npos) end = s.size();
        const std::string_view level = s.substr(begin, end - begin);
        if constexpr (std::is_same_v<std::invoke_result_t<F&, std::string_view>, bool>) {
            if (!f(level)) return false;
        } else {
            f(level);
        }
        if (end == s.size()) return true;
        begin = end + 1;
    }
}

}  // namespace mqttx::topic
