#include "mqttx/request.hpp"

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>

#include "mqttx/error.hpp"
#include "mqttx/topic.hpp"
#include "session/session_core.hpp"

namespace mqttx {

namespace detail {

// What a Requester shares with its route's handler (a dispatcher thread), its timers
// (the scheduler thread) and the session's outbox (whose failure of a request's publish
// fails the request at once): they hold it weakly, so any may outlive the Requester.
struct RequesterState final : DeliveryObserver {
    struct Pending {
        std::promise<Message> promise;
        std::string topic;
        std::chrono::milliseconds timeout{};
    };

    RequesterState(std::string session_name, std::string reply, std::string correlation_prefix)
        : session(std::move(session_name)),
          reply_topic(std::move(reply)),
          prefix(std::move(correlation_prefix)) {}

    const std::string session;
    const std::string reply_topic;
    const std::string prefix;  // of every correlation data: random per requester

    // Request number `n` has the correlation data "<prefix>-<n>".
    std::string correlation_of(std::uint64_t n) const { return prefix + "-" + std::to_string(n); }

    mutable std::mutex mutex;
    std::unordered_map<std::string, Pending> pending;  // by correlation data
    std::uint64_t next = 0;
    bool closed = false;
    std::atomic<std::uint64_t> unmatched{0};

    Error error(ErrorKind kind, std::string message, const Pending& request) const {
        return Error(kind, std::move(message))
            .with_session(session)
            .with_topic(request.topic)
            .with_context("reply_topic", reply_topic);
    }

    // The request with this correlation data, removed; nullopt when no longer pending.
    std::optional<Pending> take(const std::string& correlation) {
        std::lock_guard lock(mutex);
        const auto it = pending.find(correlation);
        if (it == pending.end()) return std::nullopt;
        std::optional<Pending> found(std::move(it->second));
        pending.erase(it);
        return found;
    }

    void on_reply(const Message& reply) {
        const auto& correlation = reply.properties().correlation_data;
        std::optional<Pending> request;
        if (correlation) request = take(*correlation);
        if (!request) {
            // Another requester's reply on a shared topic, or one arriving too late.
            unmatched.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        request->promise.set_value(reply);  // outside the lock: it wakes the waiter
    }

    // Fails a request taken out of `pending`. Noexcept: it runs in destructors and on
    // the scheduler thread.
    template <typename MakeError>
    static void fail(Pending& request, MakeError make_error) noexcept {
        try {
            request.promise.set_exception(std::make_exception_ptr(make_error()));
        } catch (...) {
            try {
                request.promise.set_exception(std::current_exception());  // bad_alloc
            } catch (...) {
            }
        }
    }

    void expire(const std::string& correlation) noexcept {
        try {
            auto request = take(correlation);
            if (!request) return;  // answered in time
            fail(*request, [&] {
                const auto ms = request->timeout.count();
                return error(ErrorKind::timeout, "no reply within " + std::to_string(ms) + " ms",
                             *request)
                    .with_context("timeout_ms", ms);
            });
        } catch (...) {
        }
    }

    // The request's publish failed after publish() accepted it (the broker refused it, it
    // was dropped from the offline buffer, given up, or the session closed): waiting for
    // the timeout would only hide why.
    void settled(const Error* failure, std::int64_t tag) noexcept override {
        if (failure == nullptr) return;
        try {
            auto request = take(correlation_of(static_cast<std::uint64_t>(tag)));
            if (!request) return;
            fail(*request, [&] { return *failure; });
        } catch (...) {
        }
    }

    // The timer was dropped unrun: the manager stopped its scheduler.
    void abandon(const std::string& correlation) noexcept {
        try {
            auto request = take(correlation);
            if (!request) return;
            fail(*request, [&] {
                return error(ErrorKind::session_closed,
                             "no reply: the session manager stopped before the request's timeout",
                             *request);
            });
        } catch (...) {
        }
    }

    void close() noexcept {
        decltype(pending) cancelled;
        {
            std::lock_guard lock(mutex);
            closed = true;
            cancelled.swap(pending);
        }
        for (auto& [correlation, request] : cancelled) {
            fail(request, [&] {
                return error(ErrorKind::session_closed,
                             "request cancelled: its Requester was closed", request);
            });
        }
    }
};

// One request's timeout, owned by the task posted to the scheduler. Run, it expires the
// request; dropped unrun (the manager stopped), its destructor fails the request instead,
// so that the future is never left hanging.
class RequestTimer {
  public:
    RequestTimer(std::weak_ptr<RequesterState> state, std::string correlation)
        : state_(std::move(state)), correlation_(std::move(correlation)) {}
    ~RequestTimer() {
        if (fired_.load(std::memory_order_acquire)) return;
        if (auto state = state_.lock()) state->abandon(correlation_);
    }
    RequestTimer(const RequestTimer&) = delete;
    RequestTimer& operator=(const RequestTimer&) = delete;

    void fire() noexcept {
        fired_.store(true, std::memory_order_release);
        if (auto state = state_.lock()) state->expire(correlation_);
    }

