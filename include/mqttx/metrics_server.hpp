// MetricsServer: serves a SessionManager's Prometheus text at /metrics and its health
// at /healthz over HTTP (cpp-httplib). A separate library, mqttx::http, so that the
// core library does not depend on an HTTP server:
//   target_link_libraries(app PRIVATE mqttx::mqttx mqttx::http)
#pragma once

#include <memory>
#include <string>

namespace mqttx {

class SessionManager;

struct MetricsServerOptions {
    std::string address = "127.0.0.1";  // loopback unless asked otherwise
    int port = 9464;                    // 0: a free port, see MetricsServer::port()
    std::string metrics_path = "/metrics";
    // 200 "ok" when every session is connected (or there is none); 503 listing the
    // sessions that are not, with their state.
    std::string health_path = "/healthz";
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
