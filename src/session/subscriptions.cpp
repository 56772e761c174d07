// Routes and broker subscriptions: subscribe and unsubscribe at the broker as routes
// come and go (one SUBSCRIBE per filter, however many routes share it), and their
// restoring after a connect that did not keep the broker's session.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "deadline.hpp"
#include "mqttx/topic.hpp"
#include "paho_error.hpp"
#include "runtime.hpp"
#include "session/session_core.hpp"
#include "wire_checks.hpp"

namespace mqttx::detail {

namespace {

mqtt::subscribe_options to_paho(const SubscribeOptions& options) {
    return mqtt::subscribe_options(
        options.no_local, options.retain_as_published,
        static_cast<mqtt::subscribe_options::RetainHandling>(options.retain_handling));
}

// MQTT 5 SUBSCRIBE properties: the subscription identifier and user properties.
mqtt::properties subscribe_properties(const SubscribeOptions& options) {
    mqtt::properties properties;
    if (options.subscription_id != 0) {
        properties.add({mqtt::property::SUBSCRIPTION_IDENTIFIER,
                        static_cast<int32_t>(options.subscription_id)});
    }
    for (const auto& [key, value] : options.user_properties) {
        properties.add({mqtt::property::USER_PROPERTY, key, value});
    }
    return properties;
}

mqtt::properties user_property_list(const UserProperties& user_properties) {
    mqtt::properties properties;
    for (const auto& [key, value] : user_properties) {
        properties.add({mqtt::property::USER_PROPERTY, key, value});
    }
    return properties;
}

// The first reason code of a SUBACK or UNSUBACK; `none` when Paho has no details.
template <typename Response>
int first_code(const Response& response, int none) {
    const auto& codes = response.get_reason_codes();
    return codes.empty() ? none : static_cast<int>(codes.front());
}

// restore_subscriptions() sends one SUBSCRIBE per filter, its generation as the context.
std::uint64_t generation_of(const mqtt::token& token) {
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(token.get_user_context()));
}

std::string filter_of(const mqtt::token& token) {
    const auto topics = token.get_topics();
    return topics && topics->size() == 1 ? (*topics)[0] : std::string();
}

}  // namespace

std::string SessionCore::unsupported_by_broker(std::string_view filter,
                                               const SubscribeOptions& options) const {
    if (!connect_info_) return {};
    const auto& info = *connect_info_;
    const char* what = nullptr;
    if (options.subscription_id != 0 && !info.subscription_identifiers_available) {
        what = "subscription identifiers";
    } else if (!options.share_group.empty() && !info.shared_subscription_available) {
        what = "shared subscriptions";
    } else if (!info.wildcard_subscription_available &&
               filter.find_first_of("+#") != std::string_view::npos) {
        what = "wildcard subscriptions";
    }
    if (what == nullptr) return {};
    // Sent anyway, it would be a protocol error that closes the connection, again at
    // every reconnect.
    return std::string("the broker does not support ") + what + " (MQTT 5 CONNACK)";
}

void SessionCore::install_initial_subscriptions() {
    for (const auto& spec : options_.subscriptions) {
        permanent_routes_.push_back(subscribe(spec.filter, spec.qos, spec.handler, spec.options));
    }
    if (!storage_ || !storage_->loaded_state()) return;
    std::size_t restored = 0;
    std::vector<StoredSubscription> carried;
    for (const auto& stored : storage_->loaded_state()->subscriptions) {
        const bool configured = std::any_of(
            options_.subscriptions.begin(), options_.subscriptions.end(), [&](const auto& spec) {
                return spec.filter == stored.filter &&
                       spec.options.share_group == stored.options.share_group;
            });
        if (configured) continue;
        if (options_.restored_handler) {
            try {
                permanent_routes_.push_back(subscribe(stored.filter, stored.qos,
                                                      options_.restored_handler, stored.options));
                ++restored;
                continue;
            } catch (const Error& e) {
                log_->error("session '{}': cannot restore subscription '{}': {}", options_.name,
                            stored.filter, e.what());
            }
        }
        carried.push_back(stored);
    }
    {
        std::lock_guard lock(mutex_);
        subscriptions_.carry(std::move(carried));
    }
    if (restored > 0) {
        log_->info("session '{}': {} subscription(s) of the last run restored", options_.name,
                   restored);
    }
}

