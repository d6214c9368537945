// Runs the JobStore conformance suite against SqliteStore, each test on a
// fresh database in its own temporary directory, plus a few checks of what
// is specific to the SQLite backend (opening by URL and path).
#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "store/testing/job_store_conformance.h"
#include "store/testing/store_test_util.h"

namespace acceptd {
namespace {

using store_testing::IsError;
using store_testing::IsOk;
using store_testing::Must;
using store_testing::TempDir;

class SqliteStoreFactory {
 public:
  // A directory that does not exist yet: Open() must create it.
  SqliteStoreFactory() : path_(dir_.path() + "/data/jobs.db") {}

  Result<std::unique_ptr<JobStore>> Open() {
    auto store = SqliteStore::Open(path_);
    if (!store) return std::move(store).error();
    return std::unique_ptr<JobStore>(std::move(*store));
  }

 private:
  TempDir dir_;
  std::string path_;
};

}  // namespace

namespace store_testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, JobStoreConformanceTest,
                               ::testing::Types<SqliteStoreFactory>);
}  // namespace store_testing

namespace {

TEST(SqliteStoreTest, OpenStoreBySqliteUrlCreatesTheDirectory) {
  TempDir dir;
  const std::string path = dir.path() + "/a/b/acceptd.db";
  auto store = OpenStore("sqlite:" + path);
  ASSERT_TRUE(IsOk(store));
  EXPECT_TRUE(IsOk((*store)->Ping()));
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(SqliteStoreTest, OpenStoreRejectsOtherUrls) {
  EXPECT_TRUE(IsError(OpenStore("mysql://localhost/db"), ErrorCode::kInvalidArgument));
  EXPECT_TRUE(IsError(OpenStore("/just/a/path.db"), ErrorCode::kInvalidArgument));
}

TEST(SqliteStoreTest, OpenFailsWhenTheDirectoryCannotBeCreated) {
  TempDir dir;
  const std::string file = dir.path() + "/file";
  { std::ofstream(file) << "not a directory"; }
  auto store = SqliteStore::Open(file + "/sub/jobs.db");
  EXPECT_TRUE(IsError(store, ErrorCode::kUnavailable));
}

TEST(SqliteStoreTest, TwoStoreObjectsOnOneFileSeeEachOthersCommits) {
  // Several engines may share one database: all dispatch state is in it.
  TempDir dir;
  const std::string path = dir.path() + "/shared.db";
  auto a = Must(SqliteStore::Open(path), "open a");
  auto b = Must(SqliteStore::Open(path), "open b");
  NewJob n;
  n.id = JobId::Random();
  n.queue = "q";
  n.payload = "p";
  n.now = n.run_at = 1'000;
  n.max_depth = 10;
  {
    auto tx = Must(a->BeginWrite(), "BeginWrite");
    ASSERT_TRUE(IsOk(tx->Insert(n)));
    Must(tx->Commit(), "Commit");
  }
  EXPECT_EQ(Must(b->Get(n.id), "Get").state, JobState::kQueued);
  {
    auto tx = Must(b->BeginWrite(), "BeginWrite");
    auto jobs = Must(tx->Claim(ClaimParams{"q", 5, "node-b", 2'000, 60'000}), "Claim");
    ASSERT_EQ(jobs.size(), 1u);
    Must(tx->Commit(), "Commit");
  }
  {
    // The job is b's now: a cannot claim it again.
    auto tx = Must(a->BeginWrite(), "BeginWrite");
    EXPECT_TRUE(Must(tx->Claim(ClaimParams{"q", 5, "node-a", 3'000, 60'000}), "Claim").empty());
    Must(tx->Commit(), "Commit");
  }
  EXPECT_EQ(Must(a->Get(n.id), "Get").lease_owner, "node-b");
}

TEST(SqliteStoreTest, AVersion2StoreIsMigratedAndKeepsItsJobs) {
  TempDir dir;
  const std::string path = dir.path() + "/old.db";
  NewJob n;
  n.id = JobId::Random();
  n.queue = "q";
  n.payload = "kept";
  n.now = n.run_at = 1'000;
  n.max_depth = 10;
  {
    auto store = Must(SqliteStore::Open(path), "open");
    auto tx = Must(store->BeginWrite(), "BeginWrite");
    Must(tx->Insert(n), "Insert");
    Must(tx->Commit(), "Commit");
  }
  {
    // Turn it into what acceptd with schema version 2 left on disk.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* downgrade =
        "ALTER TABLE jobs DROP COLUMN attempt_started_at; "
        "ALTER TABLE jobs DROP COLUMN lease_within_timeout; "
        "DROP INDEX jobs_idempotency; ALTER TABLE jobs DROP COLUMN tenant; "
        "CREATE UNIQUE INDEX jobs_idempotency ON jobs(queue, idempotency_key) "
        "WHERE idempotency_key IS NOT NULL; "
        "DROP TRIGGER jobs_callback_due; DROP INDEX jobs_callbacks; "
        "ALTER TABLE jobs DROP COLUMN callback_url; ALTER TABLE jobs DROP COLUMN "
        "callback_attempts; "
        "ALTER TABLE jobs DROP COLUMN callback_status; ALTER TABLE jobs DROP COLUMN "
        "callback_error; "
        "ALTER TABLE jobs DROP COLUMN callback_delivered_at; "
        "ALTER TABLE jobs DROP COLUMN callback_next_at; PRAGMA user_version = 2;";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, downgrade, nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_close(db);
  }
  auto store = Must(SqliteStore::Open(path), "open migrated");
  EXPECT_EQ(Must(store->GetPayload(n.id), "GetPayload").body, "kept");
  NewJob m = n;
  m.id = JobId::Random();
  m.callback_url = "http://hooks.example/x";
  auto tx = Must(store->BeginWrite(), "BeginWrite");
  EXPECT_EQ(Must(tx->Insert(m), "Insert").callback->url, "http://hooks.example/x");
  ASSERT_TRUE(IsOk(tx->Cancel(m.id, 2'000)));
  auto due = Must(tx->ClaimCallbacks(2'000, 10, 9'000), "ClaimCallbacks");
  ASSERT_EQ(due.size(), 1u) << "the trigger exists after migration";
  Must(tx->Commit(), "Commit");
}

// Schema 4 added the tenant: jobs of an older store belong to no tenant, and
// the idempotency index becomes per tenant.
TEST(SqliteStoreTest, AVersion3StoreIsMigratedAndItsJobsBelongToNoTenant) {
  TempDir dir;
  const std::string path = dir.path() + "/old.db";
  NewJob n;
  n.id = JobId::Random();
  n.queue = "q";
  n.payload = "kept";
  n.now = n.run_at = 1'000;
  n.max_depth = 10;
  n.idempotency_key = "k";
  n.request_digest = "d";
  {
    auto store = Must(SqliteStore::Open(path), "open");
    auto tx = Must(store->BeginWrite(), "BeginWrite");
    Must(tx->Insert(n), "Insert");
    Must(tx->Commit(), "Commit");
  }
  {
    // Turn it into what acceptd with schema version 3 left on disk.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* downgrade =
        "ALTER TABLE jobs DROP COLUMN attempt_started_at; "
        "ALTER TABLE jobs DROP COLUMN lease_within_timeout; "
        "DROP INDEX jobs_idempotency; ALTER TABLE jobs DROP COLUMN tenant; "
        "CREATE UNIQUE INDEX jobs_idempotency ON jobs(queue, idempotency_key) "
        "WHERE idempotency_key IS NOT NULL; PRAGMA user_version = 3;";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, downgrade, nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_close(db);
  }
  auto store = Must(SqliteStore::Open(path), "open migrated");
  Job old = Must(store->Get(n.id), "Get");
  EXPECT_EQ(old.tenant, "");
  auto tx = Must(store->BeginWrite(), "BeginWrite");
  NewJob same = n;
  same.id = JobId::Random();
  EXPECT_EQ(Must(tx->Insert(same), "Insert").id, n.id) << "the old job's key still replays";
  NewJob other = same;
  other.tenant = "acme";
  EXPECT_EQ(Must(tx->Insert(other), "Insert").id, other.id) << "the index is per tenant";
  Must(tx->Commit(), "Commit");
}

}  // namespace
}  // namespace acceptd

namespace acceptd {
namespace {

// The end-to-end tail spikes of issue 11: once the WAL could not start over
// (under steady commits the writer's next transaction begins before a
// checkpoint pass ends; here a reader's open snapshot holds it), every commit
// found the WAL holding >= 128 frames and woke the checkpointer, whose pass
// ends with an fsync of the database file that the commits' WAL fsyncs queue
// behind: a database fsync per commit. A pass is due per 128 new frames.
TEST(SqliteStoreTest, CheckpointPerNewWalFramesNotPerCommitWhenTheWalCannotStartOver) {
  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  auto store = Must(SqliteStore::Open(path), "open");
  auto insert = [&](int i) {
    NewJob n;
    n.id = JobId::Random();
    n.queue = "q";
    n.payload = std::string(100, 'x');
    n.now = n.run_at = 1'000 + i;
    n.max_depth = 1'000'000;
    auto tx = Must(store->BeginWrite(), "BeginWrite");
    ASSERT_TRUE(IsOk(tx->Insert(n)));
    Must(tx->Commit(), "Commit");
  };
  insert(0);
  // A reader's snapshot: no checkpoint may copy past it, so the WAL grows.
  auto reader = Must(sqlite::SqliteDb::Open(path), "open reader");
  Must(reader->Exec("BEGIN"), "BEGIN");
  ASSERT_EQ(reader->Prepare("SELECT count(*) FROM jobs")->Step(), SQLITE_ROW);
  const int64_t before = store->checkpoint_requests();
  auto wal_frames = [&] {  // 32-byte header, then 24 + 4096 bytes per frame
    return static_cast<int64_t>((std::filesystem::file_size(path + "-wal") - 32) / (24 + 4096));
  };
  int commits = 0;
  while (wal_frames() < 400 && commits < 300) insert(++commits);
  const int64_t frames = wal_frames();
  ASSERT_GE(frames, 400) << "the WAL should have grown (commits: " << commits << ")";
  ASSERT_LT(frames, 1024) << "the writer's own pass at 1024 frames is not under test";
  // Before the fix: one request per commit once the WAL held 128 frames.
  EXPECT_LE(store->checkpoint_requests() - before, frames / 128 + 1)
      << commits << " commits, " << frames << " WAL frames";
  Must(reader->Exec("COMMIT"), "COMMIT");
}

}  // namespace
}  // namespace acceptd
