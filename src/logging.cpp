#include "logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace mqttx::detail {

std::shared_ptr<spdlog::logger> default_logger() {
    static const auto logger = [] {
        auto log = std::make_shared<spdlog::logger>(
            "mqttx", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
        const char* level = std::getenv("MQTTX_LOG_LEVEL");
        log->set_level(level ? spdlog::level::from_str(level) : spdlog::level::warn);
        return log;
    }();
    return logger;
}

}  // namespace mqttx::detail
