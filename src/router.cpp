#include "router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mqttx/topic.hpp"

namespace mqttx::detail {

namespace {

// Splits off the first level of `rest`; sets `at_end` when it was the last one.
std::string_view next_level(std::string_view& rest, bool& at_end) noexcept {
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
        auto level = rest;
        rest = {};
        at_end = true;
        return level;
    }
    auto level = rest.substr(0, slash);
    rest.remove_prefix(slash + 1);
    return level;
}

// The filter the broker matches against: the part after "$share/{group}/".
std::string_view matching_filter(std::string_view filter) noexcept {
    if (auto shared = topic::parse_shared(filter)) return shared->filter;
    return filter;
}

}  // namespace

RouteEntry::RouteEntry(std::string filter, int qos, MessageHandler handler,
                       std::weak_ptr<RouteOwner> owner, bool on_receive_thread)
    : filter_(std::move(filter)),
      qos_(qos),
      handler_(std::move(handler)),
      owner_(std::move(owner)),
      on_receive_thread_(on_receive_thread) {}

int RouteEntry::granted_qos() const noexcept {
    const auto owner = owner_.lock();
    return owner && active() ? owner->granted_qos(*this) : -1;
}

void RouteEntry::stop() noexcept {
    const bool first = !stop_requested_.exchange(true);
    deactivate();  // every caller waits for a running handler, not only the first
    if (!first) return;
    if (auto owner = owner_.lock()) owner->remove_route(*this);
}

RouteStats RouteEntry::stats() const noexcept {
    RouteStats stats;
    stats.received = received_.load(std::memory_order_relaxed);
    stats.bytes = bytes_.load(std::memory_order_relaxed);
    stats.errors = errors_.load(std::memory_order_relaxed);
    stats.last_message = time_from_ns(last_message_ns_.load(std::memory_order_relaxed));
    return stats;
}

namespace {
// The route whose handler this thread is running, so a handler may stop its own route.
thread_local const RouteEntry* running_here = nullptr;
}  // namespace

void RouteEntry::deactivate() noexcept {
    // seq_cst pairs with deliver(): either it sees the route inactive, or we see it running.
    active_.store(false);
    // Inside a handler (of any route) we do not wait for other threads: two handlers
    // stopping each other's routes would wait for each other forever.
    if (running_here != nullptr && running_here != this) return;
    const int self = running_here == this ? 1 : 0;
    for (int running = running_.load(); running > self; running = running_.load()) {
        running_.wait(running);
    }
}

bool RouteEntry::deliver(const Message& message, spdlog::logger& log) noexcept {
    running_.fetch_add(1);
    struct Leave {
        RouteEntry& entry;
        const RouteEntry* previous;
        ~Leave() {
            running_here = previous;
            entry.running_.fetch_sub(1);
            entry.running_.notify_all();
        }
    } leave{*this, running_here};
    if (!active_.load()) return true;
    running_here = this;
    received_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(message.payload().size(), std::memory_order_relaxed);
    last_message_ns_.store(  // the arrival time the message carries: no clock read here
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            message.received_at().time_since_epoch())
            .count(),
        std::memory_order_relaxed);
    try {
        handler_(message);
        return true;
    } catch (const std::exception& e) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        log.warn("handler for filter '{}' on session '{}' threw: {}", filter_, message.session(),
                 e.what());
    } catch (...) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        log.warn("handler for filter '{}' on session '{}' threw a non-standard exception", filter_,
                 message.session());
    }
    return false;
}

Router::Router(std::shared_ptr<SessionStats> stats, std::shared_ptr<spdlog::logger> log)
    : stats_(std::move(stats)), log_(std::move(log)) {}

Router::~Router() = default;

void Router::insert(const std::shared_ptr<RouteEntry>& entry) {
    std::unique_lock lock(mutex_);
    if (entry->on_receive_thread()) receive_thread_routes_.fetch_add(1);
    Node* node = &root_;
    std::string_view rest = matching_filter(entry->filter());
    bool at_end = false;
    while (!at_end) {
        const auto level = next_level(rest, at_end);
        if (level == "#") {
            node->below.push_back(entry);
            return;
        }
        std::unique_ptr<Node>* slot;
        if (level == "+") {
            slot = &node->plus;
        } else {
            auto it = node->children.find(level);
            if (it == node->children.end()) {
                it = node->children.emplace(std::string(level), nullptr).first;
            }
            slot = &it->second;
        }
        if (!*slot) *slot = std::make_unique<Node>();
        node = slot->get();
    }
    node->here.push_back(entry);
}