std::shared_ptr<RouteEntry> SessionCore::subscribe(std::string_view filter_text, int qos,
                                                   MessageHandler handler,
                                                   const SubscribeOptions& options) {
    check_open();
    if (inline_delivery_thread) {
        // Waiting for the SUBACK on Paho's own thread would wait forever.
        throw Error(ErrorKind::configuration, "subscribe from an inline handler would deadlock")
            .with_session(options_.name)
            .with_topic(std::string(filter_text));
    }
    const std::string filter = SubscriptionTable::broker_filter(filter_text, options.share_group);
    auto problem = options.share_group.empty() ? std::string_view()
                                               : topic::check_share_group(options.share_group);
    if (problem.empty()) problem = topic::check_topic_filter(filter);
    if (!problem.empty()) {
        throw Error::invalid_topic("invalid topic filter: " + std::string(problem), filter)
            .with_session(options_.name);
    }
    if (qos < 0 || qos > 2) {
        throw Error::invalid_qos(qos).with_session(options_.name).with_topic(filter);
    }
    if (!handler) {
        throw Error(ErrorKind::configuration, "subscribe needs a handler")
            .with_session(options_.name)
            .with_topic(filter);
    }
    if (auto problem = check_subscribe_options(options, options_.protocol); !problem.empty()) {
        throw Error(ErrorKind::configuration, std::move(problem))
            .with_session(options_.name)
            .with_topic(filter);
    }
    auto entry =
        std::make_shared<RouteEntry>(filter, qos, std::move(handler), weak_from_this(),
                                     options.handler_thread == HandlerThread::receive_thread);
    mqtt::subscribe_options paho_options;
    mqtt::properties paho_properties;
    bool send = false;
    int broker_qos = qos;
    mqtt::token_ptr token;
    std::optional<Error> failure;
    {
        // The bookkeeping and the SUBSCRIBE go out together, so a concurrent last-route
        // UNSUBSCRIBE on the same filter cannot overtake it at the broker.
        std::lock_guard ops(broker_ops_mutex_);
        {
            std::lock_guard lock(mutex_);
            if (state_.load() == SessionState::connected) {
                if (auto problem = unsupported_by_broker(filter_text, options); !problem.empty()) {
                    throw Error(ErrorKind::subscription, std::move(problem))
                        .with_session(options_.name)
                        .with_topic(entry->filter());
                }
            }
            const auto added = subscriptions_.add_route(entry->filter(), qos, options);
            paho_options = to_paho(added.options);
            paho_properties = subscribe_properties(added.options);
            send = added.subscribe && state_.load() == SessionState::connected;
            broker_qos = added.qos;
        }
        router_->insert(entry);
        if (!send) return entry;  // made on connect, by restore_subscriptions()
        try {
            token =
                options_.protocol == Protocol::v5
                    ? client_->subscribe(entry->filter(), broker_qos, paho_options, paho_properties)
                    : client_->subscribe(entry->filter(), broker_qos);
        } catch (const mqtt::exception& e) {
            drop_route(*entry, false);
            failure = from_paho(e, ErrorKind::subscription, "subscribe failed")
                          .with_session(options_.name)
                          .with_topic(entry->filter());
        }
    }
    if (failure) {
        entry->deactivate();  // outside the lock: a running handler may subscribe
        throw *failure;
    }
    // The broker's answer is awaited without the lock.
    auto undo = [&](bool unsubscribe_if_last) {
        entry->deactivate();
        std::lock_guard ops(broker_ops_mutex_);
        drop_route(*entry, unsubscribe_if_last);
    };
    int granted = broker_qos;
    try {
        // A write_timeout too long for the clock waits without limit.
        const auto deadline = deadline_after(options_.write_timeout);
        const bool answered = deadline == std::chrono::steady_clock::time_point::max()
                                  ? (token->wait(), true)
                                  : token->wait_until(deadline);
        if (!answered) {
            undo(true);  // it may still be granted later: take it back
            throw Error::timeout("no subscribe acknowledgement in time")
                .with_session(options_.name)
                .with_topic(entry->filter())
                .with_context("timeout_ms", options_.write_timeout.count());
        }
        try {
            granted = first_code(token->get_subscribe_response(), broker_qos);
        } catch (const mqtt::missing_response&) {
            // No SUBACK details: Paho reported success.
        }
        if (granted >= 0x80) {
            undo(false);
            throw Error(ErrorKind::subscription, "broker refused the subscription")
                .with_session(options_.name)
                .with_topic(entry->filter())
                .with_codes(0, granted);
        }
    } catch (const mqtt::exception& e) {
        undo(false);
        throw from_paho(e, ErrorKind::subscription, "subscribe failed")
            .with_session(options_.name)
            .with_topic(entry->filter());
    }
    {
        std::lock_guard lock(mutex_);
        subscriptions_.acknowledge(entry->filter(), granted);
    }
    if (granted < broker_qos) report_downgrade(entry->filter(), broker_qos, granted);
    save_state();
    return entry;
}

void SessionCore::report_downgrade(const std::string& filter, int asked, int granted) {
    report(Error(ErrorKind::subscription, "the broker granted QoS " + std::to_string(granted) +
                                              " where QoS " + std::to_string(asked) +
                                              " was asked: messages arrive at QoS " +
                                              std::to_string(granted) + " at most")
               .with_session(options_.name)
               .with_topic(filter)
               .with_codes(0, granted));
}

