// Bridge: a running configuration. Owns the SessionManager; start() adds the sessions and
// forwarders of the file, reload() replaces what changed in it, drain() hands over what
// is queued and closes. Everything here goes through the library's public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "config.hpp"
#include "mqttx/session_manager.hpp"

namespace mqttx::bridge {

class Bridge {
  public:
    Bridge(BridgeConfig config, std::string config_path, LoadOptions load);
    ~Bridge();
    Bridge(const Bridge&) = delete;
    Bridge& operator=(const Bridge&) = delete;

    // Adds every session and forwarder, then starts the sessions' connects (a persistent
    // session's kept messages find their forwarders' routes); returns at once. A session
    // or forwarder the library refuses is logged and reported by not_ready().
    void start();
    // Reads the file again. Valid: sessions and forwarders that changed are replaced (a
    // forwarder also when a session it uses is), the others keep running untouched. Not
    // valid: every problem is logged and the running configuration stays. True if valid
    // and applied without error.
    bool reload();
    // Stops taking messages (closes the sessions that are only sources), waits up to
    // `deadline` for the targets to hand over what they hold, then closes everything
    // (without unsubscribing: persistent sessions keep their subscriptions at the
    // brokers). Returns how many messages were left undelivered.
    std::uint64_t drain(std::chrono::milliseconds deadline);

    BridgeConfig config() const;
    SessionManager& manager() noexcept { return manager_; }
    // The bridge's own Prometheus families (reloads, last success, instance).
    std::string metrics_text() const;
    // Reasons not to be ready beyond the library's: draining, what could not be started.
    std::vector<std::string> not_ready() const;

  private:
    void add_session(const SessionEntry& entry);
    void connect(const std::string& session);
    void add_forwarder(const ForwarderEntry& entry);
    void replace_forwarder(const ForwarderEntry& entry);
    // Runs `call`: true when it returned; else logs and keeps for /readyz "what: failing:
    // why" (what: "session a", "forwarder f").
    bool attempt(const std::string& what, const std::string& failing,
                 const std::function<void()>& call);
    // "session a" / "forwarder f": what could not be started, and why.
    void set_failed(const std::string& what, std::string why);
    void clear_failed(const std::string& what);
    bool failed(const std::string& what) const;
    // Messages accepted by the running forwarders' targets or queued in decoupled
    // forwarders, not yet confirmed by the target broker.
    std::uint64_t queued(const std::set<std::string>& targets) const;
    std::set<std::string> running_targets();

    SessionManager manager_;
    const std::string path_;
    const LoadOptions load_;
    BridgeConfig config_;  // written under both mutexes, read under either

    // Held by start(), reload() and drain() while they change the manager: one at a time.
    std::mutex change_mutex_;
    // Held briefly: HTTP requests read what it guards while a reload or drain runs.
    mutable std::mutex state_mutex_;
    std::map<std::string, std::string> failed_;
    bool draining_ = false;
    std::uint64_t reloads_succeeded_ = 0;
    std::uint64_t reloads_failed_ = 0;
    std::chrono::system_clock::time_point last_success_;
};

}  // namespace mqttx::bridge
