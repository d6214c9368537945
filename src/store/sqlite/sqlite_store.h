// SqliteStore: the embedded, zero-setup JobStore backend.
//
// One database file in WAL mode. Commits are pipelined (WriteTx::
// CommitUnsynced): the writer connection runs with synchronous=NORMAL, so
// COMMIT writes the transaction's WAL frames without syncing them, and a
// sync thread of the store then syncs the WAL file through SQLite's VFS (its
// own connection's handle of the same file) while the writer goes on with the
// next transaction. A commit is durable once a sync that began after it
// returned (Commit() waits for that). Reads that meet a row changed by a
// commit not yet durable wait for its sync (docs/store_contract.md,
// "Pipelined commits", has the whole argument, checkpoints included). Writes use one dedicated
// connection (SQLite allows one writer); reads use a pool of connections and
// never block on the writer. Queue counts per state are kept by triggers in
// the same transactions as the job rows, so depth checks are O(1).
//
// Every state change is checked against core's transition table by a
// temporary trigger of the writer connection (see CheckTransition), so a
// wrong statement fails instead of moving a job along an illegal edge.
//
// WAL checkpoints run on a thread of their own (PASSIVE, so they never block
// the writer): SQLite's automatic checkpoint would otherwise stall the commit
// that crosses the threshold, and every submit waiting on it.
//
// Disk faults (docs/operations.md): a write that fails because the disk is
// full makes Ping() fail until a write succeeds again (Ping() itself tries
// one), and writes resume by themselves. A failed fsync stops all writes for
// good (fail-stop): after it the kernel may have dropped the unsynced pages
// and marked them clean, so no later fsync could prove anything durable.
// BeginWrite() and Ping() then fail until the store is reopened.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/job_store.h"
#include "store/sqlite/sqlite_db.h"

namespace acceptd {

class SqliteStore final : public JobStore {
 public:
  // The schema version this binary writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 9;
  // Opens (creating the file, its directory and the schema if needed).
  // `vfs`: the registered SQLite VFS to open the files through (tests inject
  // disk faults with one); empty: SQLite's default.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                   const std::string& vfs = {});
  ~SqliteStore() override;

  Result<std::unique_ptr<WriteTx>> BeginWrite() override;
  Result<Job> Get(const JobId& id) override;
  Result<StoredResult> GetResult(const JobId& id) override;
  Result<StoredPayload> GetPayload(const JobId& id) override;
  Result<JobPage> List(const ListParams& params) override;
  Result<AttemptHistory> GetAttempts(const JobId& id) override;
  Result<std::vector<QueueThroughput>> Throughput(UnixMillis since, Millis step,
                                                  int buckets) override;
  Result<std::vector<QueueCounts>> Counts() override;
  Result<std::vector<QueueValue>> OldestReady() override;
  Result<std::vector<std::string>> PausedQueues() override;
  Result<NodeList> Nodes() override;
  Result<std::vector<ScheduleState>> ScheduleStates() override;
  Status Ping() override;
  void SetTransitionObserver(TransitionObserver observer) override;
  void WhenDurable(CommitToken token, std::function<void(const Error*)> done) override;
  // Blocks until commits up to `token` are durable (or that failed).
  Status WaitDurable(CommitToken token);
  // Syncs of the WAL made by the sync thread (tests, metrics).
  int64_t syncs() const { return syncs_.load(); }
  // Commits that succeeded and are not durable yet (tests: the pipelined
  // window; 2 means one was written while the one before it was syncing).
  int64_t UnsyncedCommits();

  // Background checkpoint passes requested by commits so far (tests).
  int64_t checkpoint_requests() const { return checkpoint_requests_.load(); }

 private:
  class Tx;
  class ReaderLease;
  SqliteStore(std::string path, std::string vfs) : path_(std::move(path)), vfs_(std::move(vfs)) {}
  static int OnWalCommit(void* arg, sqlite3* db, const char* name, int pages);
  // The error hook of the writing connections: notes a full disk or a failed fsync.
  static void OnDbError(void* arg, int extended_code);
  // While the disk is full: tries a one-page write transaction, which
  // clears disk_full_ if it commits. Waits for a running batch first.
  void ProbeWrite();
  // SQL function acceptd_transition(from, to) called by the writer's
  // triggers before each state change (from is NULL for an insert): reports
  // it to the observer and fails the statement if the table forbids it.
  static void CheckTransition(sqlite3_context* ctx, int argc, sqlite3_value** argv);
  void RunCheckpointer();
  void RunSyncer();
  // Update hook of the writer: notes the rows the open transaction changes.
  static void OnRowChanged(void* arg, int op, const char* db, const char* table,
                           sqlite3_int64 rowid);
  // Before a COMMIT: the commit's token, with the rows it changed marked as
  // not durable (before any reader can see them). After it: wakes the syncer.
  CommitToken BeginCommit();
  void EndCommit(CommitToken token, bool committed, bool wrote);
  // Reads call these after reading: they return once what they read is
  // durable (a row changed by a commit not yet synced waits for its sync;
  // the All form waits for every commit begun so far), or fail (fail-stop).
  Status AwaitRowDurable(int64_t seq);
  Status AwaitAllDurable();
  Status AwaitLocked(std::unique_lock<std::mutex>& lock, CommitToken token);