int SessionCore::granted_qos(const RouteEntry& entry) const noexcept {
    std::lock_guard lock(mutex_);
    return subscriptions_.granted(entry.filter());
}

void SessionCore::drop_route(RouteEntry& entry, bool unsubscribe_if_last) noexcept {
    if (!router_->erase(entry)) return;
    bool last = false;
    {
        std::lock_guard lock(mutex_);
        last = subscriptions_.remove_routes(entry.filter(), 1) == SubscriptionTable::Removal::last;
        if (last && unsubscribe_if_last) subscriptions_.forget_carried(entry.filter());
    }
    if (last && unsubscribe_if_last) {
        unsubscribe_at_broker(entry.filter());
        save_state();
    }
}

void SessionCore::remove_route(RouteEntry& entry) noexcept {
    std::lock_guard ops(broker_ops_mutex_);
    drop_route(entry, true);
}

int SessionCore::unsubscribe(std::string_view filter, const UserProperties& user_properties) {
    check_open();
    if (auto problem = topic::check_topic_filter(filter); !problem.empty()) {
        throw Error::invalid_topic("invalid topic filter: " + std::string(problem),
                                   std::string(filter))
            .with_session(options_.name);
    }
    if (!user_properties.empty()) {
        Problems problems;
        check_user_properties(user_properties, problems, "unsubscribe");
        if (options_.protocol != Protocol::v5) {
            problems.add("unsubscribe.user_properties", "need an MQTT 5 session");
        }
        if (!problems.empty()) {
            throw Error(ErrorKind::configuration, problems.text())
                .with_session(options_.name)
                .with_topic(std::string(filter));
        }
    }
    // Stopped outside broker_ops_mutex_: a handler being waited for may subscribe.
    auto taken = router_->take_filter(filter);
    for (auto& entry : taken) entry->deactivate();
    mqtt::token_ptr token;
    {
        std::lock_guard ops(broker_ops_mutex_);
        bool last;
        {
            std::lock_guard lock(mutex_);
            // Only the routes taken here: one added meanwhile keeps the subscription.
            last = subscriptions_.remove_routes(filter, static_cast<int>(taken.size())) !=
                   SubscriptionTable::Removal::kept;
            if (last) subscriptions_.forget_carried(filter);
        }
        if (!last) return 0;  // routes of another caller keep the subscription
        token = unsubscribe_at_broker(std::string(filter), user_properties);
    }
    save_state();
    // Not waited for on Paho's own thread (an inline handler): it delivers the answer.
    if (!token || inline_delivery_thread) return -1;
    return await_unsuback(token, filter);
}

int SessionCore::await_unsuback(const mqtt::token_ptr& token, std::string_view filter) {
    try {
        const auto deadline = deadline_after(options_.write_timeout);
        const bool answered = deadline == std::chrono::steady_clock::time_point::max()
                                  ? (token->wait(), true)
                                  : token->wait_until(deadline);
        if (!answered) {
            throw Error::timeout("no unsubscribe acknowledgement in time")
                .with_session(options_.name)
                .with_topic(std::string(filter))
                .with_context("timeout_ms", options_.write_timeout.count());
        }
        int code = 0;
        try {
            code = first_code(token->get_unsubscribe_response(), 0);
        } catch (const mqtt::missing_response&) {
            // No UNSUBACK details (MQTT 3.1.1): success.
        }
        if (code >= 0x80) {
            throw Error(ErrorKind::subscription, "broker refused the unsubscribe")
                .with_session(options_.name)
                .with_topic(std::string(filter))
                .with_codes(0, code);
        }
        return code;
    } catch (const mqtt::exception& e) {
        // Paho C++ throws for any code above 2, also a success such as 0x11.
        const int code = e.get_reason_code();
        if (e.get_return_code() == MQTTASYNC_SUCCESS && code > 0 && code < 0x80) return code;
        throw from_paho(e, ErrorKind::subscription, "unsubscribe failed")
            .with_session(options_.name)
            .with_topic(std::string(filter));
    }
}

mqtt::token_ptr SessionCore::unsubscribe_at_broker(const std::string& filter,
                                                   const UserProperties& user_properties) noexcept {
    try {
        if (state() == SessionState::connected) {
            return options_.protocol == Protocol::v5
                       ? client_->unsubscribe(filter, user_property_list(user_properties))
                       : client_->unsubscribe(filter);
        }
    } catch (const std::exception& e) {
        stats_->count_error();
        log_->warn("session '{}': unsubscribe from '{}' failed: {}", options_.name, filter,
                   e.what());
    }
    if (!options_.clean_session) {
        // The broker keeps our session: tell it once we are back.
        std::lock_guard lock(mutex_);
        subscriptions_.unsubscribe_later(filter);
    }
    return nullptr;
}

