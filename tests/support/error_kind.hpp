// error_kind_of(f): runs f and returns the kind of the mqttx::Error it throws; the
// test fails when f throws nothing.
#pragma once

#include <gtest/gtest.h>
#include <mqttx/error.hpp>

namespace mqttx::test {

template <typename F>
ErrorKind error_kind_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.kind();
    }
    ADD_FAILURE() << "no mqttx::Error thrown";
    return ErrorKind::internal;
}

}  // namespace mqttx::test
