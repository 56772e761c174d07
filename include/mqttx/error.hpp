// mqttx::Error: the one exception type of the library, with a kind, the session and
// topic it concerns, free-form context and the underlying cause.
#pragma once

#include <exception>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace mqttx {

enum class ErrorKind {
    configuration = 1,    // bad Options / builder input
    connection,           // could not connect, connection lost
    authentication,       // broker refused credentials or certificate
    timeout,              // an operation did not finish in time
    session_closed,       // the session was closed or removed
    session_not_found,    // no session with that name
    duplicate_session,    // a session with that name exists already
    invalid_topic,        // topic name or filter breaks the MQTT rules
    invalid_qos,          // QoS outside 0..2
    payload_too_large,    // payload longer than the configured maximum
    publish,              // the broker or client refused a publish
    subscription,         // the broker refused a subscription
    buffer_full,          // an offline buffer or queue is full
    storage,              // a storage backend failed
    tls,                  // TLS setup or handshake failed
    internal,             // a bug or an unexpected failure of a dependency
    forwarder_not_found,  // no forwarder with that name
    duplicate_forwarder,  // a forwarder with that name exists already
};

// Name of a kind, e.g. "invalid_topic".
const char* to_string(ErrorKind kind) noexcept;

namespace detail {
class Problems;
}

const std::error_category& error_category() noexcept;
std::error_code make_error_code(ErrorKind kind) noexcept;

class Error : public std::system_error {
  public:
    Error(ErrorKind kind, std::string message);

    static Error configuration(std::string message) {
        return {ErrorKind::configuration, std::move(message)};
    }
    static Error connection(std::string message, std::exception_ptr cause = nullptr);
    static Error timeout(std::string message) { return {ErrorKind::timeout, std::move(message)}; }
    static Error session_closed(std::string session);
    static Error session_not_found(std::string session);
    static Error invalid_topic(std::string message, std::string topic);
    static Error invalid_qos(int qos);

    ErrorKind kind() const noexcept { return kind_; }
    const std::string& message() const noexcept { return message_; }
    const std::string& session() const noexcept { return session_; }
    const std::string& topic() const noexcept { return topic_; }
    const std::vector<std::pair<std::string, std::string>>& context() const noexcept {
        return context_;
    }
    // The exception this one was translated from (a Paho exception, an OpenSSL failure...).
    std::exception_ptr cause() const noexcept { return cause_; }
    // Paho's return code and MQTT 5 reason code when the error came from Paho, else 0.
    int return_code() const noexcept { return return_code_; }
    int reason_code() const noexcept { return reason_code_; }

    const char* what() const noexcept override { return what_.c_str(); }

    Error& with_session(std::string session) &;
    Error with_session(std::string session) && {
        with_session(std::move(session));
        return std::move(*this);
    }
    Error& with_topic(std::string topic) &;
    Error with_topic(std::string topic) && {
        with_topic(std::move(topic));
        return std::move(*this);
    }
    Error& with_context(std::string key, std::string value) &;
    Error with_context(std::string key, std::string value) && {
        with_context(std::move(key), std::move(value));
        return std::move(*this);
    }
    template <typename T>
    requires std::is_arithmetic_v<T> Error& with_context(std::string key, T value) & {
        return with_context(std::move(key), std::to_string(value));
    }
    template <typename T>
    requires std::is_arithmetic_v<T> Error with_context(std::string key, T value) && {
        with_context(std::move(key), std::to_string(value));
        return std::move(*this);
    }
    Error& with_cause(std::exception_ptr cause) &;
    Error with_cause(std::exception_ptr cause) && {
        with_cause(std::move(cause));
        return std::move(*this);
    }
    Error& with_codes(int return_code, int reason_code) &;
    Error with_codes(int return_code, int reason_code) && {
        with_codes(return_code, reason_code);
        return std::move(*this);
    }

  private:
    friend class detail::Problems;  // lists its problems in the message, once
    void compose();

    ErrorKind kind_;
    std::string message_;
    std::string session_;
    std::string topic_;
    std::vector<std::pair<std::string, std::string>> context_;
    std::size_t context_in_message_ = 0;  // the first entries, which what() need not repeat
    std::exception_ptr cause_;
    int return_code_ = 0;
    int reason_code_ = 0;
    std::string what_;
};

// True for failures worth retrying: connection loss, timeouts, full buffers.
bool is_temporary(const std::exception& e) noexcept;
// True when the failure is a timeout.
bool is_timeout(const std::exception& e) noexcept;

}  // namespace mqttx

template <>
struct std::is_error_code_enum<mqttx::ErrorKind> : std::true_type {};
