#include "mqttx/topic.hpp"

#include <string>

#include "mqttx/error.hpp"

namespace mqttx::topic {

// Out of line so that the header does not need error.hpp and the throw path
// stays out of callers' hot code.

void validate_topic_name(std::string_view topic) {
    if (const auto problem = check_topic_name(topic); !problem.empty()) {
        throw Error::invalid_topic("invalid topic name: " + std::string(problem),
                                   std::string(topic));
    }
}

void validate_topic_filter(std::string_view filter) {
    if (const auto problem = check_topic_filter(filter); !problem.empty()) {
        throw Error::invalid_topic("invalid topic filter: " + std::string(problem),
                                   std::string(filter));
    }
}

}  // namespace mqttx::topic
