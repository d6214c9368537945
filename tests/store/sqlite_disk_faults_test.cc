// What the SQLite store logs about disk faults reaches the process's
// configured logger (the one `acceptd serve` sets up), not a logger of its own.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "store/sqlite/sqlite_store.h"
#include "store/testing/fault_vfs.h"
#include "store/testing/store_test_util.h"

namespace acceptd {
namespace {

using store_testing::FaultVfs;
using store_testing::Must;
using store_testing::TempDir;

// The store was once built with spdlog header-only: its messages (checkpoint
// failures, a full disk, a failed fsync) went to a default logger of their
// own, on stdout, whatever --log-dir and --log-level said.
TEST(SqliteStoreLoggingTest, StoreMessagesReachTheConfiguredDefaultLogger) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  FaultVfs& vfs = FaultVfs::Instance();
  vfs.Reset();
  {
    TempDir dir;
    auto store = Must(SqliteStore::Open(dir.path() + "/jobs.db", FaultVfs::kName), "open");
    vfs.SetDiskFull(true);
    auto tx = Must(store->BeginWrite(), "BeginWrite");
    NewJob n;
    n.id = JobId::Random();
    n.queue = "q";
    n.payload = std::string(100'000, 'x');  // more than the page cache holds back
    n.max_depth = 10;
    auto inserted = tx->Insert(n);
    Status committed = inserted ? tx->Commit() : Status(inserted.error());
    EXPECT_TRUE(store_testing::IsError(committed, ErrorCode::kUnavailable));
    vfs.SetDiskFull(false);
  }
  vfs.Reset();
  spdlog::set_default_logger(previous);
  bool seen = false;
  for (const std::string& line : sink->last_formatted()) {
    if (line.find("is full") != std::string::npos) seen = true;
  }
  EXPECT_TRUE(seen) << "the store's 'disk is full' error did not reach the configured logger";
}

}  // namespace
}  // namespace acceptd
