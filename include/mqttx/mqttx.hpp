// Everything a user of mqttx needs, in one include; except the HTTP endpoint for
// Prometheus (mqttx/metrics_server.hpp, in the library mqttx::http).
#pragma once

#include "mqttx/builder.hpp"
#include "mqttx/delivery_token.hpp"
#include "mqttx/error.hpp"
#include "mqttx/events.hpp"
#include "mqttx/forwarder.hpp"
#include "mqttx/heap_optional.hpp"
#include "mqttx/message.hpp"
#include "mqttx/message_channel.hpp"
#include "mqttx/metrics.hpp"
#include "mqttx/options.hpp"
#include "mqttx/prometheus.hpp"
#include "mqttx/properties.hpp"
#include "mqttx/request.hpp"
#include "mqttx/route.hpp"
#include "mqttx/session.hpp"
#include "mqttx/session_manager.hpp"
#include "mqttx/session_state.hpp"
#include "mqttx/storage.hpp"
#include "mqttx/subscribe_options.hpp"
#include "mqttx/topic.hpp"
