// Problems: the configuration errors found by a validate(), reported all at once in one
// Error (kind configuration) with each problem under its field name.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mqttx/error.hpp"

namespace mqttx::detail {

class Problems {
  public:
    void add(std::string field, std::string problem) {
        items_.emplace_back(std::move(field), std::move(problem));
    }
    bool empty() const { return items_.empty(); }

    // `heading` says what was checked, e.g. "invalid options for session 's'".
    [[noreturn]] void raise(std::string heading, const std::string& session = {}) const {
        std::string message = std::move(heading) + ": ";
        for (std::size_t i = 0; i < items_.size(); ++i) {
            if (i > 0) message += "; ";
            message += items_[i].first + ": " + items_[i].second;
        }
        Error error(ErrorKind::configuration, std::move(message));
        for (const auto& [field, problem] : items_) error.with_context(field, problem);
        if (!session.empty()) error.with_session(session);
        throw error;
    }

  private:
    std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace mqttx::detail
