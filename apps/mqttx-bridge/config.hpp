// The bridge's configuration: a TOML file (docs/bridge.md has the schema) read into
// the library's own Options and ForwarderConfig. Every mistake is reported at once as
// "FILE:LINE:COLUMN: key: what is wrong".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "mqttx/forwarder.hpp"
#include "mqttx/options.hpp"

namespace mqttx::bridge {

struct SessionEntry {
    Options options;
    toml::table source;  // as written, for telling at a reload whether it changed
};

struct ForwarderEntry {
    ForwarderConfig config;
    toml::table source;
};

struct HttpConfig {
    bool enabled = true;
    std::string host = "127.0.0.1";
    int port = 9464;  // 0: a free port
};

struct BridgeConfig {
    HttpConfig http;
    // SIGTERM/SIGINT: how long queued messages may take to reach their targets.
    std::chrono::milliseconds drain_timeout{30000};
    std::string log_level = "info";
    std::vector<SessionEntry> sessions;
    std::vector<ForwarderEntry> forwarders;
};

// What the command line changes in every configuration read.
struct LoadOptions {
    // Scale-out: client ids become "<client_id>-<instance>" (and so does what the
    // storage keeps, which is keyed by client id).
    std::string instance{};
    // Replaces [http] listen ("HOST:PORT").
    std::string listen{};
    // Replaces [bridge] log_level.
    std::string log_level{};
};

struct ConfigProblem {
    std::string file;
    std::uint32_t line = 0;  // 0: the problem has no place in the file
    std::uint32_t column = 0;
    std::string key;  // e.g. "sessions[1].storage.type"
    std::string what;
    // "FILE:LINE:COLUMN: key: what".
    std::string text() const;
};

struct ParseResult {
    BridgeConfig config;
    std::vector<ConfigProblem> problems;  // empty: `config` is valid
};

// `file` names the text in problems.
ParseResult parse_config(std::string_view text, const std::string& file,
                         const LoadOptions& options = {});
// Reads and parses `path`. Throws Error (configuration) whose message has one line per
// problem, or (kind storage) when the file cannot be read.
BridgeConfig load_config(const std::string& path, const LoadOptions& options = {});

// Parses "HOST:PORT" (an IPv6 host in brackets) into `http`; false on a mistake, with
// `problem` set.
bool parse_listen(std::string_view text, HttpConfig& http, std::string& problem);

}  // namespace mqttx::bridge
