#include "support/redis.hpp"

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/mosquitto.hpp"

namespace mqttx::test {

RedisServer::RedisServer(RedisOptions options) : options_(std::move(options)) {
    dir_ = make_temp_dir("mqttx-redis-");
    port_ = options_.port != 0 ? options_.port : free_port();
    try {
        start();
    } catch (...) {
        process_.kill();
        remove_tree(dir_);
        throw;
    }
}

RedisServer::~RedisServer() {
    process_.stop(std::chrono::seconds(5));
    remove_tree(dir_);
}

void RedisServer::start() {
    if (process_.running()) return;
    const std::string config = dir_ + "/redis.conf";
    {
        std::ofstream out(config, std::ios::trunc);
        out << "port " << port_ << "\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir " << dir_
            << "\ndaemonize no\nlogfile \"\"\n";
        if (!options_.password.empty()) {
            if (options_.user.empty()) {
                out << "requirepass " << options_.password << "\n";
            } else {
                out << "user default off\nuser " << options_.user << " on >" << options_.password
                    << " ~* &* +@all\n";
            }
        }
    }
    process_.spawn(find_executable("redis-server", "redis-server"), {config}, dir_ + "/output");
    const bool up = wait_until([&] { return !process_.running() || port_accepts(port_); });
    if (!up || !process_.running()) {
        process_.kill();
        throw std::runtime_error("redis-server did not start on " + address() + ":\n" + output());
    }
}

void RedisServer::kill() noexcept {
    process_.kill();
}

std::string RedisServer::output() const {
    std::ifstream in(dir_ + "/output");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace mqttx::test
