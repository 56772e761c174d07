#include "mqttx/error.hpp"

namespace mqttx {

const char* to_string(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::configuration:
            return "configuration";
        case ErrorKind::connection:
            return "connection";
        case ErrorKind::authentication:
            return "authentication";
        case ErrorKind::timeout:
            return "timeout";
        case ErrorKind::session_closed:
            return "session_closed";
        case ErrorKind::session_not_found:
            return "session_not_found";
        case ErrorKind::duplicate_session:
            return "duplicate_session";
        case ErrorKind::invalid_topic:
            return "invalid_topic";
        case ErrorKind::invalid_qos:
            return "invalid_qos";
        case ErrorKind::payload_too_large:
            return "payload_too_large";
        case ErrorKind::publish:
            return "publish";
        case ErrorKind::subscription:
            return "subscription";
        case ErrorKind::buffer_full:
            return "buffer_full";
        case ErrorKind::storage:
            return "storage";
        case ErrorKind::tls:
            return "tls";
        case ErrorKind::internal:
            return "internal";
        case ErrorKind::forwarder_not_found:
            return "forwarder_not_found";
        case ErrorKind::duplicate_forwarder:
            return "duplicate_forwarder";
    }
    return "unknown";
}

namespace {

class Category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "mqttx"; }
    std::string message(int value) const override {
        return to_string(static_cast<ErrorKind>(value));
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

std::error_code make_error_code(ErrorKind kind) noexcept {
    return {static_cast<int>(kind), error_category()};
}

Error::Error(ErrorKind kind, std::string message)
    : std::system_error(make_error_code(kind)), kind_(kind), message_(std::move(message)) {
    compose();
}

Error Error::connection(std::string message, std::exception_ptr cause) {
    Error e(ErrorKind::connection, std::move(message));
    if (cause) e.with_cause(std::move(cause));
    return e;
}

Error Error::session_closed(std::string session) {
    return Error(ErrorKind::session_closed, "session is closed").with_session(std::move(session));
}

Error Error::session_not_found(std::string session) {
    return Error(ErrorKind::session_not_found, "no such session").with_session(std::move(session));
}

Error Error::invalid_topic(std::string message, std::string topic) {
    return Error(ErrorKind::invalid_topic, std::move(message)).with_topic(std::move(topic));
}

Error Error::invalid_qos(int qos) {
    return Error(ErrorKind::invalid_qos, "QoS must be 0, 1 or 2").with_context("qos", qos);
}

Error& Error::with_session(std::string session) & {
    session_ = std::move(session);
    compose();
    return *this;
}

Error& Error::with_topic(std::string topic) & {
    topic_ = std::move(topic);
    compose();
    return *this;
}

Error& Error::with_context(std::string key, std::string value) & {
    context_.emplace_back(std::move(key), std::move(value));
    compose();
    return *this;
}

Error& Error::with_cause(std::exception_ptr cause) & {
    cause_ = std::move(cause);
    compose();
    return *this;
}

Error& Error::with_codes(int return_code, int reason_code) & {
    return_code_ = return_code;
    reason_code_ = reason_code;
    compose();
    return *this;
}

// what() is rebuilt on every with_*() so it always tells the whole story in one line:
// "mqttx connection error: connection failed (session=s, retry_count=3): <cause>".
void Error::compose() {
    what_ = "mqttx ";
    what_ += to_string(kind_);
    what_ += " error: ";
    what_ += message_;
    std::string details;
    auto add = [&details](const std::string& key, const std::string& value) {
        if (!details.empty()) details += ", ";
        details += key;
        details += '=';
        details += value;
    };
    if (!session_.empty()) add("session", session_);
    if (!topic_.empty()) add("topic", topic_);
    for (std::size_t i = context_in_message_; i < context_.size(); ++i) {
        add(context_[i].first, context_[i].second);
    }
    if (return_code_ != 0) add("return_code", std::to_string(return_code_));
    if (reason_code_ != 0) add("reason_code", std::to_string(reason_code_));
    if (!details.empty()) what_ += " (" + details + ")";
    if (cause_) {
        try {
            std::rethrow_exception(cause_);
        } catch (const std::exception& e) {
            what_ += ": ";
            what_ += e.what();
        } catch (...) {
            what_ += ": unknown cause";
        }
    }
}

bool is_temporary(const std::exception& e) noexcept {
    const auto* error = dynamic_cast<const Error*>(&e);
    if (error == nullptr) return false;
    switch (error->kind()) {
        case ErrorKind::connection:
        case ErrorKind::timeout:
        case ErrorKind::buffer_full:
            return true;
        default:
            return false;
    }
}

bool is_timeout(const std::exception& e) noexcept {
    const auto* error = dynamic_cast<const Error*>(&e);
    return error != nullptr && error->kind() == ErrorKind::timeout;
}

}  // namespace mqttx
