#include "topic_template.hpp"

#include <charconv>
#include <utility>

#include "mqttx/detail/mqtt_string.hpp"
#include "mqttx/topic.hpp"

namespace mqttx::detail {

TopicTemplate::TopicTemplate(std::string from, std::string_view to, std::string& problem)
    : from_(std::move(from)) {
    problem.clear();
    if (auto bad = topic::check_topic_filter(from_); !bad.empty()) {
        problem = "'from' " + std::string(bad);
        return;
    }
    // A shared subscription delivers topics matched by its inner filter: the levels of
    // "$share/<group>/" are not levels of any topic.
    if (const auto shared = topic::parse_shared(from_)) from_ = std::string(shared->filter);
    topic::for_each_level(from_, [this](std::string_view level) {
        if (level == "+") ++plus_count_;
        if (level == "#") has_hash_ = true;
        return true;
    });
    if (to.empty()) {
        problem = "'to' is empty";
        return;
    }
    // What the placeholders insert comes from a valid topic; the rest must be valid too.
    if (auto bad = check_mqtt_string(to); !bad.empty()) {
        problem = "'to' " + std::string(bad);
        return;
    }
    std::string literal;
    for (std::size_t i = 0; i < to.size();) {
        if (to[i] != '{') {
            if (to[i] == '+' || to[i] == '#' || to[i] == '}') {
                problem = std::string("'to' may not contain '") + to[i] + "' outside a placeholder";
                return;
            }
            literal += to[i++];
            continue;
        }
        const auto close = to.find('}', i);
        if (close == std::string_view::npos) {
            problem = "'to' has an unclosed '{'";
            return;
        }
        const auto name = to.substr(i + 1, close - i - 1);
        Part part;
        int index = 0;
        const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
        if (name == "topic") {
            part = Whole::topic;
        } else if (name == "#") {
            if (!has_hash_) {
                problem = "'to' uses {#} but 'from' has no '#'";
                return;
            }
            part = Remainder::hash;
        } else if (ec == std::errc() && end == name.data() + name.size() && index >= 1) {
            if (index > plus_count_) {
                problem = "'to' uses {" + std::string(name) + "} but 'from' has " +
                          std::to_string(plus_count_) + " '+' level(s)";
                return;
            }
            part = index - 1;
        } else {
            problem = "'to' has an unknown placeholder {" + std::string(name) + "}";
            return;
        }
        if (!literal.empty()) parts_.emplace_back(std::exchange(literal, {}));
        parts_.push_back(std::move(part));
        i = close + 1;
    }
    if (!literal.empty()) parts_.emplace_back(std::move(literal));
}

bool TopicTemplate::apply(std::string_view topic, std::string& out) const {
    if (!topic::matches(from_, topic)) return false;
    // What the wildcards matched, walking the filter's levels against the topic's.
    // Reused per thread: a forwarded message allocates nothing here once warm.
    thread_local std::vector<std::string_view> levels;
    thread_local std::vector<std::string_view> plus;
    levels.clear();
    plus.clear();
    topic::for_each_level(topic, [](std::string_view level) { levels.push_back(level); });
    std::string_view remainder;
    std::size_t i = 0;
    topic::for_each_level(from_, [&](std::string_view level) {
        if (level == "#") {
            if (i < levels.size()) remainder = topic.substr(levels[i].data() - topic.data());
            return false;
        }
        if (i >= levels.size()) return false;  // matches() rules it out; never read past the end
        if (level == "+") plus.push_back(levels[i]);
        ++i;
        return true;
    });
    out.clear();
    for (const auto& part : parts_) {
        if (const auto* text = std::get_if<std::string>(&part)) {
            out += *text;
        } else if (const auto* index = std::get_if<int>(&part)) {
            const auto n = static_cast<std::size_t>(*index);
            if (n >= plus.size()) return false;
            out += plus[n];
        } else if (std::holds_alternative<Remainder>(part)) {
            out += remainder;
        } else {
            out += topic;
        }
    }
    return true;
}

}  // namespace mqttx::detail
