// The file backend's log: torn tails and damaged bytes at every offset, compaction while
// writing, the old file-per-record layout, group commit, a full disk.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <mqttx/error.hpp>
#include <mqttx/storage.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "support/collector.hpp"
#include "support/mosquitto.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using State = std::map<std::string, std::string>;

class FileLog : public ::testing::Test {
  protected:
    void TearDown() override { mqttx::test::remove_tree(dir_); }

    std::unique_ptr<mqttx::Storage> open(bool sync = false,
                                         std::size_t segment_bytes = mqttx::default_segment_bytes) {
        auto storage = mqttx::make_file_storage(dir_, sync, segment_bytes);
        storage->open("c");
        return storage;
    }
    State contents(mqttx::Storage& storage) {
        State state;
        for (const auto& key : storage.keys()) {
            if (auto value = storage.get(key)) state[key] = *value;
        }
        return state;
    }
    std::vector<fs::path> segments() {
        std::vector<fs::path> found;
        for (const auto& e : fs::directory_iterator(dir_ + "/c")) {
            if (e.path().filename().string().starts_with("seg-")) found.push_back(e.path());
        }
        std::sort(found.begin(), found.end());
        return found;
    }
    static std::string read(const fs::path& path) {
        std::ifstream in(path, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }
    static void write(const fs::path& path, const std::string& bytes) {
        std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    }

    // A small log of puts, an overwrite and removes in one segment: the state after each
    // operation, and the segment's size then (where each record ends).
    struct History {
        std::vector<std::pair<std::size_t, State>> steps;  // from the empty log on
        std::string bytes;
    };
    History write_history() {
        History history;
        auto storage = open();
        State state;
        const auto step = [&] {
            history.steps.emplace_back(fs::file_size(segments().at(0)), state);
        };
        step();
        const auto put = [&](const std::string& key, const std::string& value) {
            storage->put(key, value);
            state[key] = value;
            step();
        };
        const auto remove = [&](const std::string& key) {
            storage->remove(key);
            state.erase(key);
            step();
        };
        put("a", "first");
        put("b", std::string("bytes\0with a zero", 17));
        put("a", "overwritten");
        remove("b");
        put("c", "");
        remove("a");
        put("d", "last");
        storage->close();
        history.bytes = read(segments().at(0));
        return history;
    }

    std::string dir_ = mqttx::test::make_temp_dir("mqttx-log-");
};

TEST_F(FileLog, ATornTailAtEveryOffsetIsCutAtTheLastWholeRecord) {
    const auto history = write_history();
    const auto segment = segments().at(0);
    ASSERT_EQ(history.steps.back().first, history.bytes.size());
    for (std::size_t cut = 0; cut <= history.bytes.size(); ++cut) {
        write(segment, history.bytes.substr(0, cut));
        // What the log held after the last operation whose record ends by `cut`.
        State expected;
        bool on_boundary = false;
        for (const auto& [end, state] : history.steps) {
            if (end <= cut) expected = state;
            on_boundary = on_boundary || end == cut;
        }
        auto storage = open();
        EXPECT_EQ(contents(*storage), expected) << "cut at " << cut;
        EXPECT_EQ(storage->metrics().truncated_tails, on_boundary ? 0u : 1u) << "cut at " << cut;
        // The log goes on from there, and what is written next is read back after a
        // reopen.
        storage->put("after", "the cut");
        storage.reset();
        storage = open();
        auto with_next = expected;
        with_next["after"] = "the cut";
        EXPECT_EQ(contents(*storage), with_next) << "cut at " << cut;
        storage.reset();
        for (const auto& written : segments()) fs::remove(written);
    }
}

TEST_F(FileLog, ADamagedByteAtEveryOffsetIsCaughtAndTheLogCutBeforeItsRecord) {
    const auto history = write_history();
    const auto segment = segments().at(0);
    for (std::size_t at = 0; at < history.bytes.size(); ++at) {
        auto damaged = history.bytes;
        damaged[at] = static_cast<char>(damaged[at] ^ 0x5A);
        write(segment, damaged);
        // The record holding `at` and all after it are cut; a damaged header empties the
        // segment.
        State expected;
        for (const auto& [end, state] : history.steps) {
            if (end <= at) expected = state;
        }
        auto storage = open();
        EXPECT_EQ(contents(*storage), expected) << "byte " << at;
        EXPECT_EQ(storage->metrics().truncated_tails, 1u) << "byte " << at;
        storage.reset();
        for (const auto& written : segments()) fs::remove(written);
    }
}

TEST_F(FileLog, CompactionWhileWritingKeepsEveryLiveRecordAndBoundsTheDisk) {
    constexpr std::size_t segment_bytes = 4096;
    auto storage = open(false, segment_bytes);
    State expected;
    // A queue, as the outbox uses it: each record removed 20 writes after it was put,
    // and one record that lives through it all.
    storage->put("long-lived", "kept");
    expected["long-lived"] = "kept";
    for (int i = 0; i < 5000; ++i) {
        const auto key = "m-" + std::to_string(i);
        storage->put(key, std::string(100, static_cast<char>('a' + i % 26)));
        expected[key] = std::string(100, static_cast<char>('a' + i % 26));
        if (i >= 20) {
            storage->remove("m-" + std::to_string(i - 20));
            expected.erase("m-" + std::to_string(i - 20));
        }
    }
    ASSERT_TRUE(mqttx::test::wait_until(
        [&] { return storage->metrics().compactions > 0 && storage->metrics().segments < 10; },
        30s))
        << "segments: " << storage->metrics().segments;
    EXPECT_EQ(contents(*storage), expected);
    // 5000 records of about 130 bytes went through; what stays on disk is a few segments.
    EXPECT_LT(storage->metrics().bytes_on_disk, 10 * segment_bytes);
    storage.reset();
    storage = open(false, segment_bytes);
    EXPECT_EQ(contents(*storage), expected);
}

TEST_F(FileLog, TheFilePerRecordLayoutOfEarlierVersionsIsMovedIntoTheLog) {
    fs::create_directories(dir_ + "/c");
    const auto legacy = [&](const std::string& file, const std::string& value) {
        std::string bytes = "MQXR";
        const auto u32 = [&](std::uint32_t v) {
            for (int i = 0; i < 4; ++i) bytes += static_cast<char>((v >> (8 * i)) & 0xFF);
        };
        u32(static_cast<std::uint32_t>(value.size()));
        u32(static_cast<std::uint32_t>(
            ::crc32(0L, reinterpret_cast<const Bytef*>(value.data()), value.size())));
        write(dir_ + "/c/" + file, bytes + value);
    };
    legacy("mqttx-state", "the state");
    legacy("s-7", "a packet");
    legacy("key%20with%2Fodd", "encoded name");  // "key with/odd"
    write(dir_ + "/c/broken", "MQXR not a record");
    {
        auto storage = open(true);
        EXPECT_EQ(contents(*storage), (State{{"mqttx-state", "the state"},
                                             {"s-7", "a packet"},
                                             {"key with/odd", "encoded name"}}));
        EXPECT_EQ(storage->metrics().corrupt_records, 1u);
    }
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(dir_ + "/c")) {
        const auto name = e.path().filename().string();
        files.insert(name.starts_with("seg-") ? "segment" : name);
    }
    EXPECT_EQ(files, (std::set<std::string>{"segment", "broken.corrupt"}));
    auto storage = open(true);
    EXPECT_EQ(storage->get("s-7"), "a packet");
}

