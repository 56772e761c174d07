// The outgoing MQTT 5 topic aliases of one connection (PerformanceOptions::topic_aliases):
// the first topics published at QoS 0 get an alias each, up to the limit; their later
// messages carry the alias alone. Guarded by the session's hand-off mutex, so aliases are
// assigned in the order messages reach Paho, which is the order they reach the broker.
// The table belongs to one connection (`link`); the session starts a new one for the next.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mqttx::detail {

class TopicAliases {
  public:
    // A new connection (the broker forgets every alias with the old one): none yet, at
    // most `limit` (0: aliases off).
    void reset(std::uint32_t limit, std::uint32_t link) {
        aliases_.clear();
        limit_ = static_cast<std::uint16_t>(std::min<std::uint32_t>(limit, 65535));
        link_ = link;
    }
    bool enabled() const noexcept { return limit_ != 0; }
    std::uint32_t link() const noexcept { return link_; }

    struct Use {
        std::uint16_t alias = 0;  // 0: send the topic alone
        bool known = false;       // the broker has it: the topic may be left out
    };
    Use use(std::string_view topic) {
        if (auto found = aliases_.find(topic); found != aliases_.end()) {
            return {found->second, true};
        }
        if (aliases_.size() >= limit_) return {};
        const auto alias = static_cast<std::uint16_t>(aliases_.size() + 1);
        aliases_.emplace(std::string(topic), alias);
        return {alias, false};
    }

  private:
    // Looked up by string_view: no allocation per message.
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view topic) const noexcept {
            return std::hash<std::string_view>{}(topic);
        }
    };
    std::unordered_map<std::string, std::uint16_t, Hash, std::equal_to<>> aliases_;
    std::uint16_t limit_ = 0;
    std::uint32_t link_ = 0;
};

}  // namespace mqttx::detail
