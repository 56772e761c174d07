#include "mqttx/storage.hpp"

#include <algorithm>

#include "mqttx/error.hpp"

namespace mqttx {

template <class F>
auto Storage::guarded(const char* operation, std::string_view key, F&& f) {
    std::lock_guard lock(mutex_);
    try {
        if (!open_) throw Error(ErrorKind::storage, "storage is not open");
        return f();
    } catch (const Error& e) {
        ++metrics_.errors;
        if (e.kind() == ErrorKind::storage) throw;
        throw Error(ErrorKind::storage, std::string(operation) + " failed: " + e.what())
            .with_context("backend", backend_)
            .with_context("client_id", client_id_)
            .with_context("key", std::string(key));
    } catch (const std::exception& e) {
        ++metrics_.errors;
        throw Error(ErrorKind::storage, std::string(operation) + " failed: " + e.what())
            .with_context("backend", backend_)
            .with_context("client_id", client_id_)
            .with_context("key", std::string(key));
    }
}

void Storage::open(std::string_view client_id) {
    std::lock_guard lock(mutex_);
    if (client_id.empty()) {
        throw Error(ErrorKind::configuration, "storage needs a client id")
            .with_context("backend", backend_);
    }
    try {
        if (open_) do_close();
        client_id_ = std::string(client_id);
        do_open(client_id_);
        open_ = true;
    } catch (const Error&) {
        ++metrics_.errors;
        throw;
    } catch (const std::exception& e) {
        ++metrics_.errors;
        throw Error(ErrorKind::storage, std::string("open failed: ") + e.what())
            .with_context("backend", backend_)
            .with_context("client_id", client_id_);
    }
}

void Storage::close() noexcept {
    {
        std::lock_guard lock(mutex_);
        if (open_) do_close();
        open_ = false;
    }
    // Whatever the backend did not make durable by now, it never will: nobody waits.
    durable_through(issued_tickets());
}

std::uint64_t Storage::put(std::string_view key, std::string_view value) {
    return guarded("put", key, [&] {
        do_put(std::string(key), value);
        ++metrics_.puts;
        return tickets_.fetch_add(1, std::memory_order_acq_rel) + 1;
    });
}

std::optional<std::string> Storage::get(std::string_view key) {
    return guarded("get", key, [&] {
        ++metrics_.gets;
        return do_get(std::string(key));
    });
}

void Storage::remove(std::string_view key) {
    guarded("remove", key, [&] {
        do_remove(std::string(key));
        ++metrics_.removes;
        tickets_.fetch_add(1, std::memory_order_acq_rel);
    });
}

void Storage::when_durable(std::uint64_t ticket, std::function<void()> done) {
    {
        std::lock_guard lock(durable_mutex_);
        if (deferred_durability_ && ticket > durable_) {
            waiting_durable_.emplace(ticket, std::move(done));
            return;
        }
    }
    done();
}

void Storage::durable_through(std::uint64_t ticket) {
    std::vector<std::function<void()>> released;
    {
        std::lock_guard lock(durable_mutex_);
        durable_ = std::max(durable_, ticket);
        const auto end = waiting_durable_.upper_bound(durable_);
        for (auto it = waiting_durable_.begin(); it != end; ++it) {
            released.push_back(std::move(it->second));
        }
        waiting_durable_.erase(waiting_durable_.begin(), end);
    }
    for (auto& done : released) done();
}

bool Storage::contains(std::string_view key) {
    return guarded("contains", key, [&] { return do_get(std::string(key)).has_value(); });
}

std::vector<std::string> Storage::keys() {
    return guarded("keys", "", [&] { return do_keys(); });
}

void Storage::clear() {
    guarded("clear", "", [&] { do_clear(); });
}

StorageMetrics Storage::metrics() const {
    std::lock_guard lock(mutex_);
    auto metrics = metrics_;
    if (open_) do_metrics(metrics);
    return metrics;
}

std::unique_ptr<Storage> make_storage(const StorageOptions& options) {
    switch (options.type) {
        case StorageType::memory:
            return make_memory_storage();
        case StorageType::file:
            return make_file_storage(options.directory, options.file_sync,
                                     options.file_segment_bytes);
        case StorageType::redis:
            return make_redis_storage(options);
    }
    throw Error(ErrorKind::configuration, "unknown storage type");
}

}  // namespace mqttx
