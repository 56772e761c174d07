// Redis storage (hiredis): one hash per client id, named prefix + client id; the
// session state goes to its own key (prefix + client id + ":state") so that it can
// expire (StorageOptions::state_ttl). One connection; after a failure the next call
// connects again.
//
// Removals are pipelined: queued, then sent in one batch ahead of the next command, or
// by a flusher thread at most a millisecond later, so a confirmed message costs its
// publisher one round trip (the HSET of its outbox record), not two. A crash in that
// millisecond leaves a record that should be gone: its message is sent again after a
// restart, a duplicate, never a loss.
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "logging.hpp"
#include "mqttx/error.hpp"
#include "mqttx/storage.hpp"
#include "thread_name.hpp"

namespace mqttx {

namespace {

struct ReplyDeleter {
    void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
    void operator()(redisContext* context) const noexcept { redisFree(context); }
};

// Removals wait at most this long for a command to ride along with, or this many pile up.
constexpr auto removal_window = std::chrono::milliseconds(1);
constexpr std::size_t removal_batch = 512;

timeval to_timeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000),
                   static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

class RedisStorage final : public Storage {
  public:
    explicit RedisStorage(StorageOptions options) : Storage("redis"), options_(std::move(options)) {
        const auto colon = options_.redis_address.rfind(':');
        int port = 0;
        if (colon != std::string::npos) {
            const auto* begin = options_.redis_address.data() + colon + 1;
            const auto* end = options_.redis_address.data() + options_.redis_address.size();
            const auto [ptr, ec] = std::from_chars(begin, end, port);
            if (ec != std::errc() || ptr != end) port = 0;
        }
        if (colon == std::string::npos || colon == 0 || port <= 0 || port > 65535) {
            throw Error(ErrorKind::configuration,
                        "redis_address must be host:port, got '" + options_.redis_address + "'");
        }
        host_ = options_.redis_address.substr(0, colon);
        port_ = port;
    }
    ~RedisStorage() override { stop_flusher(); }

  protected:
    void do_open(const std::string& client_id) override {
        stop_flusher();
        std::lock_guard lock(connection_mutex_);
        hash_ = options_.redis_prefix + client_id;
        state_key_ = hash_ + ":state";
        context_.reset();
        connect();
        stopping_ = false;
        flusher_ = std::thread([this] { flush_behind(); });
    }
    void do_close() noexcept override {
        stop_flusher();
        std::lock_guard lock(connection_mutex_);
        try {
            send_removals();
        } catch (const std::exception& e) {
            detail::default_logger()->warn("redis storage: {} removal(s) not sent at close: {}",
                                           removals_.size(), e.what());
        }
        removals_.clear();
        context_.reset();
    }

    void do_put(const std::string& key, std::string_view value) override {
        if (key == session_state_key) {
            if (options_.state_ttl.count() > 0) {
                command("SET %b %b EX %lld", {state_key_, value},
                        static_cast<long long>(options_.state_ttl.count()));
            } else {
                command("SET %b %b", {state_key_, value});
            }
            return;
        }
        command("HSET %b %b %b", {hash_, key, value});
    }

    std::optional<std::string> do_get(const std::string& key) override {
        auto reply = key == session_state_key ? command("GET %b", {state_key_})
                                              : command("HGET %b %b", {hash_, key});
        if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
        return std::string(reply->str, reply->len);
    }

    void do_remove(const std::string& key) override {
        if (key == session_state_key) {
            command("DEL %b", {state_key_});
            return;
        }
        std::lock_guard lock(connection_mutex_);
        removals_.push_back(key);
        if (removals_.size() == 1) {
            removals_since_ = std::chrono::steady_clock::now();
            wake_.notify_all();
        } else if (removals_.size() >= removal_batch) {
            send_removals();
        }
    }

    std::vector<std::string> do_keys() override {
        std::vector<std::string> keys;
        auto reply = command("HKEYS %b", {hash_});
        for (std::size_t i = 0; i < reply->elements; ++i) {
            keys.emplace_back(reply->element[i]->str, reply->element[i]->len);
        }
        if (command("EXISTS %b", {state_key_})->integer == 1) keys.emplace_back(session_state_key);
        return keys;
    }

    void do_clear() override { command("DEL %b %b", {hash_, state_key_}); }

  private:
    // The flusher: sends removals no command took along within removal_window.
    void flush_behind() {
        detail::name_this_thread("mqttx-redis");
        std::unique_lock lock(connection_mutex_);
        while (!stopping_) {
            if (removals_.empty()) {
                wake_.wait(lock, [&] { return stopping_ || !removals_.empty(); });
                continue;
            }
            const auto due = removals_since_ + removal_window;
            if (wake_.wait_until(lock, due, [&] { return stopping_ || removals_.empty(); })) {
                continue;
            }
            try {
                send_removals();
            } catch (const std::exception& e) {
                // Redis is away: they go with the next command once it is back.
                detail::default_logger()->warn("redis storage: {} removal(s) wait: {}",
                                               removals_.size(), e.what());
                wake_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
            }
        }
    }

