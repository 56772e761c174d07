// mqttx-bench: each scenario run with mqttx, with raw Paho C++ async_clients written the
// usual way, with Paho C's MQTTAsync API directly (what bypassing the C++ wrapper could
// gain), and (where the issue asks) with libmosquitto, interleaved round by round
// against the same broker; one table row per case with the figures and their ratio.
//   mqttx-bench [--messages N] [--rounds R] [--only S1,S3] [--json FILE] [--broker host:port]
//               [--inline-handlers]   (mqttx handlers on Paho's thread, as raw Paho's run)
//               [--dispatcher-threads N]   (mqttx's handler threads; default 2; S6's idle
//                sessions, measured in child processes, keep the defaults)
//               [--libraries mqttx,paho]   (a subset of the columns, e.g. to profile one)
//               [--libraries ...,paho-handoff]   (a column only on request: raw Paho C++
//                whose callback hands each message to one worker thread, the hop mqttx's
//                dispatcher makes)
// Without --broker it starts its own mosquitto (persistence off, set_tcp_nodelay true,
// large queues) on a free loopback port.
#include <mosquitto.h>
#include <mqtt/async_client.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "scenarios.hpp"
#include "support/mosquitto.hpp"

namespace {

using mqttx::bench::Broker;
using mqttx::bench::Case;
using mqttx::bench::Fleet;
using mqttx::bench::Result;

mqttx::ManagerOptions mqttx_options;  // --inline-handlers, --dispatcher-threads

std::unique_ptr<Fleet> make_fleet(const std::string& name) {
    if (name == "mqttx") return mqttx::bench::make_mqttx_fleet(mqttx_options);
    if (name == "paho") return mqttx::bench::make_paho_fleet();
    if (name == "paho-handoff") return mqttx::bench::make_paho_fleet(true);
    if (name == "paho-c") return mqttx::bench::make_paho_c_fleet();
    return mqttx::bench::make_mosquitto_fleet();
}

// Idle sessions are measured in a fresh process each, so that neither library's RSS
// is measured on top of what the other left allocated.
Result idle_in_child(const std::string& fleet, const Broker& broker, int count) {
    char self[4096];
    const auto length = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0) throw std::runtime_error("cannot find /proc/self/exe");
    self[length] = '\0';
    const auto command = std::string(self) + " --idle-child " + fleet + " " +
                         std::to_string(count) + " " + broker.host + " " +
                         std::to_string(broker.port);
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run " + command);
    Result r;
    const int fields =
        std::fscanf(pipe, "%lf %lf %lf", &r.seconds, &r.rss_kb_per_session, &r.cpu_per_million);
    if (::pclose(pipe) != 0 || fields != 3) throw std::runtime_error("failed: " + command);
    r.value = r.seconds;
    r.messages = static_cast<std::uint64_t>(count);
    return r;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values.empty() ? 0.0 : values[values.size() / 2];
}

std::string first_line_of(const std::string& command) {
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return "?";
    char line[256] = {};
    if (!std::fgets(line, sizeof line, pipe)) line[0] = '\0';
    ::pclose(pipe);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

std::string cpu_model() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.starts_with("model name")) return line.substr(line.find(':') + 2);
    }
    return "?";
}

nlohmann::json to_json(const Result& r) {
    return {{"value", r.value},
            {"p99_us", r.p99_us},
            {"max_us", r.max_us},
            {"seconds", r.seconds},
            {"messages", r.messages},
            {"cpu_s_per_million", r.cpu_per_million},
            {"allocs_per_message", r.allocs_per_message},
            {"lost", r.lost},
            {"rss_kb_per_session", r.rss_kb_per_session}};
}

