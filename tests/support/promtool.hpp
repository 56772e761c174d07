// promtool check metrics on a Prometheus text: the check a scraper's operator would run.
#pragma once

#include <fstream>
#include <string>
#include <utility>

#include "support/child_process.hpp"
#include "support/mosquitto.hpp"

namespace mqttx::test {

// promtool's exit status (0: valid, lint included) and everything it printed.
inline std::pair<int, std::string> promtool_check(const std::string& text) {
    const auto promtool = find_executable("promtool", "prometheus");
    const auto dir = make_temp_dir("mqttx-promtool-");
    const auto file = dir + "/metrics.txt";
    std::ofstream(file, std::ios::binary) << text;
    auto result = run_command(promtool + " check metrics < " + file);
    remove_tree(dir);
    return result;
}

}  // namespace mqttx::test
