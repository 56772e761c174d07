// The library's default logger: named "mqttx", writing to stderr, never put in
// spdlog's global registry (which belongs to the application).
#pragma once

#include <memory>

namespace spdlog {
class logger;
}

namespace mqttx::detail {

// Level from MQTTX_LOG_LEVEL (trace, debug, info, warn, error, off); default warn.
std::shared_ptr<spdlog::logger> default_logger();

}  // namespace mqttx::detail
