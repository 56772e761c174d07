// HeapOptional<T>: an optional value kept on the heap, for the rarely set parts of
// Options (TLS, storage, will, credentials). Every session keeps a copy of its Options,
// and an empty std::optional<TlsConfig> still takes 240 bytes; an empty HeapOptional
// takes one pointer. It has std::optional's accessors and takes what std::optional
// takes (a T, a braced list, std::nullopt, a std::optional<T>). Unlike std::optional,
// a moved-from HeapOptional is empty.
#pragma once

#include <concepts>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace mqttx {

template <class T>
class HeapOptional {
  public:
    HeapOptional() noexcept = default;
    HeapOptional(std::nullopt_t) noexcept {}
    HeapOptional(T value) : value_(std::make_unique<T>(std::move(value))) {}
    HeapOptional(const std::optional<T>& other)
        : value_(other ? std::make_unique<T>(*other) : nullptr) {}
    HeapOptional(std::optional<T>&& other)
        : value_(other ? std::make_unique<T>(std::move(*other)) : nullptr) {}

    HeapOptional(const HeapOptional& other)
        : value_(other.value_ ? std::make_unique<T>(*other.value_) : nullptr) {}
    HeapOptional(HeapOptional&& other) noexcept = default;  // leaves `other` empty
    HeapOptional& operator=(const HeapOptional& other) {
        if (this != &other) value_ = other.value_ ? std::make_unique<T>(*other.value_) : nullptr;
        return *this;
    }
    HeapOptional& operator=(HeapOptional&& other) noexcept = default;
    HeapOptional& operator=(std::nullopt_t) noexcept {
        value_.reset();
        return *this;
    }
    // A template, as std::optional's is, so that `= {...}` builds a T and `= {}` empties.
    template <class U = T>
    requires(!std::same_as<std::remove_cvref_t<U>, HeapOptional> &&
             std::constructible_from<T, U&&>) HeapOptional&
    operator=(U&& value) {
        value_ = std::make_unique<T>(std::forward<U>(value));
        return *this;
    }

    bool has_value() const noexcept { return value_ != nullptr; }
    explicit operator bool() const noexcept { return has_value(); }

    // Like std::optional, these four require a value.
    T& operator*() noexcept { return *value_; }
    const T& operator*() const noexcept { return *value_; }
    T* operator->() noexcept { return value_.get(); }
    const T* operator->() const noexcept { return value_.get(); }

    // Throw std::bad_optional_access when empty.
    T& value() { return value_ ? *value_ : throw std::bad_optional_access(); }
    const T& value() const { return value_ ? *value_ : throw std::bad_optional_access(); }

    template <class U>
    T value_or(U&& fallback) const {
        return value_ ? *value_ : static_cast<T>(std::forward<U>(fallback));
    }

    template <class... Args>
    T& emplace(Args&&... args) {
        value_ = std::make_unique<T>(std::forward<Args>(args)...);
        return *value_;
    }
    void reset() noexcept { value_.reset(); }

    friend bool operator==(const HeapOptional& optional, std::nullopt_t) noexcept {
        return !optional;
    }

  private:
    std::unique_ptr<T> value_;
};

}  // namespace mqttx
