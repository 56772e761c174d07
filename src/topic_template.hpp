// TopicTemplate: one ForwarderConfig mapping compiled once, applied per message. `from`
// is a topic or filter; `to` a template with {1}..{n} (the levels the n '+' matched),
// {#} (what '#' matched) and {topic} (the whole source topic).
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mqttx::detail {

class TopicTemplate {
  public:
    // Empty `problem` on success; otherwise says what is wrong with the mapping.
    TopicTemplate(std::string from, std::string_view to, std::string& problem);

    // True when `topic` matches `from`; `out` is then the rendered topic.
    bool apply(std::string_view topic, std::string& out) const;

  private:
    enum class Whole { topic };
    enum class Remainder { hash };
    // A literal, the n-th '+' level (0-based), the '#' remainder or the whole topic.
    using Part = std::variant<std::string, int, Remainder, Whole>;

    std::string from_;
    int plus_count_ = 0;
    bool has_hash_ = false;
    std::vector<Part> parts_;
};

}  // namespace mqttx::detail