  private:
    const std::weak_ptr<RequesterState> state_;
    const std::string correlation_;
    std::atomic<bool> fired_{false};
};

}  // namespace detail

namespace {

std::uint64_t random_bits() {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ std::uint64_t{device()};
}

std::string hex(std::uint64_t value) {
    char text[17];
    std::snprintf(text, sizeof text, "%016" PRIx64, value);
    return text;
}

// "mqttx/reply/<client id>/<random>": the client id says whose replies these are (for
// broker ACLs and for whoever reads a broker log); the random level keeps two requesters
// of one client apart. A client id may hold '+', '#' or '/', which a topic level cannot.
std::string default_reply_topic(const std::string& client_id) {
    std::string level;
    for (char c : client_id.substr(0, 64)) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        level += keep ? c : '_';
    }
    if (level.empty()) level = "client";
    return "mqttx/reply/" + level + "/" + hex(random_bits());
}

}  // namespace

Requester::Requester(std::shared_ptr<Session> session, std::string reply_topic)
    : session_(std::move(session)), reply_topic_(std::move(reply_topic)) {
    if (!session_) throw Error::configuration("Requester needs a session, not a null pointer");
    if (session_->options().protocol != Protocol::v5) {
        // Response topic and correlation data are MQTT 5 properties: a v3.1.1 session
        // cannot carry them, and a responder could not know where to answer.
        throw Error::configuration("request/response needs MQTT 5; the session uses MQTT 3.1.1")
            .with_session(session_->name());
    }
    if (reply_topic_.empty()) reply_topic_ = default_reply_topic(session_->client_id());
    topic::validate_topic_name(reply_topic_);
    if (reply_topic_.starts_with(topic::shared_prefix)) {
        // A responder publishes to it: it must be a plain topic, not a subscription form.
        throw Error::invalid_topic("a reply topic cannot be a shared subscription", reply_topic_);
    }
    state_ = std::make_shared<detail::RequesterState>(session_->name(), reply_topic_,
                                                      hex(random_bits()));
    SubscribeOptions options;
    options.retain_handling = RetainHandling::do_not_send;  // a retained message answers nothing
    route_ = session_->subscribe(
        reply_topic_, 1,
        [weak = std::weak_ptr<detail::RequesterState>(state_)](const Message& reply) {
            if (auto state = weak.lock()) state->on_reply(reply);
        },
        options);
}

Requester::~Requester() {
    close();
}

Requester::Requester(Requester&&) noexcept = default;

Requester& Requester::operator=(Requester&& other) noexcept {
    if (this != &other) {
        close();
        session_ = std::move(other.session_);
        reply_topic_ = std::move(other.reply_topic_);
        state_ = std::move(other.state_);
        route_ = std::move(other.route_);
    }
    return *this;
}

std::future<Message> Requester::request(std::string_view topic, std::string_view payload,
                                        const RequestOptions& options) {
    if (!state_) throw Error(ErrorKind::session_closed, "the Requester was moved from");
    if (options.timeout <= std::chrono::milliseconds::zero()) {
        throw Error::configuration("a request's timeout must be positive")
            .with_session(state_->session)
            .with_topic(std::string(topic))
            .with_context("timeout_ms", options.timeout.count());
    }
    std::string correlation;
    std::uint64_t number = 0;
    std::future<Message> future;
    {
        std::lock_guard lock(state_->mutex);
        if (state_->closed) {
            throw Error(ErrorKind::session_closed, "the Requester is closed")
                .with_session(state_->session)
                .with_topic(std::string(topic));
        }
        // Unique per request; the random prefix keeps requesters sharing a reply topic apart.
        number = state_->next++;
        correlation = state_->correlation_of(number);
        auto& request = state_->pending[correlation];
        request.topic = std::string(topic);
        request.timeout = options.timeout;
        future = request.promise.get_future();
    }
    // Registered before the publish: the reply may arrive before publish() returns.
    auto timer = std::make_shared<detail::RequestTimer>(state_, correlation);
    PublishProperties properties = options.properties;
    properties.response_topic = reply_topic_;
    properties.correlation_data = correlation;
    try {
        // The publish's outcome goes to the state: a failure fails the request at once.
        session_->core().publish_shared(
            mqtt::string_ref(std::string(topic)), mqtt::binary_ref(payload.data(), payload.size()),
            options.qos, false, &properties, state_, static_cast<std::int64_t>(number));
    } catch (...) {
        state_->take(correlation);  // the caller gets this error, not a future
        throw;
    }
    // A false return (the manager stopped) drops the task: the timer's destructor then
    // fails the request, so the future still completes.
    session_->core().post_after(options.timeout, [timer = std::move(timer)] { timer->fire(); });
    return future;
}

std::size_t Requester::pending() const {
    if (!state_) return 0;
    std::lock_guard lock(state_->mutex);
    return state_->pending.size();
}

std::uint64_t Requester::unmatched_replies() const noexcept {
    return state_ ? state_->unmatched.load(std::memory_order_relaxed) : 0;
}

void Requester::close() noexcept {
    if (!state_) return;
    state_->close();  // first: waiters are released without waiting for the unsubscribe
    route_.stop();
}

DeliveryToken respond(Session& session, const Message& request, std::string_view payload, int qos,
                      PublishProperties properties) {
    const PublishProperties& asked = request.properties();
    if (!asked.response_topic) {
        throw Error::configuration(
            "cannot respond: the message has no response topic (not a request, or sent over "
            "MQTT 3.1.1)")
            .with_session(session.name())
            .with_topic(std::string(request.topic()));
    }
    // The requester matches replies by it; a request without one gets a reply without.
    properties.correlation_data = asked.correlation_data;
    return session.publish(*asked.response_topic, payload, qos, false, properties);
}

}  // namespace mqttx
