// Redis storage (hiredis): one hash per client id, named prefix + client id; the
// session state goes to its own key (prefix + client id + ":state") so that it can
// expire (StorageOptions::state_ttl). One connection; after a failure the next call
// connects again.
//
// Writes are pipelined: put() hands its command to the kernel (so it reaches Redis
// even if the program dies next) and returns without waiting for the reply; remove()
// leaves its command for the next write or the flusher, within a millisecond. The
// flusher thread reads the replies as they come and reports the writes durable in
// order (when_durable), many per wake-up. Commands without a good reply yet are kept
// and sent again, in order, on the next connection: HSET and HDEL repeat safely. A
// write Redis refuses is not durable: it is sent again until Redis takes it, and
// put() fails meanwhile, naming Redis's reason. Reads and the session state's commands
// wait for their reply, after the pipeline's.
#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
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
using Context = std::unique_ptr<redisContext, ContextDeleter>;

// The flusher waits this long for replies before it looks again (a stop, a reply a
// read took along, a new connection).
constexpr int reply_poll_ms = 1;
// A removal waits at most this long for a write to ride along with: it need not be
// in the kernel before remove() returns (lost in a crash, its message is sent again:
// a duplicate, not a loss), and one system call for many saves Paho's thread and Redis.
constexpr auto removal_window = std::chrono::milliseconds(1);
// While Redis is away, the flusher tries to connect again this often.
constexpr auto reconnect_interval = std::chrono::milliseconds(100);

timeval to_timeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000),
                   static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

