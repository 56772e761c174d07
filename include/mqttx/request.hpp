// Request/response over MQTT 5: what people build by hand with the response topic and
// correlation data properties. A Requester subscribes once to its own reply topic and
// matches each reply to its request by correlation data; respond() answers a request.
//
//   // Requesting side: one Requester per session is enough (request() is thread-safe).
//   mqttx::Requester requester(session);  // session built with .protocol(Protocol::v5)
//   auto reply = requester.request("svc/time", "utc", {.timeout = std::chrono::seconds(2)});
//   std::cout << reply.get().payload_string();  // throws Error (kind timeout) on no reply
//
//   // Answering side: any MQTT 5 session, any handler.
//   auto route = server->subscribe("svc/time", 1, [&](const mqttx::Message& request) {
//       mqttx::respond(*server, request, now_as_text());
//   });
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "mqttx/delivery_token.hpp"
#include "mqttx/message.hpp"
#include "mqttx/properties.hpp"
#include "mqttx/route.hpp"
#include "mqttx/session.hpp"

namespace mqttx {

struct RequestOptions {
    // How long to wait for the reply; the future then throws Error (kind timeout).
    std::chrono::milliseconds timeout{5000};
    int qos = 1;  // of the request; replies are received at QoS 1
    // Sent with the request. request() sets response_topic and correlation_data,
    // replacing what is given here.
    PublishProperties properties{};
};

namespace detail {
struct RequesterState;
}

// Sends requests from one MQTT 5 session and completes a future with each one's reply.
// Every method is thread-safe. Move-only; destruction (or close()) stops the reply route
// and fails what is still pending, so no future is left hanging.
class Requester {
  public:
    // Subscribes to `reply_topic` (a topic name, no wildcards), waiting for the broker's
    // acknowledgement when connected, as Session::subscribe does: do not construct it in a
    // handler running on Paho's receive thread. Empty: "mqttx/reply/<client id>/<random>",
    // so that two requesters never get each other's replies. Several requesters may share
    // a reply topic given here: each ignores (and counts) the replies of the others.
    // Throws Error: configuration (null session, or a v3.1.1 session: request/response
    // needs MQTT 5), invalid_topic, subscription, session_closed.
    explicit Requester(std::shared_ptr<Session> session, std::string reply_topic = {});
    ~Requester();
    Requester(Requester&&) noexcept;
    Requester& operator=(Requester&&) noexcept;
    Requester(const Requester&) = delete;
    Requester& operator=(const Requester&) = delete;

    // Publishes `payload` to `topic` with this requester's reply topic and a correlation
    // data unique to this request. The future gets the matching reply, or throws Error:
    // timeout (no reply within options.timeout, naming the topic and the timeout),
    // session_closed (the Requester was closed, or the manager stopped, first; a session
    // closed on its own ends in the timeout). What the publish refuses (invalid_topic,
    // invalid_qos, payload_too_large, buffer_full, session_closed; configuration for a
    // bad timeout) is thrown here and leaves nothing pending; a publish that fails later
    // (the broker refuses it, it is dropped from the offline buffer or given up) fails
    // the future at once with that Error. A request made while disconnected waits in the
    // offline buffer; its timeout runs meanwhile.
    std::future<Message> request(std::string_view topic, std::string_view payload,
                                 const RequestOptions& options = {});

    const std::string& reply_topic() const noexcept { return reply_topic_; }
    // Requests waiting for their reply.
    std::size_t pending() const;
    // Messages on the reply topic that matched no pending request: without correlation
    // data, for another requester, or arriving after their request timed out.
    std::uint64_t unmatched_replies() const noexcept;

    // Stops the reply route and fails every pending request (Error kind session_closed);
    // later request() calls throw that error. The destructor calls it.
    void close() noexcept;

  private:
    std::shared_ptr<Session> session_;
    std::string reply_topic_;
    std::shared_ptr<detail::RequesterState> state_;  // shared with timers and the route
    Route route_;
};

// Answers `request`: publishes `payload` to its response topic with its correlation data
// (added to `properties`, replacing any given there). Thread-safe; usable from a handler.
// Throws Error (kind configuration) when the request has no response topic (not a
// request, or sent by MQTT 3.1.1), and whatever Session::publish throws.
DeliveryToken respond(Session& session, const Message& request, std::string_view payload,
                      int qos = 1, PublishProperties properties = {});

}  // namespace mqttx
