// GlobalRoute: a route of the manager (handle, listen) that lives on every session,
// present and future: one RouteEntry per session, stopped together.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mqttx/message.hpp"
#include "mqttx/route.hpp"
#include "mqttx/subscribe_options.hpp"
#include "router.hpp"

namespace mqttx::detail {

class SessionCore;
class GlobalRoutes;

class GlobalRoute final : public RouteHandle {
  public:
    GlobalRoute(std::string filter, int qos, MessageHandler handler, SubscribeOptions options,
                std::weak_ptr<GlobalRoutes> owner);

    // Adds this route to `session` unless it is there already; throws what
    // SessionCore::subscribe throws.
    void apply_to(const std::shared_ptr<SessionCore>& session);

    // Drops what belongs to a removed session (its routes stopped with it).
    void forget(const SessionCore* session) noexcept;

    void stop() noexcept override;
    bool active() const noexcept override;
    RouteStats stats() const noexcept override;
    const std::string& filter() const noexcept override { return filter_; }

  private:
    const std::string filter_;
    const int qos_;
    const MessageHandler handler_;
    const SubscribeOptions options_;
    const std::weak_ptr<GlobalRoutes> owner_;
    std::mutex apply_mutex_;  // held through apply_to(); stop() waits for it
    mutable std::mutex mutex_;
    std::set<const SessionCore*> applied_;
    // Per session; a removed session's are forgotten (their stats with them).
    std::vector<std::pair<const SessionCore*, std::shared_ptr<RouteEntry>>> entries_;
    bool stopped_ = false;
};

// The manager's list of global routes, applied to each session it adds.
class GlobalRoutes {
  public:
    void add(const std::shared_ptr<GlobalRoute>& route);
    void remove(const GlobalRoute* route) noexcept;
    void forget(const SessionCore* session) noexcept;
    std::vector<std::shared_ptr<GlobalRoute>> snapshot() const;

  private:
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<GlobalRoute>> routes_;
};

}  // namespace mqttx::detail
