// mqttx-bridge: forwards MQTT messages between brokers as a TOML file says (docs/bridge.md).
#include <getopt.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "bridge.hpp"
#include "config.hpp"
#include "mqttx/error.hpp"
#include "mqttx/metrics_server.hpp"

namespace {

constexpr const char* usage = R"(NAME
    mqttx-bridge - forward MQTT messages between brokers, as a configuration file says

SYNOPSIS
    mqttx-bridge --config FILE [--instance ID] [--listen HOST:PORT] [--log-level LEVEL]
    mqttx-bridge --config FILE --check
    mqttx-bridge --help | --version

DESCRIPTION
    Connects the sessions of FILE (TOML; the schema is in docs/bridge.md) and runs its
    forwarders: every message a forwarder's sources receive is published by its target,
    with the topic mapping, filters and transforms of the file. In the default
    at_least_once mode a message is handed to the target before the source broker gets
    its acknowledgement, so persistent sessions lose nothing when the program dies.

    HTTP (127.0.0.1:9464 unless [http] or --listen says otherwise) serves /metrics
    (Prometheus text), /healthz (the process answers) and /readyz (200 when every
    session is connected and every forwarder subscribed, 503 with the reasons
    otherwise).

OPTIONS
    -c, --config FILE
        The configuration file. Required.
    --check
        Validates FILE and exits: 0 when it is valid, 2 with every problem as
        FILE:LINE:COLUMN: key: what is wrong.
    -i, --instance ID
        Scale-out: every client_id of FILE becomes <client_id>-ID, and so do the
        storage records keyed by them (a session without client_id has a random id). Run several instances of one file with different IDs; a forwarder
        with share_group then splits its sources' stream between them.
    -l, --listen HOST:PORT
        Serves HTTP on HOST:PORT instead of the address of the file (port 0: a free one,
        logged at start).
    --log-level LEVEL
        trace, debug, info, warn, error, critical or off; replaces [bridge] log_level.
    -h, --help
        This text.
    --version
        The version.

SIGNALS
    SIGTERM, SIGINT
        Stop taking messages (sessions that are only sources disconnect), hand over what
        is queued within [bridge] drain_timeout, disconnect (keeping every subscription
        of a persistent session at its broker), and exit. /readyz says 503 meanwhile.
    SIGHUP
        Read FILE again. Sessions and forwarders that changed are replaced, the others
        keep running untouched. A file with problems is rejected, its problems are
        logged, and the running configuration stays.

EXIT STATUS
    0   stopped after handing over every queued message (or --check: valid)
    1   stopped with messages left at the drain deadline, or failed to start
    2   a configuration problem, or a command line mistake
)";

struct CommandLine {
    std::string config;
    bool check = false;
    mqttx::bridge::LoadOptions load;
};

// Returns the exit status to leave with, or nothing to go on.
std::optional<int> parse_command_line(int argc, char** argv, CommandLine& line) {
    enum { version = 1000, check, log_level };
    const option options[] = {
        {"config", required_argument, nullptr, 'c'},
        {"check", no_argument, nullptr, check},
        {"instance", required_argument, nullptr, 'i'},
        {"listen", required_argument, nullptr, 'l'},
        {"log-level", required_argument, nullptr, log_level},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, version},
        {nullptr, 0, nullptr, 0},
    };
    int c = 0;
    while ((c = getopt_long(argc, argv, "c:i:l:h", options, nullptr)) != -1) {
        switch (c) {
            case 'c':
                line.config = optarg;
                break;
            case 'i':
                line.load.instance = optarg;
                break;
            case 'l':
                line.load.listen = optarg;
                break;
            case check:
                line.check = true;
                break;
            case log_level:
                line.load.log_level = optarg;
                break;
            case 'h':
                std::cout << usage;
                return 0;
            case version:
                std::cout << "mqttx-bridge " << MQTTX_BRIDGE_VERSION << "\n";
                return 0;
            default:
                std::cerr << "mqttx-bridge: see --help\n";
                return 2;
        }
    }
    if (optind < argc) {
        std::cerr << "mqttx-bridge: unexpected argument '" << argv[optind] << "'; see --help\n";
        return 2;
    }
    if (line.config.empty()) {
        std::cerr << "mqttx-bridge: --config FILE is required; see --help\n";
        return 2;
    }
    return std::nullopt;
}

void use_stderr_logger() {
    auto logger = std::make_shared<spdlog::logger>(
        "mqttx-bridge", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
    logger->flush_on(spdlog::level::trace);  // one line per event, seen as it happens
    spdlog::set_default_logger(logger);
}

int run(const CommandLine& line) {
    mqttx::bridge::BridgeConfig config;
    try {
        config = mqttx::bridge::load_config(line.config, line.load);
    } catch (const mqttx::Error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    if (line.check) {
        std::cout << line.config << ": ok: " << config.sessions.size() << " session(s), "
                  << config.forwarders.size() << " forwarder(s)\n";
        return 0;
    }

    // Signals are taken by sigwait() below; blocked before any thread starts, so every
    // thread inherits the mask and none is interrupted.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    const auto http = config.http;
    const auto drain_timeout = config.drain_timeout;
    mqttx::bridge::Bridge bridge(std::move(config), line.config, line.load);
    bridge.start();

    std::unique_ptr<mqttx::MetricsServer> server;
    if (http.enabled) {
        mqttx::MetricsServerOptions options;
        options.address = http.host;
        options.port = http.port;
        options.extra_metrics = [&bridge] { return bridge.metrics_text(); };
        options.not_ready = [&bridge] { return bridge.not_ready(); };
        try {
            server = std::make_unique<mqttx::MetricsServer>(bridge.manager(), options);
        } catch (const mqttx::Error& e) {
            spdlog::error("http: {}", e.what());
            bridge.drain(drain_timeout);
            return 1;
        }
        spdlog::info("http: listening on {}:{} (/metrics, /healthz, /readyz)", http.host,
                     server->port());
    }

    for (;;) {
        int received = 0;
        sigwait(&signals, &received);
        if (received != SIGHUP) {
            spdlog::info("{}: stopping", received == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        spdlog::info("SIGHUP: reloading {}", line.config);
        bridge.reload();
        const auto now = bridge.config().http;
        if (now.enabled != http.enabled || now.host != http.host || now.port != http.port) {
            spdlog::warn("http: a changed [http] takes effect at the next start");
        }
    }

    // The server answers while the bridge drains: /readyz says it is stopping.
    const auto left = bridge.drain(drain_timeout);
    if (server) server->stop();
    if (left > 0) {
        std::cerr << "mqttx-bridge: " << left << " message(s) left at the drain deadline\n";
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CommandLine line;
    if (auto status = parse_command_line(argc, argv, line)) return *status;
    use_stderr_logger();
    try {
        return run(line);
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
}