// A command in Redis's wire encoding.
template <class... Args>
std::string formatted(const char* format, Args... args) {
    char* raw = nullptr;
    const int length = redisFormatCommand(&raw, format, args...);
    if (length < 0) throw std::runtime_error("cannot encode a Redis command");
    std::string command(raw, static_cast<std::size_t>(length));
    redisFreeCommand(raw);
    return command;
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
        defer_durability();
    }
    // A session destroys its storage without close(): what was written gets its reply
    // (bounded by the command timeout) and nobody is left waiting.
    ~RedisStorage() override {
        do_close();
        durable_through(issued_tickets());
    }

  protected:
    void do_open(const std::string& client_id) override {
        stop_flusher();
        std::lock_guard lock(connection_mutex_);
        hash_ = options_.redis_prefix + client_id;
        state_key_ = hash_ + ":state";
        context_.reset();
        context_ = open_connection();
        stopping_ = false;
        flusher_ = std::thread([this] { read_behind(); });
    }
    void do_close() noexcept override {
        stop_flusher();
        std::lock_guard lock(connection_mutex_);
        if (pipeline_.empty()) {
            context_.reset();
            return;
        }
        try {
            if (!context_) reconnect();
            read_pipelined(pipeline_.size());
        } catch (const std::exception& e) {
            detail::default_logger()->warn(
                "redis storage: {} write(s) without Redis's reply at close: {}", pipeline_.size(),
                e.what());
        }
        pipeline_.clear();
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
        pipeline(formatted("HSET %b %b %b", hash_.data(), hash_.size(), key.data(), key.size(),
                           value.data(), value.size()),
                 true);
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
        pipeline(formatted("HDEL %b %b", hash_.data(), hash_.size(), key.data(), key.size()),
                 false);
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

    void do_metrics(StorageMetrics& metrics) const override {
        std::lock_guard lock(connection_mutex_);
        metrics.unsynced_records = pipeline_.size();
        metrics.errors += refused_writes_;
    }

  private:
    // A pipelined write: its encoded command, and its ticket (Storage::put's).
    struct Pipelined {
        std::string command;
        std::uint64_t ticket = 0;
    };

    // With Storage's lock held, so that tickets follow the order of the commands. Sent
    // when this returns if `now`, else within removal_window; a connection found broken
    // is made again, once.
    void pipeline(std::string command, bool now) {
        std::lock_guard lock(connection_mutex_);
        if (now && !refusal_.empty()) {
            // Until Redis takes the refused write (the flusher sends it again), a new
            // one would not be durable either: the publish fails instead.
            throw std::runtime_error("Redis refuses writes: " + refusal_);
        }
        pipeline_.push_back({std::move(command), issued_tickets() + 1});
        try {
            try {
                if (!context_) {
                    reconnect();  // sends the whole pipeline, this one too
                } else {
                    const auto& last = pipeline_.back().command;
                    redisAppendFormattedCommand(context_.get(), last.data(), last.size());
                    if (now) {
                        flush();
                    } else if (unflushed_++ == 0) {
                        unflushed_since_ = std::chrono::steady_clock::now();
                        wake_.notify_all();
                    }
                }
            } catch (const std::system_error&) {
                reconnect();
            }
        } catch (...) {
            pipeline_.pop_back();  // refused: it is not sent again later
            throw;
        }
        if (pipeline_.size() == 1) wake_.notify_all();
    }

    // The flusher: reads the pipeline's replies as they come and reports the writes
    // durable; while Redis is away, connects again and sends the pipeline again.
    void read_behind() {
        detail::name_this_thread("mqttx-redis");
        std::unique_lock lock(connection_mutex_);
        bool away = false;
        while (!stopping_) {
            try {
                if (!context_ && !pipeline_.empty()) connect_behind(lock);
                if (context_) read_arrived();
                if (away && refusal_.empty()) {
                    detail::default_logger()->info("redis storage: Redis takes writes again");
                    away = false;
                }
            } catch (const std::exception& e) {
                if (!away) {
                    detail::default_logger()->warn("redis storage: {} write(s) wait for Redis: {}",
                                                   pipeline_.size(), e.what());
                }
                away = true;
                wake_.wait_for(lock, reconnect_interval, [&] { return stopping_; });
                continue;
            }
            report_durable(lock);
            if (pipeline_.empty()) {
                wake_.wait(lock, [&] {
                    return stopping_ || !pipeline_.empty() || replied_through_ > reported_;
                });
                continue;
            }
            if (!context_) continue;  // a read broke it: connected again at the loop's top
            int wait_ms = reply_poll_ms;
            if (unflushed_ > 0) {
                const auto due = unflushed_since_ + removal_window;
                if (std::chrono::steady_clock::now() >= due) {
                    try {
                        flush();
                    } catch (const std::exception&) {
                        continue;  // connected again at the loop's top
                    }
                    continue;
                }
                wait_ms = 1;
            }
            // Waits for replies without the lock: publishers go on writing meanwhile.
            pollfd readable{context_->fd, POLLIN, 0};
            lock.unlock();
            ::poll(&readable, 1, wait_ms);
            lock.lock();
        }
        report_durable(lock);
    }

    // A new connection for the pipeline, made without the lock: while Redis is away,
    // each attempt can take the connect timeout, and publishers must not wait on it.
    void connect_behind(std::unique_lock<std::mutex>& lock) {
        Context fresh;
        lock.unlock();
        try {
            fresh = open_connection();
        } catch (...) {
            lock.lock();
            throw;
        }
        lock.lock();
        if (context_) return;  // a publisher connected meanwhile
        context_ = std::move(fresh);
        send_pipeline();
    }

    void report_durable(std::unique_lock<std::mutex>& lock) {
        if (replied_through_ <= reported_) return;
        reported_ = replied_through_;
        const auto through = reported_;
        lock.unlock();
        durable_through(through);  // runs token completions: never under our lock
        lock.lock();
    }

    void stop_flusher() noexcept {
        {
            std::lock_guard lock(connection_mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (flusher_.joinable()) flusher_.join();
    }

    // With connection_mutex_ held, from here on.

    // The replies that have come, without waiting for more.
    void read_arrived() {
        pollfd readable{context_->fd, POLLIN, 0};
        if (::poll(&readable, 1, 0) > 0 && redisBufferRead(context_.get()) != REDIS_OK) broken();
        while (!pipeline_.empty()) {
            void* raw = nullptr;
            if (redisGetReplyFromReader(context_.get(), &raw) != REDIS_OK) broken();
            if (!raw) return;
            settle(Reply(static_cast<redisReply*>(raw)));
        }
    }

    // The replies of the first `count` pipelined writes, waited for.
    void read_pipelined(std::size_t count) {
        for (; count > 0; --count) {
            void* raw = nullptr;
            if (redisGetReply(context_.get(), &raw) != REDIS_OK) broken();
            settle(Reply(static_cast<redisReply*>(raw)));
        }
        if (replied_through_ > reported_) wake_.notify_all();
    }

    // The reply of the pipeline's first write. A refusal (out of memory, a read-only
    // replica, still loading) leaves it first, not durable, and breaks the connection:
    // later commands were applied or not, and all go again, in order, once Redis takes
    // writes. Removals after it were applied (see docs/persistence.md, "Not done yet").
    void settle(Reply reply) {
        if (reply->type == REDIS_REPLY_ERROR) {
            const std::string why(reply->str, reply->len);
            if (why != refusal_) {
                ++refused_writes_;
                detail::default_logger()->error("redis storage: Redis refused a write: {}", why);
            }
            refusal_ = why;
            context_.reset();
            throw std::system_error(std::make_error_code(std::errc::connection_aborted),
                                    "Redis refused a write: " + why);
        }
        replied_through_ = pipeline_.front().ticket;
        pipeline_.pop_front();
        refusal_.clear();
    }

    void flush() {
        unflushed_ = 0;
        int done = 0;
        while (!done) {
            if (redisBufferWrite(context_.get(), &done) != REDIS_OK) broken();
        }
    }

    [[noreturn]] void broken() {
        // What was sent may or may not be done: the pipeline is sent again, and repeats
        // safely.
        const std::string why = context_->errstr;
        context_.reset();
        throw std::system_error(std::make_error_code(std::errc::connection_aborted),
                                "Redis at " + options_.redis_address + ": " + why);
    }

    void reconnect() {
        context_.reset();
        context_ = open_connection();
        send_pipeline();
    }

    // The pipeline again, in order, on a new connection.
    void send_pipeline() {
        for (const auto& write : pipeline_) {
            redisAppendFormattedCommand(context_.get(), write.command.data(), write.command.size());
        }
        flush();
    }

    // A new connection, authenticated and on its database. Touches nothing of this
    // storage but its options: the flusher calls it without the lock.
    Context open_connection() const {
        const auto timeout = to_timeval(options_.redis_connect_timeout);
        Context context(redisConnectWithTimeout(host_.c_str(), port_, timeout));
        if (!context) throw std::runtime_error("cannot allocate a Redis context");
        if (context->err) {
            throw std::runtime_error("cannot connect to Redis at " + options_.redis_address + ": " +
                                     context->errstr);
        }
        redisSetTimeout(context.get(), to_timeval(options_.redis_command_timeout));
        const auto& user = options_.redis_user;
        const auto& password = options_.redis_password;
        if (!password.empty() && user.empty()) {
            expect_ok(*context,
                      redisCommand(context.get(), "AUTH %b", password.data(), password.size()));
        } else if (!password.empty()) {
            expect_ok(*context, redisCommand(context.get(), "AUTH %b %b", user.data(), user.size(),
                                             password.data(), password.size()));
        }
        if (options_.redis_db != 0) {
            expect_ok(*context, redisCommand(context.get(), "SELECT %d", options_.redis_db));
        }
        return context;
    }

    void expect_ok(redisContext& context, void* raw) const {
        const Reply reply(static_cast<redisReply*>(raw));
        if (!reply) {
            throw std::runtime_error("Redis at " + options_.redis_address + ": " + context.errstr);
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            // Never echo the command: it holds the password.
            throw std::runtime_error("Redis refused the command: " +
                                     std::string(reply->str, reply->len));
        }
    }

    // One command and its reply, after the pipeline's; on a broken connection connects
    // once more and retries.
    template <class... Extra>
    Reply command(const char* format, std::initializer_list<std::string_view> args,
                  Extra... extra) {
        std::lock_guard lock(connection_mutex_);
        try {
            if (!context_) reconnect();
            return exchange(pipeline_.size(), format, args, extra...);
        } catch (const std::system_error&) {
            reconnect();  // the connection is broken: one fresh attempt
            return exchange(pipeline_.size(), format, args, extra...);
        }
    }

    // Sends one command and returns its reply, which comes after those of the first
    // `pipelined` writes of the pipeline.
    template <class... Extra>
    Reply exchange(std::size_t pipelined, const char* format,
                   std::initializer_list<std::string_view> args, Extra... extra) {
        const auto* a = args.begin();
        switch (args.size()) {
            case 0:
                redisAppendCommand(context_.get(), format, extra...);
                break;
            case 1:
                redisAppendCommand(context_.get(), format, a[0].data(), a[0].size(), extra...);
                break;
            case 2:
                redisAppendCommand(context_.get(), format, a[0].data(), a[0].size(), a[1].data(),
                                   a[1].size(), extra...);
                break;
            default:
                throw std::logic_error("too many Redis arguments");
        }
        flush();
        read_pipelined(pipelined);
        void* raw = nullptr;
        if (redisGetReply(context_.get(), &raw) != REDIS_OK) broken();
        Reply reply(static_cast<redisReply*>(raw));
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
    mutable std::mutex connection_mutex_;  // below Storage's: the flusher takes only this one
    Context context_;
    std::deque<Pipelined> pipeline_;     // sent, their replies not read yet, in order
    std::uint64_t replied_through_ = 0;  // the ticket of the last write Redis replied to
    std::uint64_t reported_ = 0;         // ... and the last one reported durable
    std::uint64_t refused_writes_ = 0;
    std::string refusal_;        // why Redis refused the pipeline's first write; empty: it did not
    std::size_t unflushed_ = 0;  // removals in the connection's buffer, not sent yet
    std::chrono::steady_clock::time_point unflushed_since_{};
    std::condition_variable wake_;
    std::thread flusher_;
    bool stopping_ = false;
};

}  // namespace

std::unique_ptr<Storage> make_redis_storage(const StorageOptions& options) {
    return std::make_unique<RedisStorage>(options);
}

}  // namespace mqttx
