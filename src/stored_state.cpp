#include "stored_state.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace mqttx::detail {
namespace {

using nlohmann::json;

std::int64_t to_ms(std::chrono::system_clock::time_point time) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_ms(std::int64_t ms) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::milliseconds(ms)));
}

template <class T>
T field(const json& object, const char* name) {
    const auto it = object.find(name);
    if (it == object.end()) throw std::runtime_error(std::string("no field \"") + name + "\"");
    try {
        return it->get<T>();
    } catch (const json::exception&) {
        throw std::runtime_error(std::string("field \"") + name + "\" has the wrong type");
    }
}

}  // namespace

std::string encode(const StoredSessionState& state) {
    json subscriptions = json::array();
    for (const auto& subscription : state.subscriptions) {
        json entry = {
            {"filter", subscription.filter},
            {"qos", subscription.qos},
            {"no_local", subscription.options.no_local},
            {"retain_as_published", subscription.options.retain_as_published},
            {"retain_handling", static_cast<int>(subscription.options.retain_handling)},
            {"share_group", subscription.options.share_group},
        };
        // MQTT 5 only, so written only when set: older records read the same.
        if (subscription.options.subscription_id != 0) {
            entry["subscription_id"] = subscription.options.subscription_id;
        }
        if (!subscription.options.user_properties.empty()) {
            entry["user_properties"] = subscription.options.user_properties;
        }
        subscriptions.push_back(std::move(entry));
    }
    return json{
        {"version", state.version},
        {"client_id", state.client_id},
        {"session", state.session},
        {"last_connected_ms", to_ms(state.last_connected)},
        {"last_disconnected_ms", to_ms(state.last_disconnected)},
        {"subscriptions", std::move(subscriptions)},
    }
        .dump();
}

StoredSessionState decode_stored_state(std::string_view text) {
    const auto document = json::parse(text, nullptr, false);
    if (document.is_discarded() || !document.is_object()) {
        throw std::runtime_error("not a JSON object");
    }
    StoredSessionState state;
    state.version = field<int>(document, "version");
    if (state.version != StoredSessionState::current_version) {
        throw std::runtime_error("version " + std::to_string(state.version) +
                                 " is not the one this library writes (" +
                                 std::to_string(StoredSessionState::current_version) + ")");
    }
    state.client_id = field<std::string>(document, "client_id");
    state.session = field<std::string>(document, "session");
    state.last_connected = from_ms(field<std::int64_t>(document, "last_connected_ms"));
    state.last_disconnected = from_ms(field<std::int64_t>(document, "last_disconnected_ms"));
    const auto subscriptions = field<json>(document, "subscriptions");
    if (!subscriptions.is_array()) throw std::runtime_error("\"subscriptions\" is not an array");
    for (const auto& entry : subscriptions) {
        if (!entry.is_object()) throw std::runtime_error("a subscription is not an object");
        StoredSubscription subscription;
        subscription.filter = field<std::string>(entry, "filter");
        subscription.qos = field<int>(entry, "qos");
        if (subscription.qos < 0 || subscription.qos > 2) {
            throw std::runtime_error("subscription \"" + subscription.filter + "\" has QoS " +
                                     std::to_string(subscription.qos));
        }
        subscription.options.no_local = field<bool>(entry, "no_local");
        subscription.options.retain_as_published = field<bool>(entry, "retain_as_published");
        const auto retain_handling = field<int>(entry, "retain_handling");
        if (retain_handling < 0 || retain_handling > 2) {
            throw std::runtime_error("subscription \"" + subscription.filter +
                                     "\" has retain_handling " + std::to_string(retain_handling));
        }
        subscription.options.retain_handling = static_cast<RetainHandling>(retain_handling);
        subscription.options.share_group = field<std::string>(entry, "share_group");
        if (entry.contains("subscription_id")) {
            subscription.options.subscription_id = field<std::uint32_t>(entry, "subscription_id");
            if (subscription.options.subscription_id > max_subscription_id) {
                throw std::runtime_error("subscription \"" + subscription.filter +
                                         "\" has subscription_id " +
                                         std::to_string(subscription.options.subscription_id));
            }
        }
        if (entry.contains("user_properties")) {
            subscription.options.user_properties = field<UserProperties>(entry, "user_properties");
        }
        state.subscriptions.push_back(std::move(subscription));
    }
    return state;
}

}  // namespace mqttx::detail