TEST_F(FileLog, SyncedWritesAreDurableInGroupCommitsAndWhenDurableWaitsForThem) {
    auto storage = open(true);
    constexpr int count = 500;
    std::atomic<int> durable{0};
    std::atomic<bool> early{false};
    for (int i = 0; i < count; ++i) {
        const auto ticket = storage->put("k" + std::to_string(i), "value");
        storage->when_durable(ticket, [&, s = storage.get()] {
            // Run after the group commit that covers the write: no record of it waits.
            if (s->metrics().synced_records < 1) early = true;
            ++durable;
        });
    }
    ASSERT_TRUE(mqttx::test::wait_until([&] { return durable == count; }, 30s)) << durable;
    EXPECT_FALSE(early);
    ASSERT_TRUE(
        mqttx::test::wait_until([&] { return storage->metrics().unsynced_records == 0; }, 30s));
    const auto metrics = storage->metrics();
    EXPECT_EQ(metrics.synced_records, static_cast<std::uint64_t>(count));
    EXPECT_GE(metrics.syncs, 1u);
    EXPECT_LE(metrics.syncs, metrics.synced_records);
}

TEST_F(FileLog, WithoutSyncAWriteIsDurableForTheProgramWhenPutReturns) {
    auto storage = open(false);
    bool called = false;
    storage->when_durable(storage->put("k", "v"), [&] { called = true; });
    EXPECT_TRUE(called);  // at once, on this thread
    EXPECT_EQ(storage->metrics().syncs, 0u);
}