bool Router::erase_path(Node& node, std::string_view rest, const RouteEntry& entry) {
    auto remove_from = [&entry](std::vector<std::shared_ptr<RouteEntry>>& list) {
        auto it = std::find_if(list.begin(), list.end(),
                               [&entry](const auto& e) { return e.get() == &entry; });
        if (it == list.end()) return false;
        list.erase(it);
        return true;
    };
    bool at_end = false;
    const auto level = next_level(rest, at_end);
    if (level == "#") return remove_from(node.below);
    std::unique_ptr<Node>* slot = nullptr;
    Children::iterator child;
    if (level == "+") {
        slot = &node.plus;
    } else {
        child = node.children.find(level);
        if (child == node.children.end()) return false;
        slot = &child->second;
    }
    if (!*slot) return false;
    const bool removed = at_end ? remove_from((*slot)->here) : erase_path(**slot, rest, entry);
    if (removed && (*slot)->empty()) {  // prune so the tree never outgrows its routes
        if (level == "+") {
            node.plus.reset();
        } else {
            node.children.erase(child);
        }
    }
    return removed;
}

bool Router::erase(const RouteEntry& entry) {
    std::unique_lock lock(mutex_);
    const bool erased = erase_path(root_, matching_filter(entry.filter()), entry);
    if (erased && entry.on_receive_thread()) receive_thread_routes_.fetch_sub(1);
    return erased;
}

std::vector<std::shared_ptr<RouteEntry>> Router::take_filter(std::string_view filter) {
    std::vector<std::shared_ptr<RouteEntry>> taken;
    std::vector<std::shared_ptr<RouteEntry>> candidates;
    {
        std::shared_lock lock(mutex_);
        // A filter matches itself when read as a topic, so this finds every route on it.
        collect(root_, matching_filter(filter), false, true, false, candidates);
    }
    for (auto& entry : candidates) {
        if (entry->filter() == filter && erase(*entry)) taken.push_back(std::move(entry));
    }
    return taken;
}

std::vector<std::shared_ptr<RouteEntry>> Router::take_all() {
    std::vector<std::shared_ptr<RouteEntry>> taken;
    std::unique_lock lock(mutex_);
    auto walk = [&taken](auto& self, Node& node) -> void {
        for (auto& e : node.here) taken.push_back(std::move(e));
        for (auto& e : node.below) taken.push_back(std::move(e));
        for (auto& [level, child] : node.children) self(self, *child);
        if (node.plus) self(self, *node.plus);
    };
    walk(walk, root_);
    root_ = Node{};
    receive_thread_routes_.store(0);
    return taken;
}

std::map<std::string, RouteStats> Router::stats_by_filter() const {
    std::map<std::string, RouteStats> totals;
    auto add = [&totals](const std::shared_ptr<RouteEntry>& entry) {
        const auto stats = entry->stats();
        auto& total = totals[entry->filter()];
        total.received += stats.received;
        total.dropped += stats.dropped;
        total.bytes += stats.bytes;
        total.errors += stats.errors;
        total.last_message = std::max(total.last_message, stats.last_message);
    };
    std::shared_lock lock(mutex_);
    auto walk = [&add](auto& self, const Node& node) -> void {
        for (const auto& e : node.here) add(e);
        for (const auto& e : node.below) add(e);
        for (const auto& [level, child] : node.children) self(self, *child);
        if (node.plus) self(self, *node.plus);
    };
    walk(walk, root_);
    return totals;
}

// `first_level` and `dollar` implement MQTT 4.7.2: a filter starting with a wildcard
// does not match a topic starting with '$'.
void Router::collect(const Node& node, std::string_view rest, bool at_end, bool first_level,
                     bool dollar, std::vector<std::shared_ptr<RouteEntry>>& out) {
    const bool wildcards_allowed = !(first_level && dollar);
    if (wildcards_allowed) out.insert(out.end(), node.below.begin(), node.below.end());
    if (at_end) {
        out.insert(out.end(), node.here.begin(), node.here.end());
        return;
    }
    const auto level = next_level(rest, at_end);
    if (auto it = node.children.find(level); it != node.children.end()) {
        collect(*it->second, rest, at_end, false, dollar, out);
    }
    if (node.plus && wildcards_allowed) collect(*node.plus, rest, at_end, false, dollar, out);
}

void Router::match(std::string_view topic, std::vector<std::shared_ptr<RouteEntry>>& out) const {
    const bool dollar = !topic.empty() && topic.front() == '$';
    std::shared_lock lock(mutex_);
    collect(root_, topic, false, true, dollar, out);
}

bool Router::deliver(const Message& message, Pass pass) noexcept {
    // Reused per thread so steady-state delivery allocates nothing; a handler that
    // delivers again on the same thread (nested) gets a fresh vector instead.
    thread_local std::vector<std::shared_ptr<RouteEntry>> reused;
    thread_local bool in_use = false;
    std::vector<std::shared_ptr<RouteEntry>> nested;
    auto& matched = in_use ? nested : reused;
    const bool outermost = !in_use;
    in_use = true;
    matched.clear();
    match(message.topic(), matched);
    if (matched.empty()) stats_->unrouted.fetch_add(1, std::memory_order_relaxed);
    bool others = false;
    for (const auto& entry : matched) {
        if (pass != Pass::all && entry->on_receive_thread() != (pass == Pass::receive_thread)) {
            others = true;
            continue;
        }
        if (!entry->deliver(message, *log_)) stats_->count_error();
    }
    matched.clear();  // drop the references now, not at the next message
    if (outermost) in_use = false;
    return others;
}

}  // namespace mqttx::detail
