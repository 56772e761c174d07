#include "prometheus_text.hpp"

#include <chrono>

namespace mqttx::detail {
namespace {

constexpr auto counter = MetricType::counter;
constexpr auto gauge = MetricType::gauge;
constexpr auto histogram = MetricType::histogram;

// Seconds since the epoch; 0 for "never" (the epoch itself).
// Through milliseconds, so the seconds print as "1764100000.123", not with a long tail.
double timestamp(std::chrono::system_clock::time_point time) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
    return static_cast<double>(ms) / 1000.0;
}

constexpr SessionState states[] = {SessionState::disconnected, SessionState::connecting,
                                   SessionState::connected, SessionState::reconnecting,
                                   SessionState::closed};

}  // namespace

void declare_manager_families(PrometheusExporter& e) {
    e.declare("manager_sessions", gauge, "Sessions of the manager, by connection state.");
    e.declare("manager_forwarders", gauge, "Forwarders registered with the manager.");
    e.declare("manager_messages_sent_total", counter,
              "Messages accepted by publish() over all sessions.");
    e.declare("manager_messages_received_total", counter,
              "Messages received from brokers over all sessions.");
    e.declare("manager_bytes_sent_total", counter, "Payload bytes sent over all sessions.");
    e.declare("manager_bytes_received_total", counter, "Payload bytes received over all sessions.");
    e.declare("manager_errors_total", counter, "Errors over all sessions.");
    e.declare("manager_reconnects_total", counter, "Reconnects over all sessions.");
    e.declare("manager_sessions_stalled", gauge,
              "Sessions whose oldest in-flight publish has waited past in_flight_stall_after.");
}

void add_manager(PrometheusExporter& e, const ManagerMetrics& m) {
    e.add("manager_sessions", {{"state", "disconnected"}}, m.sessions_disconnected);
    e.add("manager_sessions", {{"state", "connecting"}}, m.sessions_connecting);
    e.add("manager_sessions", {{"state", "connected"}}, m.sessions_connected);
    e.add("manager_sessions", {{"state", "reconnecting"}}, m.sessions_reconnecting);
    e.add("manager_forwarders", {}, m.forwarders);
    e.add("manager_messages_sent_total", {}, m.messages_sent);
    e.add("manager_messages_received_total", {}, m.messages_received);
    e.add("manager_bytes_sent_total", {}, m.bytes_sent);
    e.add("manager_bytes_received_total", {}, m.bytes_received);
    e.add("manager_errors_total", {}, m.errors);
    e.add("manager_reconnects_total", {}, m.reconnects);
    e.add("manager_sessions_stalled", {}, m.sessions_stalled);
}

