// The library's own Prometheus families: what SessionManager::prometheus_text() and
// Session::prometheus_metrics() render. Names follow the original Go library
// (mqtt_session_messages_sent_total, mqtt_session_connected, ...); sessions, routes and
// forwarders are told apart by labels, never by topic names.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "mqttx/metrics.hpp"
#include "mqttx/prometheus.hpp"
#include "mqttx/route.hpp"
#include "mqttx/storage.hpp"

namespace mqttx::detail {

struct SessionSample {
    std::string_view name;
    SessionMetrics metrics;
    std::map<std::string, RouteStats> routes;  // by filter
    std::optional<StorageMetrics> storage;
};

void declare_manager_families(PrometheusExporter& exporter);
void add_manager(PrometheusExporter& exporter, const ManagerMetrics& metrics);

void declare_session_families(PrometheusExporter& exporter);
void add_session(PrometheusExporter& exporter, const SessionSample& session);

void declare_forwarder_families(PrometheusExporter& exporter);
void add_forwarder(PrometheusExporter& exporter, std::string_view name,
                   const ForwarderMetrics& metrics);

}  // namespace mqttx::detail
