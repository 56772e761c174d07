#include "toml_reader.hpp"

#include <cstdlib>

namespace mqttx::bridge {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The closest of `candidates` to `word`, when it is close enough to be a typo.

}  // namespace

std::string suggestion(std::string_view word,
                       const std::set<std::string, std::less<>>& candidates) {
    std::string best;
    std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
    for (const auto& candidate : candidates) {
        const auto distance = edit_distance(word, candidate);
        if (distance < best_distance) {
            best_distance = distance;
            best = candidate;
        }
    }
    return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

std::string type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a number";
        case toml::node_type::boolean:
            return "a boolean";
        default:
            return "a date or time";
    }
}

std::optional<std::string> expand(std::string_view text, std::string& problem) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '$' || i + 1 >= text.size()) {
            out += text[i];
            continue;
        }
        if (text[i + 1] == '$') {
            out += '$';
            ++i;
            continue;
        }
        if (text[i + 1] != '{') {
            out += text[i];
            continue;
        }
        const auto end = text.find('}', i + 2);
        if (end == std::string_view::npos) {
            problem = "'${' without a closing '}'";
            return std::nullopt;
        }
        std::string_view name = text.substr(i + 2, end - i - 2);
        std::optional<std::string_view> fallback;
        if (const auto dash = name.find(":-"); dash != std::string_view::npos) {
            fallback = name.substr(dash + 2);
            name = name.substr(0, dash);
        }
        if (name.empty()) {
            problem =
                "'" + std::string(text.substr(i, end - i + 1)) + "' names no environment variable";
            return std::nullopt;
        }
        if (fallback && fallback->find("${") != std::string_view::npos) {
            problem = "a default that uses '${' is not supported";
            return std::nullopt;
        }
        if (const char* value = std::getenv(std::string(name).c_str()); value && *value) {
            out += value;
        } else if (fallback) {
            out += *fallback;
        } else {
            problem = "the environment variable " + std::string(name) + " is not set (or empty)";
            return std::nullopt;
        }
        i = end;
    }
    return out;
}

}  // namespace mqttx::bridge