void declare_session_families(PrometheusExporter& e) {
    e.declare("session_connected", gauge, "1 when the session is connected to a broker, else 0.");
    e.declare("session_state", gauge, "1 for the session's current connection state.");
    e.declare("session_messages_sent_total", counter, "Messages accepted by publish().");
    e.declare("session_messages_received_total", counter, "Messages received from the broker.");
    e.declare("session_bytes_sent_total", counter, "Payload bytes of the messages sent.");
    e.declare("session_bytes_received_total", counter, "Payload bytes of the messages received.");
    e.declare("session_errors_total", counter, "Failed operations and message handler exceptions.");
    e.declare("session_reconnects_total", counter, "Successful connects after the first.");
    e.declare("session_dropped_messages_total", counter,
              "Received messages dropped because a dispatch queue was full.");
    e.declare("session_offline_dropped_messages_total", counter,
              "Publishes dropped from the offline buffer to make room (drop_oldest).");
    e.declare("session_unrouted_messages_total", counter,
              "Received messages that no route wanted.");
    e.declare("session_invalid_received_messages_total", counter,
              "Received messages dropped before routing: their topic breaks the MQTT rules.");
    e.declare("session_poison_publishes_total", counter,
              "Publishes given up: the broker closed the connection each time they were sent.");
    e.declare("session_window_stalls_total", counter,
              "Times the oldest in-flight publish waited in_flight_stall_after for the broker.");
    e.declare("session_window_stalled", gauge,
              "1 while the oldest in-flight publish has waited past in_flight_stall_after.");
    e.declare("session_active_subscriptions", gauge, "Broker subscriptions of the session.");
    e.declare("session_offline_buffer_messages", gauge,
              "Publishes accepted and not yet handed to the client (the offline buffer).");
    e.declare("session_in_flight_messages", gauge,
              "Publishes handed to the client and not yet confirmed by the broker.");
    e.declare("session_messages_per_second", gauge,
              "Messages sent and received per second over the last 10 seconds.");
    e.declare("session_bytes_per_second", gauge,
              "Payload bytes sent and received per second over the last 10 seconds.");
    e.declare("session_average_messages_per_second", gauge,
              "Messages sent and received per second since the session was added.");
    e.declare("session_start_time_seconds", gauge,
              "When the session was added (or its metrics reset), in Unix seconds.");
    e.declare("session_last_message_timestamp_seconds", gauge,
              "When the last message was sent or received, in Unix seconds; 0 if none.");
    e.declare("session_last_error_timestamp_seconds", gauge,
              "When the last error happened, in Unix seconds; 0 if none.");
    e.declare("session_publish_latency_seconds", histogram,
              "QoS 1/2 publishes: from publish() to the broker's acknowledgement.");
    e.declare("session_storage_operations_total", counter,
              "Storage operations of a persistent session, by operation.");
    e.declare("session_storage_errors_total", counter, "Failed storage operations.");
    e.declare("session_storage_corrupt_records_total", counter,
              "Damaged storage records found, reported and skipped.");
    e.declare("session_storage_bytes", gauge,
              "File storage: bytes of its log on disk, dead records included.");
    e.declare("session_storage_segments", gauge, "File storage: segment files of its log.");
    e.declare("session_storage_compactions_total", counter,
              "File storage: segments rewritten without their dead records, then deleted.");
    e.declare("session_storage_syncs_total", counter,
              "File storage with file_sync: group commits (fdatasync of the log).");
    e.declare("session_storage_synced_records_total", counter,
              "File storage with file_sync: records the group commits made durable.");
    e.declare("session_storage_unsynced_records", gauge,
              "Records written and not durable yet: waiting for a group commit (file "
              "storage with file_sync) or for Redis's reply.");
    e.declare("session_storage_truncated_tails_total", counter,
              "File storage: torn or damaged segment tails cut at open.");
    e.declare("route_messages_total", counter,
              "Messages handed to the handlers of the routes on a filter.");
    e.declare("route_bytes_total", counter,
              "Payload bytes handed to the handlers of the routes on a filter.");
    e.declare("route_errors_total", counter, "Exceptions thrown by the handlers on a filter.");
}

void add_session(PrometheusExporter& e, const SessionSample& s) {
    const auto& m = s.metrics;
    const Label session{"session", s.name};
    e.add("session_connected", {session}, m.connected ? 1 : 0);
    for (const auto state : states) {
        e.add("session_state", {session, {"state", to_string(state)}}, m.state == state ? 1 : 0);
    }
    e.add("session_messages_sent_total", {session}, m.messages_sent);
    e.add("session_messages_received_total", {session}, m.messages_received);
    e.add("session_bytes_sent_total", {session}, m.bytes_sent);
    e.add("session_bytes_received_total", {session}, m.bytes_received);
    e.add("session_errors_total", {session}, m.errors);
    e.add("session_reconnects_total", {session}, m.reconnects);
    e.add("session_dropped_messages_total", {session}, m.dropped);
    e.add("session_offline_dropped_messages_total", {session}, m.offline_dropped);
    e.add("session_unrouted_messages_total", {session}, m.unrouted);
    e.add("session_invalid_received_messages_total", {session}, m.invalid_received);
    e.add("session_poison_publishes_total", {session}, m.poison_publishes);
    e.add("session_window_stalls_total", {session}, m.window_stalls);
    e.add("session_window_stalled", {session}, m.window_stalled ? 1 : 0);
    e.add("session_active_subscriptions", {session}, m.active_subscriptions);
    e.add("session_offline_buffer_messages", {session}, m.outbox_waiting);
    e.add("session_in_flight_messages", {session}, m.in_flight);
    e.add("session_messages_per_second", {session}, m.message_rate);
    e.add("session_bytes_per_second", {session}, m.bytes_rate);
    e.add("session_average_messages_per_second", {session}, m.average_message_rate);
    e.add("session_start_time_seconds", {session}, timestamp(m.started));
    e.add("session_last_message_timestamp_seconds", {session}, timestamp(m.last_message));
    e.add("session_last_error_timestamp_seconds", {session}, timestamp(m.last_error));
    e.add("session_publish_latency_seconds", {session}, m.publish_latency);
    if (s.storage) {
        e.add("session_storage_operations_total", {session, {"operation", "put"}}, s.storage->puts);
        e.add("session_storage_operations_total", {session, {"operation", "get"}}, s.storage->gets);
        e.add("session_storage_operations_total", {session, {"operation", "remove"}},
              s.storage->removes);
        e.add("session_storage_errors_total", {session}, s.storage->errors);
        e.add("session_storage_corrupt_records_total", {session}, s.storage->corrupt_records);
        e.add("session_storage_bytes", {session}, s.storage->bytes_on_disk);
        e.add("session_storage_segments", {session}, s.storage->segments);
        e.add("session_storage_compactions_total", {session}, s.storage->compactions);
        e.add("session_storage_syncs_total", {session}, s.storage->syncs);
        e.add("session_storage_synced_records_total", {session}, s.storage->synced_records);
        e.add("session_storage_unsynced_records", {session}, s.storage->unsynced_records);
        e.add("session_storage_truncated_tails_total", {session}, s.storage->truncated_tails);
    }
    for (const auto& [filter, stats] : s.routes) {
        const Label on{"filter", filter};
        e.add("route_messages_total", {session, on}, stats.received);
        e.add("route_bytes_total", {session, on}, stats.bytes);
        e.add("route_errors_total", {session, on}, stats.errors);
    }
}