  // Small, frequent checkpoints: a checkpoint ends with an fsync of the
  // database file, and the commits' WAL fsyncs queue behind it on the disk.
  // At SQLite's default (1000 pages) that stall made the end-to-end p99
  // ~20 ms; at 128 pages it is ~8 ms, at no cost in throughput.
  // A pass is due once kCheckpointPages frames were added since the last
  // request, not whenever the WAL holds that many: under steady commits the
  // WAL rarely starts over (the writer's next transaction begins before the
  // pass ends), so "holds 128" was true after every commit, and the database
  // fsync of a pass per commit stalled the commits' own WAL fsyncs.
  static constexpr int kCheckpointPages = 128;
  // The WAL can start over only when a write transaction begins with every
  // frame copied, which under steady commits takes a pass by the writer
  // itself: from kCheckpointHardPages frames on, inside a commit, so it
  // stalls every commit behind it. It runs only once the background pass has
  // copied all but the last kCheckpointWriterGap frames (a short pass: a few
  // pages and one database fsync). Copying hundreds of frames there took
  // 0.1-1.7 s when the disk was slow and the background pass behind (issue
  // 11's tail spikes). Past kCheckpointForcePages it runs whatever it costs,
  // so the WAL stays bounded.
  static constexpr int kCheckpointHardPages = 1024;
  static constexpr int kCheckpointWriterGap = 2 * kCheckpointPages;
  static constexpr int kCheckpointForcePages = 8 * kCheckpointHardPages;
  static constexpr std::chrono::seconds kCheckpointInterval{1};
  // A writer's pass at least this long is logged (a warning).
  static constexpr int64_t kSlowWriterCheckpointMs = 50;
  // A WAL sync at least this long is logged (a warning).
  static constexpr int64_t kSlowSyncMs = 50;
  Result<ReaderLease> AcquireReader();
  void ReleaseReader(std::unique_ptr<sqlite::SqliteDb> db);

  std::string path_;
  std::string vfs_;
  std::atomic<bool> fsync_failed_{false};  // fail-stop: set once, never cleared
  std::atomic<bool> disk_full_{false};     // cleared by the next commit that writes
  std::mutex write_mu_;                    // held by the open Tx
  std::unique_ptr<sqlite::SqliteDb> writer_;
  TransitionObserver transition_observer_;  // called with write_mu_ held
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<sqlite::SqliteDb>> idle_readers_;

  // Pipelined commits: tokens begun (before COMMIT), finished (after it,
  // committed or not) and synced; rows of commits not yet synced (seq ->
  // the last commit that changed the row), per commit for the clean-up;
  // WhenDurable callbacks waiting. All guarded by durable_mu_.
  std::vector<int64_t> tx_rows_;  // rows changed by the open Tx (write_mu_)
  bool wal_written_ = false;      // the last COMMIT wrote WAL frames (write_mu_)
  std::mutex durable_mu_;
  std::condition_variable durable_cv_;
  CommitToken begun_ = 0;
  CommitToken finished_ = 0;
  CommitToken synced_ = 0;
  int64_t committed_ = 0;            // how many COMMITs succeeded
  int64_t committed_at_sync_ = 0;    // committed_ when synced_ was taken
  std::optional<Error> sync_error_;  // set once: fail-stop
  std::unordered_map<int64_t, CommitToken> unsynced_rows_;
  std::deque<std::pair<CommitToken, std::vector<int64_t>>> unsynced_commits_;
  std::deque<std::pair<CommitToken, std::function<void(const Error*)>>> durable_waiters_;
  bool syncer_stopping_ = false;
  std::atomic<int64_t> syncs_{0};
  std::unique_ptr<sqlite::SqliteDb> syncer_db_;  // its WAL handle is synced by syncer_
  sqlite3_file* wal_file_ = nullptr;
  std::thread syncer_;

  // Guarded by write_mu_ (the WAL hook runs inside the writer's commit):
  int wal_frames_ = 0;               // after the last commit
  int64_t wal_generation_ = 0;       // +1 each time the WAL started over
  int checkpoint_requested_at_ = 0;  // WAL frames at the last request
  std::atomic<int64_t> checkpoint_requests_{0};
  // Guarded by checkpoint_mu_: the WAL generation at the last request, and
  // the frames the last finished background pass had copied, in the WAL of
  // that generation (or a later one: then the writer does not count on it).
  int64_t wanted_generation_ = 0;
  int covered_frames_ = 0;
  int64_t covered_generation_ = -1;
  std::unique_ptr<sqlite::SqliteDb> checkpointer_db_;  // used only by checkpointer_
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;  // guarded by checkpoint_mu_
  bool stopping_ = false;           // guarded by checkpoint_mu_
  std::thread checkpointer_;
};

}  // namespace acceptd