    void stop_flusher() noexcept {
        {
            std::lock_guard lock(connection_mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (flusher_.joinable()) flusher_.join();
    }

    // With connection_mutex_ held: the queued removals, one pipeline, one round trip.
    void send_removals() {
        if (removals_.empty()) return;
        if (!context_) connect();
        for (const auto& key : removals_) {
            redisAppendCommand(context_.get(), "HDEL %b %b", hash_.data(), hash_.size(), key.data(),
                               key.size());
        }
        for (std::size_t i = 0; i < removals_.size(); ++i) {
            void* raw = nullptr;
            if (redisGetReply(context_.get(), &raw) != REDIS_OK) {
                const std::string why = context_->errstr;
                context_.reset();  // what was sent may or may not be done: HDEL repeats safely
                throw std::system_error(std::make_error_code(std::errc::connection_aborted),
                                        "Redis at " + options_.redis_address + ": " + why);
            }
            freeReplyObject(raw);
        }
        removals_.clear();
    }

    void connect() {
        const auto timeout = to_timeval(options_.redis_connect_timeout);
        std::unique_ptr<redisContext, ContextDeleter> context(
            redisConnectWithTimeout(host_.c_str(), port_, timeout));
        if (!context) throw std::runtime_error("cannot allocate a Redis context");
        if (context->err) {
            throw std::runtime_error("cannot connect to Redis at " + options_.redis_address + ": " +
                                     context->errstr);
        }
        const auto command_timeout = to_timeval(options_.redis_command_timeout);
        redisSetTimeout(context.get(), command_timeout);
        context_ = std::move(context);
        try {
            if (!options_.redis_password.empty()) {
                if (options_.redis_user.empty()) {
                    command_once("AUTH %b", {options_.redis_password});
                } else {
                    command_once("AUTH %b %b", {options_.redis_user, options_.redis_password});
                }
            }
            if (options_.redis_db != 0) command_once("SELECT %d", {}, options_.redis_db);
        } catch (...) {
            context_.reset();
            throw;
        }
    }

    // Runs one command after the queued removals; on a broken connection connects once
    // more and retries.
    template <class... Extra>
    Reply command(const char* format, std::initializer_list<std::string_view> args,
                  Extra... extra) {
        std::lock_guard lock(connection_mutex_);
        if (!context_) connect();
        try {
            send_removals();
            return command_once(format, args, extra...);
        } catch (const std::system_error&) {
            context_.reset();  // the connection is broken: one fresh attempt
            connect();
            send_removals();
            return command_once(format, args, extra...);
        }
    }

    template <class... Extra>
    Reply command_once(const char* format, std::initializer_list<std::string_view> args,
                       Extra... extra) {
        void* raw = nullptr;
        const auto* a = args.begin();
        switch (args.size()) {
            case 0:
                raw = redisCommand(context_.get(), format, extra...);
                break;
            case 1:
                raw = redisCommand(context_.get(), format, a[0].data(), a[0].size(), extra...);
                break;
            case 2:
                raw = redisCommand(context_.get(), format, a[0].data(), a[0].size(), a[1].data(),
                                   a[1].size(), extra...);
                break;
            case 3:
                raw = redisCommand(context_.get(), format, a[0].data(), a[0].size(), a[1].data(),
                                   a[1].size(), a[2].data(), a[2].size(), extra...);
                break;
            default:
                throw std::logic_error("too many Redis arguments");
        }
        Reply reply(static_cast<redisReply*>(raw));
        if (!reply) {
            // The connection failed: the context is unusable until reconnected.
            const std::string why = context_->errstr;
            context_.reset();
            throw std::system_error(std::make_error_code(std::errc::connection_aborted),
                                    "Redis at " + options_.redis_address + ": " + why);
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            // Never echo the command: it may hold the password or a payload.
            throw std::runtime_error("Redis refused the command: " +
                                     std::string(reply->str, reply->len));
        }
        return reply;
    }

    const StorageOptions options_;
    std::string host_;
    int port_ = 0;
    std::string hash_;
    std::string state_key_;
    std::mutex connection_mutex_;  // below Storage's: the flusher takes only this one
    std::unique_ptr<redisContext, ContextDeleter> context_;
    std::vector<std::string> removals_;  // queued HDELs, in order
    std::chrono::steady_clock::time_point removals_since_{};
    std::condition_variable wake_;
    std::thread flusher_;
    bool stopping_ = false;
};

}  // namespace

std::unique_ptr<Storage> make_redis_storage(const StorageOptions& options) {
    return std::make_unique<RedisStorage>(options);
}

}  // namespace mqttx
