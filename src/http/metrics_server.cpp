#include "mqttx/metrics_server.hpp"

#include <httplib.h>

#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "mqttx/error.hpp"
#include "mqttx/session_manager.hpp"
#include "problems.hpp"
#include "thread_name.hpp"

namespace mqttx {
namespace {

constexpr const char* prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

void check(const MetricsServerOptions& options) {
    detail::Problems problems;
    if (options.address.empty()) problems.add("address", "must not be empty");
    if (options.port < 0 || options.port > 65535) problems.add("port", "must be 0 to 65535");
    // cpp-httplib takes a route as a regular expression: plain path characters only.
    const auto plain = [](const std::string& path) {
        return !path.empty() && path.front() == '/' &&
               path.find_first_not_of(
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789/_-") == std::string::npos;
    };
    const std::pair<const char*, const std::string*> paths[] = {
        {"metrics_path", &options.metrics_path},
        {"health_path", &options.health_path},
        {"ready_path", &options.ready_path}};
    for (std::size_t i = 0; i < std::size(paths); ++i) {
        const auto& [field, path] = paths[i];
        if (!plain(*path)) {
            problems.add(field, "must start with '/' and hold only letters, digits, '/', '_', '-'");
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (*paths[j].second == *path) {
                problems.add(field, "must differ from " + std::string(paths[j].first));
            }
        }
    }
    if (!problems.empty()) problems.raise("invalid MetricsServerOptions");
}

// One line per session not connected and per running forwarder not subscribed.
std::string readiness(const SessionManager& manager) {
    std::string reasons;
    for (const auto& [name, state] : manager.get_all_sessions_status()) {
        if (state != SessionState::connected) {
            reasons += "session " + name + ": " + to_string(state) + "\n";
        }
    }
    for (const auto& [name, metrics] : manager.forwarders().all_metrics()) {
        if (metrics.running && !metrics.subscribed) {
            reasons += "forwarder " + name + ": not subscribed\n";
        }
    }
    return reasons;
}

}  // namespace

struct MetricsServer::Impl {
    httplib::Server server;
    std::thread thread;
    int port = 0;
};

MetricsServer::MetricsServer(const SessionManager& manager, MetricsServerOptions options)
    : impl_(std::make_unique<Impl>()) {
    check(options);
    auto& server = impl_->server;
    server.Get(options.metrics_path, [&manager, extra = options.extra_metrics](
                                         const httplib::Request&, httplib::Response& res) {
        try {
            std::string text = manager.prometheus_text();
            if (extra) text += extra();
            res.set_content(text, prometheus_content_type);
        } catch (const std::exception& e) {
            res.status = 500;
            res.set_content(std::string("metrics failed: ") + e.what() + "\n", "text/plain");
        }
    });
    server.Get(options.health_path, [](const httplib::Request&, httplib::Response& res) {
        res.set_content("ok\n", "text/plain; charset=utf-8");
    });
    server.Get(options.ready_path, [&manager, not_ready = options.not_ready](
                                       const httplib::Request&, httplib::Response& res) {
        try {
            std::string reasons = readiness(manager);
            if (not_ready) {
                for (const auto& reason : not_ready()) reasons += reason + "\n";
            }
            res.status = reasons.empty() ? 200 : 503;
            res.set_content(reasons.empty() ? "ready\n" : reasons, "text/plain; charset=utf-8");
        } catch (const std::exception& e) {
            res.status = 500;
            res.set_content(std::string("readiness failed: ") + e.what() + "\n", "text/plain");
        }
    });
    // Not cpp-httplib's default SO_REUSEPORT: a second server on a busy port must fail,
    // not share the port and answer half of the scrapes.
    server.set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    const bool bound = options.port == 0
                           ? (impl_->port = server.bind_to_any_port(options.address)) > 0
                           : server.bind_to_port(options.address, options.port);
    if (!bound) {
        throw Error(ErrorKind::connection, "the metrics server cannot listen")
            .with_context("address", options.address)
            .with_context("port", options.port);
    }
    if (options.port != 0) impl_->port = options.port;
    impl_->thread = std::thread([this] {
        detail::name_this_thread("mqttx-metrics");
        impl_->server.listen_after_bind();
    });
    // A stop() before the thread reaches its accept loop would be missed and the join
    // would hang: return only once it serves (it is at once; the bound is a safeguard).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!server.is_running()) {
        stop();
        throw Error(ErrorKind::connection, "the metrics server did not start serving")
            .with_context("address", options.address)
            .with_context("port", impl_->port);
    }
}

MetricsServer::~MetricsServer() {
    stop();
}

int MetricsServer::port() const noexcept {
    return impl_->port;
}

void MetricsServer::stop() noexcept {
    if (!impl_->thread.joinable()) return;
    impl_->server.stop();
    impl_->thread.join();
}

}  // namespace mqttx