void declare_forwarder_families(PrometheusExporter& e) {
    e.declare("forwarder_running", gauge, "1 while the forwarder is started, else 0.");
    e.declare("forwarder_subscribed", gauge,
              "1 while every source subscription of the forwarder is acknowledged, else 0.");
    e.declare("forwarder_queued", gauge, "Messages waiting in a decoupled forwarder's queue.");
    e.declare("forwarder_received_total", counter, "Source messages that reached the forwarder.");
    e.declare("forwarder_forwarded_total", counter, "Messages accepted by the target session.");
    e.declare("forwarder_acknowledged_total", counter,
              "Forwarded messages confirmed by the target broker (QoS 0: written).");
    e.declare("forwarder_filtered_total", counter, "Messages stopped by a filter.");
    e.declare("forwarder_transformed_total", counter, "Payloads changed by the transforms.");
    e.declare("forwarder_dropped_total", counter, "Messages dropped, by reason.");
    e.declare("forwarder_errors_total", counter, "Errors of the forwarder.");
    e.declare("forwarder_last_forward_timestamp_seconds", gauge,
              "When the last message was forwarded, in Unix seconds; 0 if none.");
    e.declare("forwarder_latency_seconds", histogram,
              "From a message's arrival at the source to the target broker's acknowledgement.");
}

void add_forwarder(PrometheusExporter& e, std::string_view name, const ForwarderMetrics& m) {
    const Label forwarder{"forwarder", name};
    e.add("forwarder_running", {forwarder}, m.running ? 1 : 0);
    e.add("forwarder_subscribed", {forwarder}, m.subscribed ? 1 : 0);
    e.add("forwarder_queued", {forwarder}, m.queued);
    e.add("forwarder_received_total", {forwarder}, m.received);
    e.add("forwarder_forwarded_total", {forwarder}, m.forwarded);
    e.add("forwarder_acknowledged_total", {forwarder}, m.acknowledged);
    e.add("forwarder_filtered_total", {forwarder}, m.filtered);
    e.add("forwarder_transformed_total", {forwarder}, m.transformed);
    e.add("forwarder_dropped_total", {forwarder, {"reason", "hop_limit"}}, m.dropped_hop_limit);
    e.add("forwarder_dropped_total", {forwarder, {"reason", "buffer_full"}}, m.dropped_buffer_full);
    e.add("forwarder_dropped_total", {forwarder, {"reason", "transform"}}, m.dropped_transform);
    e.add("forwarder_dropped_total", {forwarder, {"reason", "target"}}, m.dropped_target);
    e.add("forwarder_errors_total", {forwarder}, m.errors);
    e.add("forwarder_last_forward_timestamp_seconds", {forwarder}, timestamp(m.last_forward));
    e.add("forwarder_latency_seconds", {forwarder}, m.latency);
}

}  // namespace mqttx::detail