void SessionCore::restore_subscriptions(std::uint64_t generation) {
    std::lock_guard ops(broker_ops_mutex_);
    struct Wanted {
        std::string filter;
        int qos;
        mqtt::subscribe_options options;
        mqtt::properties properties;
    };
    std::vector<Wanted> wanted;
    std::vector<std::pair<std::string, std::string>> unsupported;  // filter, why
    std::vector<std::string> unsubscribes;
    {
        std::lock_guard lock(mutex_);
        if (generation != generation_ || state() != SessionState::connected) return;
        for (auto& [filter, qos, options] : subscriptions_.unacknowledged()) {
            // The filter without its "$share/group/" prefix.
            const auto plain = std::string_view(filter).substr(
                options.share_group.empty() ? 0 : options.share_group.size() + 8);
            if (auto problem = unsupported_by_broker(plain, options); !problem.empty()) {
                unsupported.emplace_back(filter, std::move(problem));
                continue;
            }
            wanted.push_back({std::move(filter), qos, to_paho(options),
                              options_.protocol == Protocol::v5 ? subscribe_properties(options)
                                                                : mqtt::properties()});
        }
        unsubscribes = subscriptions_.take_pending_unsubscribes();
        resubscribe_generation_ = generation;
        resubscribe_pending_ = wanted.size();
        resubscribe_granted_.clear();
    }
    for (const auto& filter : unsubscribes) unsubscribe_at_broker(filter);
    for (auto& [filter, problem] : unsupported) {
        // Not made on this broker; its routes stay, for a broker that supports it.
        report(Error(ErrorKind::subscription, "cannot restore the subscription: " + problem)
                   .with_session(options_.name)
                   .with_topic(filter));
    }
    if (wanted.empty()) {
        mark_ready(generation, {});
        return;
    }
    // One SUBSCRIBE per filter. Paho C++ 1.2.0's several-filter subscribe loses its
    // vector of MQTT 5 options when it copies them, and Paho C 1.3.12 then reads a null
    // pointer (SIGSEGV; eclipse/paho.mqtt.cpp #524). The single form keeps every option.
    // The generation rides in the user context, so a late answer of an earlier
    // connection is told apart.
    auto* context = reinterpret_cast<void*>(static_cast<std::uintptr_t>(generation));
    for (const auto& [filter, qos, options, properties] : wanted) {
        try {
            client_->subscribe(filter, qos, context, resubscribe_listener_, options, properties);
        } catch (const mqtt::exception& e) {
            // Usually the connection dropped again; the next connect retries.
            report(from_paho(e, ErrorKind::subscription, "restoring a subscription failed")
                       .with_session(options_.name)
                       .with_topic(filter));
            resubscribe_answered(generation, filter, not_granted);
        }
    }
}

void SessionCore::on_resubscribe_success(const mqtt::token& token) {
    const auto filter = filter_of(token);
    int code = granted_unknown;
    try {
        code = first_code(token.get_subscribe_response(), granted_unknown);
    } catch (const mqtt::exception&) {
        // No SUBACK details: Paho reported success.
    }
    if (code >= 0x80) {
        report(Error(ErrorKind::subscription, "broker refused the subscription")
                   .with_session(options_.name)
                   .with_topic(filter)
                   .with_codes(0, code));
    }
    resubscribe_answered(generation_of(token), filter, code < 0x80 ? code : not_granted);
}

void SessionCore::on_resubscribe_failure(const mqtt::token& token) {
    // Paho reports a refused SUBACK here too: the error says so, and the session is as
    // ready as it can be once every filter has its answer.
    const auto filter = filter_of(token);
    report(from_token(token, ErrorKind::subscription, "restoring a subscription failed")
               .with_session(options_.name)
               .with_topic(filter));
    resubscribe_answered(generation_of(token), filter, not_granted);
}

void SessionCore::resubscribe_answered(std::uint64_t generation, const std::string& filter,
                                       int granted) {
    std::vector<std::pair<std::string, int>> all_granted;
    int asked = -1;
    bool last = false;
    {
        std::lock_guard lock(mutex_);
        if (generation != resubscribe_generation_ || resubscribe_pending_ == 0) return;
        if (granted != not_granted) {
            resubscribe_granted_.emplace_back(filter, granted);
            asked = subscriptions_.asked_qos(filter);
        }
        last = --resubscribe_pending_ == 0;
        if (last) all_granted = std::exchange(resubscribe_granted_, {});
    }
    if (granted >= 0 && granted < asked) report_downgrade(filter, asked, granted);
    if (last) mark_ready(generation, all_granted);
}

}  // namespace mqttx::detail
