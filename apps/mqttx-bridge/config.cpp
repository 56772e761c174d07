#include "config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "mqttx/error.hpp"
#include "toml_reader.hpp"

namespace mqttx::bridge {
namespace {

template <class T>
void set(std::optional<T>&& value, T& field) {
    if (value) field = std::move(*value);
}
template <class Rep, class Period>
void set_duration(std::optional<milliseconds>&& value, std::chrono::duration<Rep, Period>& field) {
    if (value) field = std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(*value);
}

PublishProperties read_publish_properties(TableReader& r) {
    PublishProperties p;
    set(r.string_table("user_properties"), p.user_properties);
    if (auto v = r.string("content_type")) p.content_type = std::move(*v);
    if (auto v = r.seconds("message_expiry")) p.message_expiry = *v;
    if (auto v = r.string("response_topic")) p.response_topic = std::move(*v);
    if (auto v = r.string("correlation_data")) p.correlation_data = std::move(*v);
    if (auto v = r.boolean("payload_is_utf8")) p.payload_is_utf8 = *v;
    r.finish();
    return p;
}

std::string read_file(const std::string& path, std::string& problem) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        problem = "cannot read '" + path + "'";
        return {};
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void read_credentials(TableReader& r, Options& o) {
    Credentials c;
    set(r.string("username"), c.username);
    auto password = r.string("password");
    auto password_file = r.string("password_file");
    if (password && password_file) {
        r.problem("password_file", "give password or password_file, not both");
    } else if (password) {
        c.password = std::move(*password);
    } else if (password_file) {
        std::string problem;
        c.password = read_file(*password_file, problem);
        while (!c.password.empty() && (c.password.back() == '\n' || c.password.back() == '\r')) {
            c.password.pop_back();
        }
        if (!problem.empty()) r.problem("password_file", problem);
    }
    r.finish();
    o.credentials = std::move(c);
}

void read_reconnect(TableReader& r, ReconnectPolicy& p) {
    set(r.boolean("enabled"), p.enabled);
    set_duration(r.duration("initial"), p.initial);
    set_duration(r.duration("max"), p.max);
    set(r.number("multiplier"), p.multiplier);
    set(r.number("jitter"), p.jitter);
    r.finish();
}

void read_tls(TableReader& r, TlsConfig& t) {
    set(r.string("ca_file"), t.ca_file);
    set(r.string("ca_path"), t.ca_path);
    set(r.string("cert_file"), t.cert_file);
    set(r.string("key_file"), t.key_file);
    set(r.string("key_password"), t.key_password);
    set(r.boolean("skip_verify"), t.skip_verify);
    set(r.string("ciphers"), t.ciphers);
    set(r.choice<TlsVersion>("min_version", {{"1.2", TlsVersion::v1_2}, {"1.3", TlsVersion::v1_3}}),
        t.min_version);
    set(r.strings("alpn"), t.alpn);
    r.finish();
}

void read_performance(TableReader& r, PerformanceOptions& p) {
    constexpr std::int64_t int_max = std::numeric_limits<int>::max();
    if (auto v = r.integer("buffer_kb", 1, std::int64_t{1} << 40))
        p.buffer_kb = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_pending", 1, int_max)) p.max_pending = static_cast<int>(*v);
    if (auto v = r.integer("max_pending_bytes", 0, std::int64_t{1} << 50)) {
        p.max_pending_bytes = static_cast<std::size_t>(*v);
    }
    if (auto v = r.integer("max_inflight", 1, 65535)) p.max_inflight = static_cast<int>(*v);
    set(r.choice<BufferOverflow>("overflow", {{"reject", BufferOverflow::reject},
                                              {"drop_oldest", BufferOverflow::drop_oldest}}),
        p.overflow);
    if (auto v = r.integer("max_publish_attempts", 1, int_max))
        p.max_publish_attempts = static_cast<int>(*v);
    set_duration(r.duration("in_flight_stall_after"), p.in_flight_stall_after);
    if (auto v = r.integer("topic_aliases", 0, 65535))
        p.topic_aliases = static_cast<std::uint16_t>(*v);
    r.finish();
}

void read_storage(TableReader& r, StorageOptions& s) {
    set(r.choice<StorageType>("type", {{"memory", StorageType::memory},
                                       {"file", StorageType::file},
                                       {"redis", StorageType::redis}}),
        s.type);
    set(r.string("directory"), s.directory);
    set(r.boolean("file_sync"), s.file_sync);
    if (auto v = r.integer("file_segment_bytes", 0, std::int64_t{1} << 40)) {
        s.file_segment_bytes = static_cast<std::size_t>(*v);
    }
    set(r.string("redis_address"), s.redis_address);
    set(r.string("redis_user"), s.redis_user);
    set(r.string("redis_password"), s.redis_password);
    if (auto v = r.integer("redis_db", 0, 1 << 20)) s.redis_db = static_cast<int>(*v);
    set(r.string("redis_prefix"), s.redis_prefix);
    set_duration(r.duration("redis_connect_timeout"), s.redis_connect_timeout);
    set_duration(r.duration("redis_command_timeout"), s.redis_command_timeout);
    set(r.seconds("state_ttl"), s.state_ttl);
    r.finish();
}

void read_will(TableReader& r, Will& w) {
    set(r.string("topic", true), w.topic);
    set(r.string("payload"), w.payload);
    if (auto v = r.integer("qos", 0, 2)) w.qos = static_cast<int>(*v);
    set(r.boolean("retained"), w.retained);
    set(r.seconds("delay"), w.delay);
    r.table("properties", [&](TableReader& p) { w.properties = read_publish_properties(p); });
    r.finish();
}

void read_connect_properties(TableReader& r, ConnectProperties& c) {
    if (auto v = r.seconds("session_expiry")) c.session_expiry = *v;
    if (auto v = r.integer("receive_maximum", 1, 65535))
        c.receive_maximum = static_cast<std::uint16_t>(*v);
    if (auto v = r.integer("maximum_packet_size", 1, 268'435'460)) {
        c.maximum_packet_size = static_cast<std::uint32_t>(*v);
    }
    if (auto v = r.integer("topic_alias_maximum", 0, 65535)) {
        c.topic_alias_maximum = static_cast<std::uint16_t>(*v);
    }
    set(r.boolean("request_response_information"), c.request_response_information);
    set(r.boolean("request_problem_information"), c.request_problem_information);
    set(r.string_table("user_properties"), c.user_properties);
    r.finish();
}

// A library validation problem ("storage.directory", "sources[0].filters") placed at the
// deepest node of `table` on its path.
void place(Problems& problems, const toml::table& table, const std::string& prefix,
           const Error& error) {
    bool any = false;
    for (const auto& [field, what] : error.context()) {
        any = true;
        // The file says `broker` unless it lists `brokers`: the library knows brokers only.
        const bool one_broker = field.starts_with("brokers") && !table.contains("brokers");
        const std::string path = one_broker ? "broker" : field;
        const toml::node* at = &table;
        for (std::string probe = path; !probe.empty();) {
            if (auto view = table.at_path(probe)) {
                at = view.node();
                break;
            }
            const auto cut = probe.find_last_of(".[");
            probe = cut == std::string::npos ? std::string() : probe.substr(0, cut);
        }
        // The reader already said what is wrong with this key ("missing", a type).
        if (!problems.has(prefix + "." + path)) problems.add(at, prefix + "." + path, what);
    }
    if (!any) problems.add(&table, prefix, error.what());
}

Options read_session(TableReader& r, const LoadOptions& load) {
    Options o;
    set(r.string("name", true), o.name);
    auto broker = r.string("broker");
    auto brokers = r.strings("brokers");
    if (broker && brokers) {
        r.problem("brokers", "give broker or brokers, not both");
        o.brokers = std::move(*brokers);  // checked as if alone
    } else if (broker) {
        o.brokers = {std::move(*broker)};
    } else if (brokers) {
        o.brokers = std::move(*brokers);
    } else if (!r.table().contains("broker") && !r.table().contains("brokers")) {
        r.problem("broker", "missing (required): broker = \"tcp://host:1883\" or brokers = [...]");
    }
    set(r.string("client_id"), o.client_id);
    if (!load.instance.empty() && !o.client_id.empty()) o.client_id += "-" + load.instance;
    set(r.choice<Protocol>("protocol", {{"3.1.1", Protocol::v311}, {"5", Protocol::v5}}),
        o.protocol);
    set(r.seconds("keep_alive"), o.keep_alive);
    set(r.boolean("clean_session"), o.clean_session);
    if (auto persistent = r.boolean("persistent"); persistent && *persistent) {
        o.persistent = true;
        // As SessionBuilder::persistent(): the broker keeps the session too.
        if (!r.table().contains("clean_session")) o.clean_session = false;
    }
    set_duration(r.duration("connect_timeout"), o.connect_timeout);
    set_duration(r.duration("write_timeout"), o.write_timeout);
    set_duration(r.duration("disconnect_timeout"), o.disconnect_timeout);
    if (auto v = r.integer("message_channel_size", 1, std::int64_t{1} << 40)) {
        o.message_channel_size = static_cast<std::size_t>(*v);
    }
    if (auto v = r.seconds("session_expiry")) {
        if (!o.connect_properties) o.connect_properties.emplace();
        o.connect_properties->session_expiry = *v;
    }
    r.table("credentials", [&](TableReader& t) { read_credentials(t, o); });
    r.table("reconnect", [&](TableReader& t) { read_reconnect(t, o.reconnect); });
    r.table("tls", [&](TableReader& t) { read_tls(t, o.tls.emplace()); });
    r.table("performance", [&](TableReader& t) { read_performance(t, o.performance); });
    r.table("storage", [&](TableReader& t) { read_storage(t, o.storage.emplace()); });
    r.table("will", [&](TableReader& t) { read_will(t, o.will.emplace()); });
    r.table("connect_properties", [&](TableReader& t) {
        const auto expiry =
            o.connect_properties ? o.connect_properties->session_expiry : std::nullopt;
        read_connect_properties(t, o.connect_properties.emplace());
        if (expiry && !o.connect_properties->session_expiry)
            o.connect_properties->session_expiry = expiry;
    });
    r.finish();
    return o;
}

ForwarderConfig read_forwarder(TableReader& r, Problems& problems, const std::string& key) {
    // What the checks against the sessions need, also when the builder refuses the rest.
    ForwarderConfig names;
    names.name = r.string("name", true).value_or("");
    names.target = r.string("target", true).value_or("");
    ForwarderBuilder b(names.name);
    b.target(names.target);
    const auto sources = r.tables("sources", true);
    for (std::size_t i = 0; i < sources.size(); ++i) {
        auto source = r.element(*sources[i], "sources", i);
        auto session = source.string("session", true);
        auto filters = source.strings("filters", true);
        source.finish();
        names.sources.push_back(
            {session.value_or(""), filters.value_or(std::vector<std::string>{})});
        b.source(names.sources.back().session, names.sources.back().filters);
    }
    const auto mappings = r.tables("mappings");
    for (std::size_t i = 0; i < mappings.size(); ++i) {
        auto mapping = r.element(*mappings[i], "mappings", i);
        auto from = mapping.string("from", true);
        auto to = mapping.string("to", true);
        mapping.finish();
        if (from && to) b.map_topic(std::move(*from), std::move(*to));
    }
    if (auto v = r.integer("qos", 0, 2)) b.qos(static_cast<int>(*v));
    if (auto v = r.boolean("keep_retain")) b.retain(*v);
    if (auto v = r.string("share_group")) b.share_group(std::move(*v));
    if (auto v = r.string("prefix")) b.prefix(std::move(*v));
    for (auto& filter : r.strings("topic_filters").value_or(std::vector<std::string>{})) {
        b.filter_topic(std::move(filter));
    }
    for (auto& pattern : r.strings("payload_patterns").value_or(std::vector<std::string>{})) {
        b.filter_payload(std::move(pattern));
    }
    for (auto& [field, value] : r.string_table("set_json").value_or(UserProperties{})) {
        b.set_json_field(std::move(field), std::move(value));
    }
    for (auto& [k, value] : r.string_table("metadata").value_or(UserProperties{})) {
        b.metadata(std::move(k), std::move(value));
    }
    if (auto v = r.boolean("json_envelope")) b.json_envelope(*v);
    if (auto v = r.choice<ForwardMode>("mode", {{"at_least_once", ForwardMode::at_least_once},
                                                {"decoupled", ForwardMode::decoupled}})) {
        b.mode(*v);
    }
    if (auto v = r.duration("handoff_timeout")) b.handoff_timeout(*v);
    ForwarderConfig defaults;
    auto buffer_size = r.integer("buffer_size", 1, std::int64_t{1} << 40);
    auto overflow = r.choice<Overflow>("overflow", {{"block", Overflow::block},
                                                    {"drop_oldest", Overflow::drop_oldest},
                                                    {"drop_newest", Overflow::drop_newest}});
    b.buffer(buffer_size ? static_cast<std::size_t>(*buffer_size) : defaults.buffer_size,
             overflow.value_or(defaults.overflow));
    if (auto v = r.integer("max_hops", 1, 1 << 20)) b.max_hops(static_cast<int>(*v));
    if (auto v = r.boolean("enabled")) b.enabled(*v);
    r.finish();
    try {
        return b.build();
    } catch (const Error& e) {
        place(problems, r.table(), key, e);
        return names;
    }
}

// What needs both a forwarder and its sessions: names, and what the sessions' protocols
// allow (as ForwarderManager::add() checks, but with the place in the file).
void check_forwarder(TableReader& r, const ForwarderConfig& f,
                     const std::map<std::string, const Options*, std::less<>>& sessions,
                     Problems& problems) {
    std::set<std::string, std::less<>> names;
    for (const auto& [name, options] : sessions) names.insert(name);
    std::string known;
    for (const auto& name : names) known += (known.empty() ? "" : ", ") + name;
    const auto unknown = [&](const toml::node* at, const std::string& key,
                             const std::string& name) {
        problems.add(at, key,
                     "unknown session '" + name + "'" + suggestion(name, names) +
                         (known.empty() ? "; no session is defined" : "; sessions: " + known));
    };
    const auto& table = r.table();
    const auto target = sessions.find(f.target);
    if (!f.target.empty() && target == sessions.end()) {
        unknown(table.get("target"), r.key("target"), f.target);
    }
    for (std::size_t i = 0; i < f.sources.size(); ++i) {
        const auto& source = f.sources[i];
        const std::string key = r.key("sources[" + std::to_string(i) + "].session");
        const auto* at = table.at_path("sources[" + std::to_string(i) + "].session").node();
        if (source.session.empty()) continue;  // reported as missing
        if (!sessions.contains(source.session)) {
            unknown(at, key, source.session);
            continue;
        }
        if (target == sessions.end() || source.session != f.target) continue;
        if (target->second->protocol != Protocol::v5) {
            problems.add(at, key,
                         "source and target are one MQTT 3.1.1 session: without no_local "
                         "(MQTT 5) its forwarded messages would come back");
        } else if (!f.share_group.empty()) {
            problems.add(at, key,
                         "source and target are one session, which a shared subscription "
                         "cannot do (MQTT 5 forbids no_local on one)");
        }
    }
    if (target != sessions.end() && !f.metadata.empty() && !f.json_envelope &&
        target->second->protocol != Protocol::v5) {
        problems.add(table.get("metadata"), r.key("metadata"),
                     "target '" + f.target +
                         "' speaks MQTT 3.1.1, which has no user properties: "
                         "set json_envelope = true or protocol = \"5\" on the target");
    }
}

}  // namespace

std::string ConfigProblem::text() const {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    return out + ": " + key + ": " + what;
}

bool parse_listen(std::string_view text, HttpConfig& http, std::string& problem) {
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find("]:");
        if (close == std::string_view::npos) {
            problem = "expected \"[IPv6]:PORT\", got \"" + std::string(text) + "\"";
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) {
            problem = "expected \"HOST:PORT\", got \"" + std::string(text) + "\"";
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    int number = -1;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (host.empty() || error != std::errc() || end != port.data() + port.size() || number < 0 ||
        number > 65535) {
        problem =
            "expected \"HOST:PORT\" with a port from 0 to 65535, got \"" + std::string(text) + "\"";
        return false;
    }
    http.host = std::string(host);
    http.port = number;
    return true;
}

ParseResult parse_config(std::string_view text, const std::string& file, const LoadOptions& load) {
    ParseResult result;
    Problems problems(file, result.problems);
    toml::table root;
    try {
        root = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        result.problems.push_back({file, e.source().begin.line, e.source().begin.column, "(syntax)",
                                   std::string(e.description())});
        return result;
    }
    auto& config = result.config;
    TableReader top(root, "", problems);
    top.table("bridge", [&](TableReader& r) {
        set(r.duration("drain_timeout"), config.drain_timeout);
        set(r.choice<std::string>("log_level", {{"trace", "trace"},
                                                {"debug", "debug"},
                                                {"info", "info"},
                                                {"warn", "warn"},
                                                {"error", "error"},
                                                {"critical", "critical"},
                                                {"off", "off"}}),
            config.log_level);
        r.finish();
    });
    top.table("http", [&](TableReader& r) {
        set(r.boolean("enabled"), config.http.enabled);
        if (auto listen = r.string("listen")) {
            std::string problem;
            if (!parse_listen(*listen, config.http, problem)) r.problem("listen", problem);
        }
        r.finish();
    });
    if (!load.log_level.empty()) {
        static const std::set<std::string, std::less<>> levels{"trace", "debug",    "info", "warn",
                                                               "error", "critical", "off"};
        if (levels.contains(load.log_level)) {
            config.log_level = load.log_level;
        } else {
            result.problems.push_back(
                {file, 0, 0, "--log-level",
                 "one of trace, debug, info, warn, error, critical, off; got '" + load.log_level +
                     "'"});
        }
    }
    if (!load.listen.empty()) {
        std::string problem;
        config.http.enabled = true;
        if (!parse_listen(load.listen, config.http, problem)) {
            result.problems.push_back({file, 0, 0, "--listen", problem});
        }
    }
    if (load.instance.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_.") != std::string::npos) {
        result.problems.push_back(
            {file, 0, 0, "--instance",
             "only letters, digits, '-', '_' and '.' (it joins client ids), got '" + load.instance +
                 "'"});
    }

    std::map<std::string, const Options*, std::less<>> by_name;
    const auto sessions = top.tables("sessions");
    config.sessions.reserve(sessions.size());
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        auto r = top.element(*sessions[i], "sessions", i);
        auto options = read_session(r, load);
        const std::string key = "sessions[" + std::to_string(i) + "]";
        try {
            validate(options);
        } catch (const Error& e) {
            place(problems, *sessions[i], key, e);
        }
        if (!options.name.empty() && by_name.contains(options.name)) {
            problems.add(sessions[i]->get("name"), key + ".name",
                         "a session named '" + options.name + "' is defined above");
        }
        config.sessions.push_back({std::move(options), *sessions[i]});
        by_name.emplace(config.sessions.back().options.name, &config.sessions.back().options);
    }
    std::set<std::string> forwarder_names;
    const auto forwarders = top.tables("forwarders");
    for (std::size_t i = 0; i < forwarders.size(); ++i) {
        auto r = top.element(*forwarders[i], "forwarders", i);
        const std::string key = "forwarders[" + std::to_string(i) + "]";
        auto forwarder = read_forwarder(r, problems, key);
        check_forwarder(r, forwarder, by_name, problems);
        if (!forwarder.name.empty() && !forwarder_names.insert(forwarder.name).second) {
            problems.add(forwarders[i]->get("name"), key + ".name",
                         "a forwarder named '" + forwarder.name + "' is defined above");
        }
        config.forwarders.push_back({std::move(forwarder), *forwarders[i]});
    }
    top.finish();
    // In the order of the file, as a reader fixes them.
    std::stable_sort(result.problems.begin(), result.problems.end(),
                     [](const auto& a, const auto& b) {
                         return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    return result;
}

BridgeConfig load_config(const std::string& path, const LoadOptions& options) {
    std::string problem;
    const std::string text = read_file(path, problem);
    if (!problem.empty()) throw Error(ErrorKind::storage, "mqttx-bridge: " + problem);
    auto result = parse_config(text, path, options);
    if (result.problems.empty()) return std::move(result.config);
    std::string message = std::to_string(result.problems.size()) + " problem" +
                          (result.problems.size() == 1 ? "" : "s") + " in the configuration:";
    for (const auto& p : result.problems) message += "\n" + p.text();
    throw Error(ErrorKind::configuration, message);
}

}  // namespace mqttx::bridge
