// Redis storage (hiredis): one hash per client id, named prefix + client id; the
// session state goes to its own key (prefix + client id + ":state") so that it can
// expire (StorageOptions::state_ttl). One connection, used under Storage's lock;
// after a failure the next call connects again.
#include <hiredis/hiredis.h>

#include <charconv>
#include <memory>
#include <stdexcept>

#include "mqttx/error.hpp"
#include "mqttx/storage.hpp"

namespace mqttx {

namespace {

struct ReplyDeleter {
    void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
    void operator()(redisContext* context) const noexcept { redisFree(context); }
};

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

  protected:
    void do_open(const std::string& client_id) override {
        hash_ = options_.redis_prefix + client_id;
        state_key_ = hash_ + ":state";
        context_.reset();
        connect();
    }
    void do_close() noexcept override { context_.reset(); }

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
        } else {
            command("HDEL %b %b", {hash_, key});
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

    // Runs one command; on a broken connection connects once more and retries.
    template <class... Extra>
    Reply command(const char* format, std::initializer_list<std::string_view> args,
                  Extra... extra) {
        if (!context_) connect();
        try {
            return command_once(format, args, extra...);
        } catch (const std::system_error&) {
            context_.reset();  // the connection is broken: one fresh attempt
            connect();
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
    std::unique_ptr<redisContext, ContextDeleter> context_;
};

}  // namespace

std::unique_ptr<Storage> make_redis_storage(const StorageOptions& options) {
    return std::make_unique<RedisStorage>(options);
}

}  // namespace mqttx