TEST_F(FileLog, CloseReleasesWaitersAfterALastGroupCommit) {
    auto storage = open(true);
    std::atomic<int> released{0};
    for (int i = 0; i < 50; ++i) {
        storage->when_durable(storage->put("k" + std::to_string(i), "v"), [&] { ++released; });
    }
    storage->close();
    EXPECT_EQ(released, 50);
    storage = open(true);
    EXPECT_EQ(storage->keys().size(), 50u);
}

// A child process whose files may not grow past 64 KiB (RLIMIT_FSIZE): the put that
// does not fit fails with a storage error naming the segment, and every put before it
// is read back by the next open.
TEST_F(FileLog, AFullDiskFailsThePutNamingTheFileAndLosesNothingAccepted) {
    int channel[2];
    ASSERT_EQ(::pipe(channel), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(channel[0]);
        std::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
        rlimit limit{64 * 1024, 64 * 1024};
        ::setrlimit(RLIMIT_FSIZE, &limit);
        std::string report;
        try {
            auto storage = open(true);
            int accepted = 0;
            try {
                for (; accepted < 100000; ++accepted) {
                    storage->put("k" + std::to_string(accepted), std::string(1000, 'x'));
                }
                report = "no error";
            } catch (const mqttx::Error& e) {
                report = std::to_string(accepted) + " " +
                         std::to_string(static_cast<int>(e.kind())) + " " + e.what();
            }
        } catch (const std::exception& e) {
            report = std::string("open failed: ") + e.what();
        }
        (void)!::write(channel[1], report.data(), report.size());
        ::_exit(0);
    }
    ::close(channel[1]);
    std::string report;
    char buffer[4096];
    for (ssize_t n; (n = ::read(channel[0], buffer, sizeof buffer)) > 0;) report.append(buffer, n);
    ::close(channel[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    std::istringstream in(report);
    int accepted = -1;
    int kind = -1;
    in >> accepted >> kind;
    ASSERT_GT(accepted, 10) << report;
    EXPECT_EQ(kind, static_cast<int>(mqttx::ErrorKind::storage)) << report;
    EXPECT_NE(report.find("seg-"), std::string::npos) << report;
    EXPECT_NE(report.find("File too large"), std::string::npos) << report;
    auto storage = open(true);
    EXPECT_EQ(storage->keys().size(), static_cast<std::size_t>(accepted));
    for (int i = 0; i < accepted; ++i) {
        EXPECT_EQ(storage->get("k" + std::to_string(i)), std::string(1000, 'x')) << i;
    }
    EXPECT_EQ(storage->metrics().truncated_tails, 0u);  // the failed write left nothing
}

TEST_F(FileLog, HalfWrittenTemporaryFilesOfEarlierVersionsAreRemoved) {
    fs::create_directories(dir_ + "/c");
    write(dir_ + "/c/other.tmp", "a crash left this");
    auto storage = open();
    EXPECT_TRUE(storage->keys().empty());
    EXPECT_FALSE(fs::exists(dir_ + "/c/other.tmp"));
}

TEST_F(FileLog, AnUnwritableDirectoryIsAStorageErrorNamingIt) {
    auto storage = mqttx::make_file_storage("/proc/mqttx-cannot-be-here");
    try {
        storage->open("c");
        FAIL() << "open succeeded";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), mqttx::ErrorKind::storage);
        EXPECT_NE(std::string(e.what()).find("/proc/mqttx-cannot-be-here"), std::string::npos)
            << e.what();
    }
}

}  // namespace