std::string cell(double value) {
    char text[32];
    if (value >= 100) {
        std::snprintf(text, sizeof text, "%.0f", value);
    } else {
        std::snprintf(text, sizeof text, "%.2f", value);
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    long messages = 20000;
    int rounds = 3;
    std::set<std::string> only;
    std::set<std::string> libraries;
    std::string json_path;
    std::optional<Broker> external;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
            return argv[++i];
        };
        try {
            if (arg == "--idle-child" && i + 4 < argc) {
                auto fleet = make_fleet(argv[i + 1]);
                const auto r = mqttx::bench::measure_idle(
                    *fleet, {argv[i + 3], std::stoi(argv[i + 4])}, std::stoi(argv[i + 2]));
                std::printf("%f %f %f\n", r.seconds, r.rss_kb_per_session, r.cpu_per_million);
                return 0;
            } else if (arg == "--inline-handlers") {
                mqttx_options.inline_handlers = true;
            } else if (arg == "--dispatcher-threads") {
                const int threads = std::stoi(next());
                if (threads < 1) throw std::invalid_argument("must be at least 1");
                mqttx_options.dispatcher_threads = static_cast<std::size_t>(threads);
            } else if (arg == "--messages") {
                messages = std::stol(next());
            } else if (arg == "--rounds") {
                rounds = std::stoi(next());
            } else if (arg == "--only") {
                std::stringstream list(next());
                for (std::string s; std::getline(list, s, ',');) only.insert(s);
            } else if (arg == "--libraries") {
                std::stringstream list(next());
                for (std::string s; std::getline(list, s, ',');) {
                    if (s != "mqttx" && s != "paho" && s != "paho-c" && s != "libmosquitto" &&
                        s != "paho-handoff") {
                        throw std::invalid_argument("unknown library " + s);
                    }
                    libraries.insert(s);
                }
            } else if (arg == "--json") {
                json_path = next();
            } else if (arg == "--broker") {
                const auto value = next();
                const auto colon = value.rfind(':');
                if (colon == std::string::npos) throw std::invalid_argument("--broker host:port");
                external = Broker{value.substr(0, colon), std::stoi(value.substr(colon + 1))};
            } else {
                std::fprintf(stderr,
                             "usage: %s [--messages N] [--rounds R] [--only S1,S3] [--json FILE] "
                             "[--broker host:port] [--inline-handlers] [--dispatcher-threads N] "
                             "[--libraries "
                             "mqttx,paho,paho-c,libmosquitto,paho-handoff]\n",
                             argv[0]);
                return 2;
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s\n", arg.c_str(), e.what());
            return 2;
        }
    }
    if (messages < 100 || rounds < 1) {
        std::fprintf(stderr, "--messages must be at least 100 and --rounds at least 1\n");
        return 2;
    }

    // 10,000 idle sessions need 10,000 sockets here and in the broker (which inherits it).
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }

    std::unique_ptr<mqttx::test::Mosquitto> own_broker;
    Broker broker;
    if (external) {
        broker = *external;
    } else {
        own_broker = std::make_unique<mqttx::test::Mosquitto>(mqttx::test::BrokerOptions{
            .persistence = false,
            .extra_config = "max_inflight_messages 1000\nmax_connections -1\n",
            .port = 0});
        broker = {"127.0.0.1", own_broker->port()};
    }

    nlohmann::json report;
    report["machine"] = {{"cpu", cpu_model()}, {"cores", ::sysconf(_SC_NPROCESSORS_ONLN)}};
    report["versions"] = {
        {"mqttx", MQTTX_VERSION},
        {"paho_c", first_line_of("dpkg-query -W -f '${Version}' libpaho-mqtt1.3")},
        {"paho_cpp", first_line_of("dpkg-query -W -f '${Version}' libpaho-mqttpp3-1")},
        {"libmosquitto", first_line_of("dpkg-query -W -f '${Version}' libmosquitto1")},
        {"broker", external ? "external" : first_line_of("mosquitto -h")}};
    report["messages"] = messages;
    report["mqttx_inline_handlers"] = mqttx_options.inline_handlers;
    report["mqttx_dispatcher_threads"] = mqttx_options.dispatcher_threads;
    report["rounds"] = rounds;
    report["cases"] = nlohmann::json::array();

    std::printf("%-4s %-26s %-13s %10s %10s %10s %12s %7s %9s %9s %8s %8s %s\n", "", "case",
                "metric", "mqttx", "paho", "paho-c", "libmosquitto", "ratio", "cpu mqttx",
                "cpu paho", "alloc mq", "alloc pa", "lost (mqttx/paho/paho-c/mosq)");
    for (const auto& c : mqttx::bench::all_cases(messages)) {
        if (!only.empty() && !only.contains(c.scenario)) continue;
        std::vector<std::string> fleets{"mqttx", "paho", "paho-c"};
        if (c.with_mosquitto) fleets.emplace_back("libmosquitto");
        // Only on request: it answers one question, whether the dispatcher's hop costs
        // more than the one people write by hand. S6 has no messages, and S7 forwards in
        // the callback (see make_paho_fleet), so there it would repeat the paho column.
        if (libraries.contains("paho-handoff") && !c.idle && c.scenario != "S7")
            fleets.emplace_back("paho-handoff");
        if (!libraries.empty())
            std::erase_if(fleets, [&](const auto& f) { return !libraries.contains(f); });
        std::map<std::string, std::vector<Result>> runs;
        for (int round = 0; round < rounds; ++round) {
            // Interleaved, and each round starts with another library.
            for (std::size_t k = 0; k < fleets.size(); ++k) {
                const auto& name = fleets[(k + static_cast<std::size_t>(round)) % fleets.size()];
                std::fprintf(stderr, "\r%s %s: round %d/%d, %s...            ", c.scenario.c_str(),
                             c.label.c_str(), round + 1, rounds, name.c_str());
                try {
                    if (c.idle) {
                        runs[name].push_back(idle_in_child(name, broker, c.sessions));
                    } else {
                        auto fleet = make_fleet(name);
                        runs[name].push_back(c.run(*fleet, broker));
                    }
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "\n%s %s with %s failed: %s\n", c.scenario.c_str(),
                                 c.label.c_str(), name.c_str(), e.what());
                }
            }
        }
        std::fprintf(stderr, "\r%80s\r", "");
        // The run with the median figure stands for each library.
        std::map<std::string, Result> chosen;
        for (auto& [name, list] : runs) {
            std::vector<double> values;
            for (const auto& r : list) values.push_back(r.value);
            const double m = median(values);
            for (const auto& r : list) {
                if (r.value == m) chosen[name] = r;
            }
        }
        const auto pick = [&](const std::string& name) -> const Result* {
            auto it = chosen.find(name);
            return it == chosen.end() ? nullptr : &it->second;
        };
        const auto figure = [&](const std::string& name, double Result::*field) {
            const auto* r = pick(name);
            return r ? cell(r->*field) : std::string("-");
        };
        const auto* ours = pick("mqttx");
        const auto* paho = pick("paho");
        const double ratio = ours && paho && paho->value > 0 ? ours->value / paho->value : 0.0;
        const auto lost = [&](const std::string& name) {
            const auto* r = pick(name);
            return r ? std::to_string(r->lost) : std::string("-");
        };
        std::printf("%-4s %-26s %-13s %10s %10s %10s %12s %7.2f %9s %9s %8s %8s %s/%s/%s/%s\n",
                    c.scenario.c_str(), c.label.c_str(), c.metric.c_str(),
                    figure("mqttx", &Result::value).c_str(), figure("paho", &Result::value).c_str(),
                    figure("paho-c", &Result::value).c_str(),
                    figure("libmosquitto", &Result::value).c_str(), ratio,
                    figure("mqttx", &Result::cpu_per_million).c_str(),
                    figure("paho", &Result::cpu_per_million).c_str(),
                    figure("mqttx", &Result::allocs_per_message).c_str(),
                    figure("paho", &Result::allocs_per_message).c_str(), lost("mqttx").c_str(),
                    lost("paho").c_str(), lost("paho-c").c_str(), lost("libmosquitto").c_str());
        for (const auto& name : fleets) {
            const auto* r = pick(name);
            if (!r) continue;
            if (c.scenario == "S1") {
                std::printf("     %-26s %-13s p50 %.0f us, p99 %.0f us, max %.0f us\n",
                            name.c_str(), "", r->value, r->p99_us, r->max_us);
            } else if (c.idle) {
                std::printf("     %-26s %-13s %.1f KiB RSS per session\n", name.c_str(), "",
                            r->rss_kb_per_session);
            } else if (name == "paho-handoff") {
                const auto of = [](double a, double b) { return b > 0 ? a / b : 0.0; };
                std::printf(
                    "     %-26s %-13s %10s, CPU %s, lost %llu; mqttx / paho-handoff %.2f, CPU "
                    "%.2f\n",
                    name.c_str(), "", cell(r->value).c_str(), cell(r->cpu_per_million).c_str(),
                    static_cast<unsigned long long>(r->lost),
                    ours ? of(ours->value, r->value) : 0.0,
                    ours ? of(ours->cpu_per_million, r->cpu_per_million) : 0.0);
            }
        }
        std::fflush(stdout);
        nlohmann::json entry = {{"scenario", c.scenario},
                                {"label", c.label},
                                {"metric", c.metric},
                                {"ratio_mqttx_paho", ratio}};
        if (c.sessions > 0) entry["sessions"] = c.sessions;
        for (const auto& [name, r] : chosen) entry["results"][name] = to_json(r);
        report["cases"].push_back(std::move(entry));
    }
    if (!json_path.empty()) {
        std::ofstream(json_path) << report.dump(2) << "\n";
        std::printf("wrote %s\n", json_path.c_str());
    }
    return 0;
}
