#include "support/aedes.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/mosquitto.hpp"  // free_port(), port_accepts(), wait_until()

namespace mqttx::test {

namespace {

using namespace std::chrono_literals;

// Where scripts/setup.sh installs aedes (scripts/aedes/node_modules).
std::string aedes_modules() {
    return MQTTX_AEDES_MODULES;
}

}  // namespace

Aedes::Aedes(int port)
    : port_(port == 0 ? free_port() : port), dir_(make_temp_dir("mqttx-aedes-")) {
    if (!std::filesystem::exists(aedes_modules() + "/aedes/package.json")) {
        remove_tree(dir_);
        throw std::runtime_error("mqttx::test::Aedes: aedes is not installed in " +
                                 aedes_modules() + "; run scripts/setup.sh");
    }
    try {
        start();
    } catch (...) {
        stop();
        remove_tree(dir_);
        throw;
    }
}

void Aedes::start() {
    if (process_.running()) return;
    process_.exited();  // reaps one that died on its own
    const auto node = find_executable("node", "nodejs");
    // The old socket may linger a moment after a kill: retry while the port is taken.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        process_.spawn(node, {MQTTX_AEDES_SCRIPT, std::to_string(port_), aedes_modules()},
                       dir_ + "/output.log");
        bool exited = false;
        const bool up = wait_until(
            [&] {
                if (process_.exited()) {
                    exited = true;
                    return true;
                }
                return port_accepts(port_);
            },
            20s);
        if (up && !exited) return;
        if (exited && std::chrono::steady_clock::now() < deadline &&
            output().find("EADDRINUSE") != std::string::npos) {
            std::this_thread::sleep_for(100ms);
            continue;
        }
        process_.kill();
        throw std::runtime_error("mqttx::test::Aedes: aedes did not start on 127.0.0.1:" +
                                 std::to_string(port_) + "; it said:\n" + output());
    }
}

Aedes::~Aedes() {
    stop();
    remove_tree(dir_);
}

void Aedes::stop() noexcept {
    process_.stop(5s);
}

void Aedes::kill() noexcept {
    process_.kill();
}

std::string Aedes::output() const {
    std::ifstream in(dir_ + "/output.log");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace mqttx::test
