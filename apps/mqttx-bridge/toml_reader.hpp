// Reading a TOML table for the bridge's configuration: typed getters that report a wrong
// type, a missing key or a value out of range at its place in the file, ${VAR}
// expansion, durations, and unknown keys (with a suggestion) once a table is read.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config.hpp"
#include "mqttx/properties.hpp"

namespace mqttx::bridge {

using std::chrono::milliseconds;

// " (did you mean 'x'?)" when one of `candidates` is close to `word`, else "".
std::string suggestion(std::string_view word, const std::set<std::string, std::less<>>& candidates);
// "a string", "an integer", ... for messages.
std::string type_name(const toml::node& node);
// "${NAME}" and "${NAME:-default}" are replaced from the environment; "$$" is a '$'.
// Empty, with `problem` set, on a mistake.
std::optional<std::string> expand(std::string_view text, std::string& problem);

class Problems {
  public:
    Problems(std::string file, std::vector<ConfigProblem>& out)
        : file_(std::move(file)), out_(out) {}
    void add(const toml::node* at, std::string key, std::string what) {
        ConfigProblem problem{file_, 0, 0, std::move(key), std::move(what)};
        if (at) {
            problem.line = at->source().begin.line;
            problem.column = at->source().begin.column;
        }
        out_.push_back(std::move(problem));
    }
    void move_last_to(const toml::source_position& at) {
        out_.back().line = at.line;
        out_.back().column = at.column;
    }
    bool has(std::string_view key) const {
        return std::any_of(out_.begin(), out_.end(), [&](const auto& p) { return p.key == key; });
    }

  private:
    std::string file_;
    std::vector<ConfigProblem>& out_;
};

// One TOML table: each key asked for is known; finish() reports the others as unknown.
class TableReader {
  public:
    TableReader(const toml::table& table, std::string path, Problems& problems)
        : table_(table), path_(std::move(path)), problems_(problems) {}

    const toml::table& table() const { return table_; }
    std::string key(std::string_view name) const {
        return path_.empty() ? std::string(name) : path_ + "." + std::string(name);
    }
    void problem(std::string_view name, std::string what) {
        const toml::node* at = table_.get(name);
        problems_.add(at ? at : &table_, key(name), std::move(what));
    }
    const toml::node* find(std::string_view name, bool required = false) {
        known_.emplace(name);
        const toml::node* node = table_.get(name);
        if (!node && required) problems_.add(&table_, key(name), "missing (required)");
        return node;
    }
    template <class T>
    const T* typed(std::string_view name, const char* wanted, bool required) {
        const toml::node* node = find(name, required);
        if (!node) return nullptr;
        if (const auto* value = node->as<T>()) return value;
        problems_.add(node, key(name),
                      std::string("expected ") + wanted + ", got " + type_name(*node));
        return nullptr;
    }

