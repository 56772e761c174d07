// Router: a session's subscription tree (one trie node per topic level) that finds
// the routes matching an incoming topic without scanning every route, and hands
// the message to each route's handler.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mqttx/message.hpp"
#include "mqttx/route.hpp"
#include "session_stats.hpp"

namespace spdlog {
class logger;
}

namespace mqttx::detail {

class RouteEntry;

// Whoever created a route and must hear when it stops (to unsubscribe at the broker).
class RouteOwner {
  public:
    virtual ~RouteOwner() = default;
    virtual void remove_route(RouteEntry& entry) noexcept = 0;
    // The QoS the broker granted the route's filter in the current session; -1 unknown.
    virtual int granted_qos(const RouteEntry&) const noexcept { return -1; }
};

class RouteEntry final : public RouteHandle {
  public:
    // `on_receive_thread`: the handler runs on Paho's receive thread, before Paho
    // acknowledges the message to the broker (SubscribeOptions::handler_thread).
    RouteEntry(std::string filter, int qos, MessageHandler handler, std::weak_ptr<RouteOwner> owner,
               bool on_receive_thread = false);

    void stop() noexcept override;
    bool active() const noexcept override { return active_.load(std::memory_order_acquire); }
    RouteStats stats() const noexcept override;
    const std::string& filter() const noexcept override { return filter_; }
    int granted_qos() const noexcept override;
    int qos() const noexcept { return qos_; }
    bool on_receive_thread() const noexcept { return on_receive_thread_; }

    // Runs the handler; false when it threw (counted and logged here).
    bool deliver(const Message& message, spdlog::logger& log) noexcept;
    // Marks the route stopped without telling the owner (the owner is removing it) and
    // waits until no thread runs its handler any more, so whatever the handler uses
    // may be destroyed once this returns. Called from inside a handler it does not wait
    // (a handler stopping its own route, or two handlers stopping each other's, would
    // wait forever): the route is inactive, a handler already running elsewhere ends.
    void deactivate() noexcept;

  private:
    const std::string filter_;
    const int qos_;
    const MessageHandler handler_;
    const std::weak_ptr<RouteOwner> owner_;
    const bool on_receive_thread_;
    std::atomic<bool> active_{true};
    std::atomic<bool> stop_requested_{false};
    std::atomic<int> running_{0};  // threads inside the handler now
    std::atomic<std::uint64_t> received_{0};
    std::atomic<std::uint64_t> bytes_{0};
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::int64_t> last_message_ns_{0};
};

class Router {
  public:
    Router(std::shared_ptr<SessionStats> stats, std::shared_ptr<spdlog::logger> log);
    ~Router();

    void insert(const std::shared_ptr<RouteEntry>& entry);
    // True when the entry was present.
    bool erase(const RouteEntry& entry);
    // Removes and returns every route on exactly `filter`.
    std::vector<std::shared_ptr<RouteEntry>> take_filter(std::string_view filter);
    // Removes and returns every route.
    std::vector<std::shared_ptr<RouteEntry>> take_all();
    // The counters of every route, summed per filter (several routes may share one).
    std::map<std::string, RouteStats> stats_by_filter() const;

    // Appends the routes whose filter matches `topic` (MQTT rules, '$' topics included).
    void match(std::string_view topic, std::vector<std::shared_ptr<RouteEntry>>& out) const;
    // Which routes a delivery serves: on Paho's receive thread the routes that asked for
    // it, on a dispatcher thread the others, or all of them (ManagerOptions::inline_handlers).
    enum class Pass { receive_thread, dispatcher, all };
    // Every matching route of the pass gets the message. Returns whether matching routes
    // of the other pass are left (for Pass::receive_thread: whether to dispatch at all).
    // A message that matches no route at all is counted unrouted.
    bool deliver(const Message& message, Pass pass) noexcept;
    // True while some route wants the receive thread (one relaxed load per message).
    bool has_receive_thread_routes() const noexcept {
        return receive_thread_routes_.load(std::memory_order_relaxed) > 0;
    }

  private:
    struct Node;
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using Children = std::unordered_map<std::string, std::unique_ptr<Node>, Hash, std::equal_to<>>;
    struct Node {
        Children children;
        std::unique_ptr<Node> plus;
        std::vector<std::shared_ptr<RouteEntry>> here;   // filters ending at this level
        std::vector<std::shared_ptr<RouteEntry>> below;  // filters ending with '/#' here
        bool empty() const { return children.empty() && !plus && here.empty() && below.empty(); }
    };

    static void collect(const Node& node, std::string_view rest, bool at_end, bool first_level,
                        bool dollar, std::vector<std::shared_ptr<RouteEntry>>& out);
    bool erase_path(Node& node, std::string_view rest, const RouteEntry& entry);

    mutable std::shared_mutex mutex_;
    Node root_;
    std::atomic<int> receive_thread_routes_{0};
    std::shared_ptr<SessionStats> stats_;
    std::shared_ptr<spdlog::logger> log_;
};

}  // namespace mqttx::detail
