// Names the calling thread, so that top -H, perf and gdb tell the library's threads
// apart from the application's and from Paho's (MQTTAsync_send, MQTTAsync_rcv).
#pragma once

#include <pthread.h>

namespace mqttx::detail {

// `name`: at most 15 characters (the kernel's limit); a longer one is left unset.
inline void name_this_thread(const char* name) noexcept {
    (void)pthread_setname_np(pthread_self(), name);
}

}  // namespace mqttx::detail