    std::optional<std::string> string(std::string_view name, bool required = false) {
        const auto* value = typed<toml::value<std::string>>(name, "a string", required);
        if (!value) return std::nullopt;
        std::string problem;
        auto expanded = expand(value->get(), problem);
        if (!expanded) problems_.add(value, key(name), problem);
        return expanded;
    }
    std::optional<bool> boolean(std::string_view name) {
        const auto* value = typed<toml::value<bool>>(name, "true or false", false);
        return value ? std::optional<bool>(value->get()) : std::nullopt;
    }
    std::optional<std::int64_t> integer(std::string_view name, std::int64_t min, std::int64_t max,
                                        bool required = false) {
        const auto* value = typed<toml::value<std::int64_t>>(name, "an integer", required);
        if (!value) return std::nullopt;
        if (value->get() < min || value->get() > max) {
            problems_.add(value, key(name),
                          "must be " + std::to_string(min) + " to " + std::to_string(max) +
                              ", got " + std::to_string(value->get()));
            return std::nullopt;
        }
        return value->get();
    }
    std::optional<double> number(std::string_view name) {
        const toml::node* node = find(name);
        if (!node) return std::nullopt;
        if (auto real = node->value<double>();
            real && (node->is_floating_point() || node->is_integer())) {
            return real;
        }
        problems_.add(node, key(name), "expected a number, got " + type_name(*node));
        return std::nullopt;
    }
    // "250ms", "30s", "5m", "1h", "2d"; 0 alone means none.
    std::optional<milliseconds> duration(std::string_view name) {
        const toml::node* node = find(name);
        if (!node) return std::nullopt;
        if (node->is_integer() && node->value<std::int64_t>() == 0) return milliseconds{0};
        const auto* text = node->as_string();
        const char* expected = "expected a duration such as \"30s\", \"250ms\", \"5m\" or \"1h\"";
        if (!text) {
            problems_.add(node, key(name), std::string(expected) + ", got " + type_name(*node));
            return std::nullopt;
        }
        std::string problem;
        const auto expanded = expand(text->get(), problem);
        if (!expanded) {
            problems_.add(node, key(name), problem);
            return std::nullopt;
        }
        const std::string_view s = *expanded;
        std::int64_t count = 0;
        const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), count);
        const std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
        static const std::map<std::string_view, std::int64_t> units = {
            {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
        const auto it = units.find(unit);
        if (error != std::errc() || count < 0 || it == units.end() ||
            count > std::numeric_limits<std::int64_t>::max() / it->second) {
            problems_.add(node, key(name),
                          std::string(expected) + ", got \"" + std::string(s) + "\"");
            return std::nullopt;
        }
        return milliseconds{count * it->second};
    }
    std::optional<std::chrono::seconds> seconds(std::string_view name) {
        auto value = duration(name);
        if (!value) return std::nullopt;
        if (value->count() % 1000 != 0) {
            problem(name, "must be whole seconds");
            return std::nullopt;
        }
        return std::chrono::duration_cast<std::chrono::seconds>(*value);
    }
    std::optional<std::vector<std::string>> strings(std::string_view name, bool required = false) {
        const auto* array = typed<toml::array>(name, "an array of strings", required);
        if (!array) return std::nullopt;
        std::vector<std::string> out;
        for (const auto& element : *array) {
            const auto* text = element.as_string();
            if (!text) {
                problems_.add(&element, key(name),
                              "expected an array of strings, holds " + type_name(element));
                continue;
            }
            std::string problem;
            if (auto expanded = expand(text->get(), problem)) {
                out.push_back(std::move(*expanded));
            } else {
                problems_.add(&element, key(name), problem);
            }
        }
        return out;
    }
    // A table of string values, in key order: user properties, metadata.
    std::optional<UserProperties> string_table(std::string_view name) {
        const auto* table = typed<toml::table>(name, "a table of strings", false);
        if (!table) return std::nullopt;
        UserProperties out;
        for (const auto& [k, v] : *table) {
            const auto* text = v.as_string();
            if (!text) {
                problems_.add(&v, key(name) + "." + std::string(k.str()),
                              "expected a string, got " + type_name(v));
                continue;
            }
            std::string problem;
            if (auto expanded = expand(text->get(), problem)) {
                out.emplace_back(std::string(k.str()), std::move(*expanded));
            } else {
                problems_.add(&v, key(name) + "." + std::string(k.str()), problem);
            }
        }
        return out;
    }
    template <class Enum>
    std::optional<Enum> choice(std::string_view name,
                               std::initializer_list<std::pair<const char*, Enum>> choices) {
        const auto* value = typed<toml::value<std::string>>(name, "a string", false);
        if (!value) return std::nullopt;
        std::string problem;
        const auto expanded = expand(value->get(), problem);
        if (!expanded) {
            problems_.add(value, key(name), problem);
            return std::nullopt;
        }
        std::string names;
        for (const auto& [text, e] : choices) {
            if (*expanded == text) return e;
            names += names.empty() ? "" : ", ";
            names += std::string("\"") + text + "\"";
        }
        problems_.add(value, key(name), "must be one of " + names + ", got \"" + *expanded + "\"");
        return std::nullopt;
    }
    // Runs `read` on the sub-table `name` when there is one.
    template <class Read>
    void table(std::string_view name, Read&& read) {
        if (const auto* t = typed<toml::table>(name, "a table", false)) {
            TableReader sub(*t, key(name), problems_);
            read(sub);
        }
    }
    TableReader element(const toml::table& t, std::string_view name, std::size_t index) {
        return TableReader(t, key(name) + "[" + std::to_string(index) + "]", problems_);
    }
    // [[name]] entries; each element must be a table.
    std::vector<const toml::table*> tables(std::string_view name, bool required = false) {
        std::vector<const toml::table*> out;
        const auto* array = typed<toml::array>(name, "an array of tables", required);
        if (!array) return out;
        for (const auto& element : *array) {
            if (const auto* t = element.as_table()) {
                out.push_back(t);
            } else {
                problems_.add(&element, key(name), "expected a table, got " + type_name(element));
            }
        }
        return out;
    }

    void finish() {
        for (const auto& [k, v] : table_) {
            if (known_.contains(k.str())) continue;
            problems_.add(&v, key(k.str()), "unknown key" + suggestion(k.str(), known_));
            // At the key itself where toml++ knows where it is.
            if (k.source().begin.line > 0) problems_.move_last_to(k.source().begin);
        }
    }

  private:
    const toml::table& table_;
    std::string path_;
    Problems& problems_;
    std::set<std::string, std::less<>> known_;
};

}  // namespace mqttx::bridge
