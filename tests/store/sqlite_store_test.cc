// Runs the JobStore conformance suite against SqliteStore, each test on a
// fresh database in its own temporary directory, plus a few checks of what
// is specific to the SQLite backend (opening by URL and path).
#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include "store/testing/fault_vfs.h"
#include "store/testing/job_store_conformance.h"
#include "store/testing/job_store_search_conformance.h"
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
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, JobStoreSearchConformanceTest,
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
        "DROP INDEX jobs_finished; ALTER TABLE jobs DROP COLUMN attempt_log; "
        "ALTER TABLE jobs DROP COLUMN attempt_log_total; "
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
        "DROP INDEX jobs_finished; ALTER TABLE jobs DROP COLUMN attempt_log; "
        "ALTER TABLE jobs DROP COLUMN attempt_log_total; "
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

TEST(SqliteStoreTest, AVersion7StoreIsMigratedAndItsJobsHaveAnEmptyAttemptHistory) {
  TempDir dir;
  const std::string path = dir.path() + "/old.db";
  NewJob n;
  n.id = JobId::Random();
  n.queue = "q";
  n.payload = "kept";
  n.now = n.run_at = 1'000;
  n.max_depth = 10;
  n.max_attempts = 3;
  {
    auto store = Must(SqliteStore::Open(path), "open");
    auto tx = Must(store->BeginWrite(), "BeginWrite");
    Must(tx->Insert(n), "Insert");
    Must(tx->Commit(), "Commit");
  }
  {
    // Turn it into what acceptd with schema version 7 left on disk.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* downgrade =
        "DROP INDEX jobs_finished; ALTER TABLE jobs DROP COLUMN attempt_log; "
        "ALTER TABLE jobs DROP COLUMN attempt_log_total; PRAGMA user_version = 7;";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, downgrade, nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_close(db);
  }
  auto store = Must(SqliteStore::Open(path), "open migrated");
  AttemptHistory h = Must(store->GetAttempts(n.id), "GetAttempts");
  EXPECT_TRUE(h.attempts.empty());
  EXPECT_EQ(h.dropped, 0);
  // The new columns and the index work on the migrated store.
  ClaimParams c;
  c.queue = "q";
  c.owner = "node";
  c.now = 2'000;
  c.lease_expires_at = 9'000;
  auto tx = Must(store->BeginWrite(), "BeginWrite");
  auto claimed = Must(tx->Claim(c), "Claim");
  ASSERT_EQ(claimed.size(), 1u);
  Must(tx->Finish(AttemptOutcome::Succeeded(n.id, claimed[0].lease_token, 3'000, "r", "t")),
       "Finish");
  Must(tx->Commit(), "Commit");
  h = Must(store->GetAttempts(n.id), "GetAttempts");
  ASSERT_EQ(h.attempts.size(), 1u);
  EXPECT_EQ(h.attempts[0].end, AttemptEnd::kSucceeded);
  auto t = Must(store->Throughput(0, 60'000, 1), "Throughput");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].succeeded, std::vector<int64_t>{1});
}

// Pipelined commits: CommitUnsynced returns before the WAL is synced; the
// store's sync thread syncs it through the VFS. These hold the sync at the
// fault VFS's gate to look inside the window.
class SqlitePipelinedCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vfs_.Reset();
    store_ =
        Must(SqliteStore::Open(dir_.path() + "/jobs.db", store_testing::FaultVfs::kName), "open");
  }
  void TearDown() override {
    vfs_.SetWalSyncGate(false);
    store_.reset();
    vfs_.Reset();
  }
  NewJob Job1() {
    NewJob n;
    n.id = JobId::Random();
    n.queue = "q";
    n.payload = "p";
    n.now = n.run_at = 1'000;
    n.max_depth = 100;
    return n;
  }
  CommitToken InsertUnsynced(const NewJob& n) {
    auto tx = Must(store_->BeginWrite(), "BeginWrite");
    EXPECT_TRUE(IsOk(tx->Insert(n)));
    return Must(tx->CommitUnsynced(), "CommitUnsynced");
  }
  // Until a sync waits at the closed gate.
  void AwaitSyncAtGate() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (vfs_.syncs_waiting() == 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no sync reached the gate";
      std::this_thread::yield();
    }
  }

  store_testing::FaultVfs& vfs_ = store_testing::FaultVfs::Instance();
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqlitePipelinedCommitTest, ACommitIsReportedDurableOnlyAfterItsSync) {
  vfs_.SetWalSyncGate(true);
  const CommitToken token = InsertUnsynced(Job1());
  ASSERT_GT(token, 0);
  std::promise<bool> durable;
  store_->WhenDurable(token, [&](const Error* e) { durable.set_value(e == nullptr); });
  AwaitSyncAtGate();
  // The next transaction is written while the first one's sync waits.
  const NewJob second = Job1();
  const CommitToken token2 = InsertUnsynced(second);
  EXPECT_GT(token2, token);
  auto reported = durable.get_future();
  EXPECT_EQ(reported.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
      << "reported durable before its sync";
  vfs_.SetWalSyncGate(false);
  EXPECT_TRUE(reported.get());
  EXPECT_TRUE(IsOk(store_->WaitDurable(token2)));
}

// A poll must not say what a power loss could undo: a read that meets a row
// changed by a commit not yet durable waits for the sync; one that meets
// only synced rows answers at once.
TEST_F(SqlitePipelinedCommitTest, AReadOfAChangeNotYetDurableWaitsForItsSync) {
  const NewJob old_job = Job1();
  {
    auto tx = Must(store_->BeginWrite(), "BeginWrite");
    ASSERT_TRUE(IsOk(tx->Insert(old_job)));
    Must(tx->Commit(), "Commit");  // durable
  }
  vfs_.SetWalSyncGate(true);
  const NewJob fresh = Job1();
  InsertUnsynced(fresh);
  AwaitSyncAtGate();
  EXPECT_EQ(Must(store_->Get(old_job.id), "Get old").state, JobState::kQueued)
      << "a synced row is read at once";
  auto read = std::async(std::launch::async, [&] { return store_->Get(fresh.id); });
  auto result = std::async(std::launch::async, [&] { return store_->GetResult(fresh.id); });
  auto list = std::async(std::launch::async, [&] { return store_->List(ListParams{}); });
  EXPECT_EQ(read.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout)
      << "Get answered with a row that is not durable";
  EXPECT_EQ(result.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(list.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  vfs_.SetWalSyncGate(false);
  EXPECT_EQ(Must(read.get(), "Get").state, JobState::kQueued);
  EXPECT_EQ(Must(result.get(), "GetResult").state, JobState::kQueued);
  EXPECT_EQ(Must(list.get(), "List").jobs.size(), 2u);
}

// A failed sync: the commits it should have covered are reported failed,
// the reads waiting for it fail, and the store stops (fail-stop).
TEST_F(SqlitePipelinedCommitTest, AFailedSyncFailsTheCommitsAndReadsWaitingForIt) {
  vfs_.SetWalSyncGate(true);
  const NewJob n = Job1();
  const CommitToken token = InsertUnsynced(n);
  AwaitSyncAtGate();
  std::promise<std::optional<Error>> durable;
  store_->WhenDurable(token, [&](const Error* e) {
    durable.set_value(e ? std::optional<Error>(*e) : std::nullopt);
  });
  auto read = std::async(std::launch::async, [&] { return store_->Get(n.id); });
  vfs_.SetSyncFailure(true, store_testing::FaultVfs::Files::kWal);
  vfs_.SetWalSyncGate(false);
  auto failure = durable.get_future().get();
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->code, ErrorCode::kUnavailable);
  EXPECT_TRUE(IsError(read.get(), ErrorCode::kUnavailable));
  EXPECT_TRUE(IsError(store_->BeginWrite(), ErrorCode::kUnavailable));
  EXPECT_TRUE(IsError(store_->Ping(), ErrorCode::kUnavailable));
}

// The engine looks for due jobs every few milliseconds in a batch of its own;
// when it finds none, that commit writes nothing and must cost no fsync.
TEST_F(SqlitePipelinedCommitTest, ACommitThatWroteNothingNeedsNoSync) {
  vfs_.SetWalSyncGate(true);
  const int64_t syncs = store_->syncs();
  auto tx = Must(store_->BeginWrite(), "BeginWrite");
  EXPECT_TRUE(Must(tx->Claim(ClaimParams{"q", 5, "node", 2'000, 60'000}), "Claim").empty());
  const CommitToken token = Must(tx->CommitUnsynced(), "CommitUnsynced");
  auto durable = std::async(std::launch::async, [&] { return store_->WaitDurable(token); });
  ASSERT_EQ(durable.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "an empty commit waited for a sync";
  EXPECT_TRUE(IsOk(durable.get()));
  EXPECT_EQ(vfs_.syncs_waiting(), 0);
  EXPECT_EQ(store_->syncs(), syncs);
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
