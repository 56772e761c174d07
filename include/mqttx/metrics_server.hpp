// MetricsServer: serves a SessionManager's Prometheus text at /metrics, liveness at
// /healthz and readiness at /readyz over HTTP (cpp-httplib). A separate library, mqttx::http, so
// that the core library does not depend on an HTTP server:
//   target_link_libraries(app PRIVATE mqttx::mqttx mqttx::http)
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mqttx {

class SessionManager;

struct MetricsServerOptions {
    std::string address = "127.0.0.1";  // loopback unless asked otherwise
    int port = 9464;                    // 0: a free port, see MetricsServer::port()
    std::string metrics_path = "/metrics";
    // Liveness: 200 "ok" whenever the server answers.
    std::string health_path = "/healthz";
    // Readiness: 200 "ready" when every session is connected and every running forwarder
    // is subscribed (and `not_ready` has nothing to add); 503 with one line per reason
    // otherwise ("session a: reconnecting", "forwarder f: not subscribed").
    std::string ready_path = "/readyz";
    // A program's own Prometheus families, appended to /metrics (declare them with a
    // prefix of their own: families must not repeat). Runs on the server's thread.
    std::function<std::string()> extra_metrics{};
    // A program's own reasons not to be ready, one line each; empty when ready.
    std::function<std::vector<std::string>()> not_ready{};
};

class MetricsServer {
  public:
    // Listens before returning and serves on a thread of its own until stop() or
    // destruction. `manager` must outlive the server. Throws Error: configuration (bad
    // options), connection (the address cannot be listened on).
    explicit MetricsServer(const SessionManager& manager, MetricsServerOptions options = {});
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    int port() const noexcept;
    // Stops listening and waits for the serving thread. Idempotent; never throws.
    void stop() noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mqttx
