#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "store/sql_outcomes.h"
#include "store/sql_reads.h"
#include "store/sql_state_encoding.h"

namespace acceptd {
namespace {

using sql::StateColumn;
using sql::StateFromColumn;
using sqlite::SqliteDb;
using sqlite::Stmt;

// Schema version 5. States are stored as sql_state_encoding.h says.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY,
  id BLOB NOT NULL UNIQUE,
  queue TEXT NOT NULL,
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  payload BLOB NOT NULL,
  content_type TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  run_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  expires_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  timeout_ms INTEGER NOT NULL,
  retention_ms INTEGER NOT NULL,
  progress_percent INTEGER,
  progress_message TEXT,
  error_type TEXT,
  error_message TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  delete_requested INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_token INTEGER NOT NULL DEFAULT 0,
  scheduled INTEGER NOT NULL DEFAULT 0,
  lease_expires_at INTEGER,
  result BLOB,
  result_type TEXT,
  idempotency_key TEXT,
  request_digest BLOB,
  callback_url TEXT,
  callback_attempts INTEGER NOT NULL DEFAULT 0,
  callback_status INTEGER,
  callback_error TEXT,
  callback_delivered_at INTEGER,
  callback_next_at INTEGER,
  tenant TEXT NOT NULL DEFAULT '',
  attempt_started_at INTEGER,
  lease_within_timeout INTEGER NOT NULL DEFAULT 0,
  attempt_log TEXT,
  attempt_log_total INTEGER NOT NULL DEFAULT 0
);
-- Queued jobs are either claimable (scheduled = 0) or waiting for run_at
-- (scheduled = 1): claims never scan jobs that are not due yet.
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(queue, priority DESC, run_at, seq)
  WHERE state = )sql" ACCEPTD_SQL_QUEUED R"sql( AND scheduled = 0;
CREATE INDEX IF NOT EXISTS jobs_scheduled ON jobs(run_at)
  WHERE state = )sql" ACCEPTD_SQL_QUEUED R"sql( AND scheduled = 1;
CREATE INDEX IF NOT EXISTS jobs_running ON jobs(lease_owner, lease_expires_at)
  WHERE state = )sql" ACCEPTD_SQL_RUNNING R"sql(;
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_counts (
  queue TEXT NOT NULL,
  state INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (queue, state)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS jobs_count_insert AFTER INSERT ON jobs BEGIN
  INSERT INTO queue_counts(queue, state, n) VALUES (new.queue, new.state, 1)
    ON CONFLICT(queue, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS jobs_count_update AFTER UPDATE OF state ON jobs
WHEN old.state <> new.state BEGIN
  UPDATE queue_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
  INSERT INTO queue_counts(queue, state, n) VALUES (new.queue, new.state, 1)
    ON CONFLICT(queue, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS jobs_count_delete AFTER DELETE ON jobs BEGIN
  UPDATE queue_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
END;
-- Idempotency keys are scoped per tenant ('' : no tenant) and queue.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs(tenant, queue, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
-- Jobs purged after their retention: their status URL answers 410, not 404.
CREATE TABLE IF NOT EXISTS tombstones (
  id BLOB PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
-- A callback becomes due in the very transaction that makes its job
-- terminal, whichever statement does it: a crash cannot lose the delivery.
-- (Dropped and created on every open: stores before schema 3's last
-- revision spelled "terminal" as a number range.)
DROP TRIGGER IF EXISTS jobs_callback_due;
CREATE TRIGGER jobs_callback_due AFTER UPDATE OF state ON jobs
WHEN new.state IN )sql" ACCEPTD_SQL_TERMINAL R"sql( AND old.state NOT IN )sql" ACCEPTD_SQL_TERMINAL
                                R"sql(
  AND new.callback_url IS NOT NULL BEGIN
  UPDATE jobs SET callback_next_at = new.updated_at WHERE seq = new.seq;
END;
CREATE INDEX IF NOT EXISTS jobs_callbacks ON jobs(callback_next_at)
  WHERE callback_next_at IS NOT NULL;
-- Queues paused by an operator (schema 6): claims skip them.
CREATE TABLE IF NOT EXISTS paused_queues (
  queue TEXT PRIMARY KEY,
  paused_at INTEGER NOT NULL
) WITHOUT ROWID;
-- The nodes sharing the store (schema 7): each records itself every
-- node_heartbeat_interval (WriteTx::TouchNode).
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY,
  started_at INTEGER NOT NULL,
  seen_at INTEGER NOT NULL
) WITHOUT ROWID;
-- Throughput per queue and minute (schema 8): only finished jobs have an
-- entry, so inserts and claims pay nothing; a finish adds one entry at the
-- index's right edge (finish times grow), and the stats read only the
-- window's entries (covering: no table lookups).
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at, queue, state)
  WHERE finished_at IS NOT NULL;
-- Schedules (schema 9): the ticks fired, one job each whichever node
-- fires it, and each schedule's last fire.
CREATE TABLE IF NOT EXISTS schedule_fires (
  schedule TEXT NOT NULL,
  fire_at INTEGER NOT NULL,
  job_id BLOB NOT NULL,
  PRIMARY KEY (schedule, fire_at)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedules (
  name TEXT PRIMARY KEY,
  last_fire_at INTEGER NOT NULL,
  last_job_id BLOB NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 9;
)sql";

// Each migration is one transaction that also bumps user_version, so a crash
// mid-way leaves the store at the old version, ready to migrate again.
// Version 1 stores lack the idempotency columns.
constexpr const char* kMigrateV1ToV2 = R"sql(
BEGIN;
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE jobs ADD COLUMN request_digest BLOB;
PRAGMA user_version = 2;
COMMIT;
)sql";
// Version 2 stores lack the callback columns.
constexpr const char* kMigrateV2ToV3 = R"sql(
BEGIN;
ALTER TABLE jobs ADD COLUMN callback_url TEXT;
ALTER TABLE jobs ADD COLUMN callback_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN callback_status INTEGER;
ALTER TABLE jobs ADD COLUMN callback_error TEXT;
ALTER TABLE jobs ADD COLUMN callback_delivered_at INTEGER;
ALTER TABLE jobs ADD COLUMN callback_next_at INTEGER;
PRAGMA user_version = 3;
COMMIT;
)sql";
// Version 3 stores lack the tenant; their jobs belong to no tenant ('').
constexpr const char* kMigrateV3ToV4 = R"sql(
BEGIN;
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
DROP INDEX IF EXISTS jobs_idempotency;
CREATE UNIQUE INDEX jobs_idempotency ON jobs(tenant, queue, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
PRAGMA user_version = 4;
COMMIT;
)sql";
// When the current attempt was claimed, and whether its timeout bounds its
// lease (external workers: see ClaimParams::lease_within_timeout).
constexpr const char* kMigrateV4ToV5 = R"sql(
BEGIN;
ALTER TABLE jobs ADD COLUMN attempt_started_at INTEGER;
ALTER TABLE jobs ADD COLUMN lease_within_timeout INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 5;
COMMIT;
)sql";
// Each job's attempt history (sql_reads.h); jobs finished before keep none.
constexpr const char* kMigrateV7ToV8 = R"sql(
BEGIN;
ALTER TABLE jobs ADD COLUMN attempt_log TEXT;
ALTER TABLE jobs ADD COLUMN attempt_log_total INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 8;
COMMIT;
)sql";
constexpr int kSchemaVersion = SqliteStore::kSchemaVersion;

// Appends the ending attempt to the job's history (sql_reads.h), in the
// statement that ends it: SET expressions see the row as it was, so
// `attempts`, `attempt_started_at` and `lease_owner` are the attempt's.
// Dropping the oldest line once the cap is reached keeps it bounded.
#define ATTEMPT_LOG_APPEND(ended_at, outcome, error_type, error_message)                        \
  "attempt_log = CASE WHEN attempt_log_total >= " ACCEPTD_SQL_ATTEMPT_LOG_CAP                   \
  " THEN substr(attempt_log, instr(attempt_log, char(10)) + 1) ELSE COALESCE(attempt_log, '') " \
  "END || json_array(attempts, attempt_started_at, " ended_at ", " outcome                      \
  ", lease_owner, " error_type ", " error_message                                               \
  ") || char(10), attempt_log_total = attempt_log_total + 1, "

// The writer connection's own (TEMP) triggers: every state change and every
// insert passes through acceptd_transition(), i.e. core's transition table.
// TEMP, so that the database file never depends on a function only acceptd
// defines (the sqlite3 shell can still write to it).
constexpr const char* kTransitionChecks = R"sql(
CREATE TEMP TRIGGER IF NOT EXISTS jobs_check_insert BEFORE INSERT ON main.jobs BEGIN
  SELECT acceptd_transition(NULL, new.state);
END;
CREATE TEMP TRIGGER IF NOT EXISTS jobs_check_transition BEFORE UPDATE OF state ON main.jobs
WHEN old.state <> new.state BEGIN
  SELECT acceptd_transition(old.state, new.state);
END;
)sql";

// The columns ReadJob() expects, in order; kFirstExtraCol is the first column selected after them
// (payload, digest).
#define JOB_COLUMNS                                                                             \
  "seq, id, queue, state, priority, content_type, created_at, updated_at, run_at, started_at, " \
  "finished_at, expires_at, attempts, max_attempts, timeout_ms, retention_ms, "                 \
  "progress_percent, progress_message, error_type, error_message, cancel_requested, "           \
  "delete_requested, result IS NOT NULL, lease_owner, lease_token, lease_expires_at, "          \
  "callback_url, callback_attempts, callback_status, callback_error, callback_delivered_at, "   \
  "callback_next_at, tenant, attempt_started_at"
constexpr int kFirstExtraCol = 34;

std::optional<int64_t> OptInt(const Stmt& s, int col) {
  if (s.IsNull(col)) return std::nullopt;
  return s.Int(col);
}

Job ReadJob(const Stmt& s) {
  Job j;
  j.seq = s.Int(0);
  if (s.Bytes(1) == 16) j.id = JobId::FromBytes(s.BlobPtr(1));
  j.queue = s.Text(2);
  j.state = StateFromColumn(s.Int(3)).value_or(JobState::kFailed);
  j.priority = static_cast<int>(s.Int(4));
  j.content_type = s.Text(5);
  j.created_at = s.Int(6);
  j.updated_at = s.Int(7);
  j.run_at = s.Int(8);
  j.started_at = OptInt(s, 9);
  j.finished_at = OptInt(s, 10);
  j.expires_at = OptInt(s, 11);
  j.attempts = static_cast<int>(s.Int(12));
  j.max_attempts = static_cast<int>(s.Int(13));
  j.timeout = s.Int(14);
  j.retention = s.Int(15);
  if (!s.IsNull(16)) j.progress = Progress{static_cast<int>(s.Int(16)), s.Text(17)};
  if (!s.IsNull(18)) j.error = JobError{s.Text(18), s.Text(19)};
  j.cancel_requested = s.Int(20) != 0;
  j.delete_requested = s.Int(21) != 0;
  j.has_result = s.Int(22) != 0;
  j.lease_owner = s.Text(23);
  j.lease_token = s.Int(24);
  j.lease_expires_at = s.IsNull(25) ? 0 : s.Int(25);
  if (!s.IsNull(26)) {
    CallbackState& c = j.callback.emplace();
    c.url = s.Text(26);
    c.attempts = static_cast<int>(s.Int(27));
    if (!s.IsNull(28)) c.last_status = static_cast<int>(s.Int(28));
    c.last_error = s.Text(29);
    c.delivered_at = OptInt(s, 30);
    c.next_attempt_at = OptInt(s, 31);
  }
  j.tenant = s.Text(32);
  j.attempt_started_at = OptInt(s, 33);
  return j;
}

void BindId(Stmt& s, int i, const JobId& id) { s.BindBlob(i, id.bytes().data(), 16); }

// Runs a statement that returns jobs, collecting them.
Result<std::vector<Job>> CollectJobs(SqliteDb& db, Stmt& s, std::string_view what,
                                     bool with_payload = false) {
  std::vector<Job> jobs;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    jobs.push_back(ReadJob(s));
    if (with_payload) jobs.back().payload = s.Blob(kFirstExtraCol);
  }
  if (rc != SQLITE_DONE) return db.LastError(what);
  return jobs;
}

Result<std::optional<Job>> OneJob(SqliteDb& db, Stmt& s, std::string_view what) {
  auto jobs = CollectJobs(db, s, what);
  if (!jobs) return std::move(jobs).error();
  if (jobs->empty()) return std::optional<Job>();
  return std::optional<Job>(std::move(jobs->front()));
}

// kGone if a tombstone remembers the id, else kNotFound (or a store error).
Error Missing(SqliteDb& db, const JobId& id) {
  auto s = db.Prepare("SELECT 1 FROM tombstones WHERE id = ?1");
  BindId(*s, 1, id);
  const int rc = s->Step();
  if (rc == SQLITE_ROW) return JobExpired();
  if (rc != SQLITE_DONE) return db.LastError("tombstone");
  return Error::NotFound("no such job");
}

Result<Job> GetJob(SqliteDb& db, const JobId& id) {
  auto s = db.Prepare("SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1");
  BindId(*s, 1, id);
  auto job = OneJob(db, *s, "get job");
  if (!job) return std::move(job).error();
  if (!*job) return Missing(db, id);
  return std::move(**job);
}

}  // namespace

// A borrowed read connection that returns itself to the pool.
class SqliteStore::ReaderLease {
 public:
  ReaderLease(SqliteStore* store, std::unique_ptr<SqliteDb> db)
      : store_(store), db_(std::move(db)) {}
  ReaderLease(ReaderLease&&) = default;
  ~ReaderLease() {
    if (db_) store_->ReleaseReader(std::move(db_));
  }
  SqliteDb& operator*() { return *db_; }

 private:
  SqliteStore* store_;
  std::unique_ptr<SqliteDb> db_;
};

class SqliteStore::Tx final : public WriteTx {
 public:
  Tx(std::unique_lock<std::mutex> lock, SqliteStore& store)
      : lock_(std::move(lock)), store_(store), db_(*store.writer_) {
    store_.tx_rows_.clear();
  }
  ~Tx() override {
    if (!done_) (void)db_.Exec("ROLLBACK");
  }

  Result<Job> Insert(const NewJob& n) override {
    if (!n.idempotency_key.empty()) {
      auto s = db_.Prepare("SELECT " JOB_COLUMNS
                           ", request_digest FROM jobs "
                           "WHERE tenant = ?3 AND queue = ?1 AND idempotency_key = ?2");
      s->Bind(1, n.queue).Bind(2, n.idempotency_key).Bind(3, n.tenant);
      int rc = s->Step();
      if (rc == SQLITE_ROW) {
        if (s->Blob(kFirstExtraCol) != n.request_digest) {
          return Error::IdempotencyMismatch(
              "this Idempotency-Key was already used for a different request");
        }
        return ReadJob(*s);  // a replay: the original job
      }
      if (rc != SQLITE_DONE) return db_.LastError("idempotency key");
    }
    {
      auto depth = db_.Prepare(
          "SELECT COALESCE(SUM(n), 0) FROM queue_counts WHERE queue = ?1 "
          "AND state IN (" ACCEPTD_SQL_QUEUED ", " ACCEPTD_SQL_RUNNING ")");
      depth->Bind(1, n.queue);
      if (depth->Step() != SQLITE_ROW) return db_.LastError("queue depth");
      if (depth->Int(0) >= n.max_depth) {
        return Error::QueueFull(
            fmt::format("queue '{}' is full ({} jobs queued or running)", n.queue, depth->Int(0)));
      }
    }
    auto s = db_.Prepare(
        "INSERT INTO jobs (id, queue, state, priority, payload, content_type, created_at, "
        "updated_at, run_at, max_attempts, timeout_ms, retention_ms, scheduled, "
        "idempotency_key, request_digest, callback_url, tenant) "
        "VALUES (?1, ?2, " ACCEPTD_SQL_QUEUED
        ", ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?7 > ?6, ?11, ?12, ?13, ?14)");
    BindId(*s, 1, n.id);
    s->Bind(2, n.queue).Bind(3, n.priority).BindBlob(4, n.payload.data(), n.payload.size());
    s->Bind(5, n.content_type).Bind(6, n.now).Bind(7, n.run_at).Bind(8, n.max_attempts);
    s->Bind(9, n.timeout).Bind(10, n.retention);
    if (!n.idempotency_key.empty()) {
      s->Bind(11, n.idempotency_key).BindBlob(12, n.request_digest.data(), n.request_digest.size());
    }
    if (!n.callback_url.empty()) s->Bind(13, n.callback_url);
    s->Bind(14, n.tenant);
    if (s->Step() != SQLITE_DONE) {
      Error e = db_.LastError("insert job");
      if (e.message.find("UNIQUE") != std::string::npos) return Error::Conflict("duplicate id");
      return e;
    }
    Job j;
    j.seq = db_.LastInsertRowid();
    j.id = n.id;
    j.queue = n.queue;
    j.state = JobState::kQueued;
    j.priority = n.priority;
    j.content_type = n.content_type;
    j.created_at = j.updated_at = n.now;
    j.run_at = n.run_at;
    j.max_attempts = n.max_attempts;
    j.timeout = n.timeout;
    j.retention = n.retention;
    if (!n.callback_url.empty()) j.callback.emplace().url = n.callback_url;
    j.tenant = n.tenant;
    return j;
  }

  Result<std::vector<Job>> Claim(const ClaimParams& p) override {
    auto s = db_.Prepare(
        "UPDATE jobs SET state = " ACCEPTD_SQL_RUNNING
        ", attempts = attempts + 1, lease_token = lease_token + 1, "
        "lease_owner = ?1, started_at = COALESCE(started_at, ?3), attempt_started_at = ?3, "
        "lease_expires_at = CASE WHEN ?6 AND timeout_ms > 0 THEN MIN(?2, ?3 + timeout_ms) "
        "  ELSE ?2 END, lease_within_timeout = ?6, "
        "progress_percent = NULL, progress_message = NULL, "
        "updated_at = ?3 "
        "WHERE seq IN (SELECT seq FROM jobs WHERE queue = ?4 AND state = " ACCEPTD_SQL_QUEUED
        " AND scheduled = 0 AND NOT EXISTS (SELECT 1 FROM paused_queues WHERE queue = ?4) "
        "ORDER BY priority DESC, run_at, seq LIMIT ?5) "
        "RETURNING " JOB_COLUMNS ", payload");
    s->Bind(1, p.owner).Bind(2, p.lease_expires_at).Bind(3, p.now).Bind(4, p.queue);
    s->Bind(5, p.limit).Bind(6, p.lease_within_timeout ? 1 : 0);
    auto jobs = CollectJobs(db_, *s, "claim", /*with_payload=*/true);
    if (!jobs) return jobs;
    // RETURNING gives no order guarantee; hand jobs out in claim order.
    std::sort(jobs->begin(), jobs->end(), [](const Job& a, const Job& b) {
      if (a.priority != b.priority) return a.priority > b.priority;
      if (a.run_at != b.run_at) return a.run_at < b.run_at;
      return a.seq < b.seq;
    });
    return jobs;
  }

  Result<Job> Finish(const AttemptOutcome& o) override {
    using Kind = AttemptOutcome::Kind;
    const char* sql = nullptr;
    switch (o.kind) {
      case Kind::kSucceeded:
        sql = "UPDATE jobs SET state = " ACCEPTD_SQL_SUCCEEDED
              ", result = ?4, result_type = ?5, finished_at = ?3, " ATTEMPT_LOG_APPEND(
                  "?3", "'succeeded'", "NULL", "NULL")
              "updated_at = ?3, expires_at = ?3 + retention_ms, lease_owner = NULL, "
              "lease_expires_at = NULL WHERE id = ?1 AND state = " ACCEPTD_SQL_RUNNING
              " AND lease_token = ?2 "
              "RETURNING " JOB_COLUMNS;
        break;
      case Kind::kFailed:
        sql = "UPDATE jobs SET state = " ACCEPTD_SQL_FAILED
              ", error_type = ?4, error_message = ?5, finished_at = ?3, " ATTEMPT_LOG_APPEND(
                  "?3", "CASE WHEN ?4 = 'timeout' THEN 'timeout' ELSE 'failed' END", "?4", "?5")
              "updated_at = ?3, expires_at = ?3 + retention_ms, lease_owner = NULL, "
              "lease_expires_at = NULL WHERE id = ?1 AND state = " ACCEPTD_SQL_RUNNING
              " AND lease_token = ?2 "
              "RETURNING " JOB_COLUMNS;
        break;
      case Kind::kRetry:
        // A requested cancel wins over the retry, wherever it was requested:
        // the client was told cancel_requested, so the job must not run again.
        sql = "UPDATE jobs SET state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
              " ELSE " ACCEPTD_SQL_QUEUED
              " END, error_type = ?4, error_message = ?5, " ATTEMPT_LOG_APPEND(
                  "?3", "CASE WHEN ?4 = 'timeout' THEN 'timeout' ELSE 'failed' END", "?4", "?5")
              "run_at = CASE WHEN cancel_requested THEN run_at ELSE ?6 END, "
              "scheduled = NOT cancel_requested AND ?6 > ?3, "
              "finished_at = CASE WHEN cancel_requested THEN ?3 END, "
              "expires_at = CASE WHEN cancel_requested THEN ?3 + retention_ms END, "
              "updated_at = ?3, lease_owner = NULL, lease_expires_at = NULL "
              "WHERE id = ?1 AND state = " ACCEPTD_SQL_RUNNING
              " AND lease_token = ?2 RETURNING " JOB_COLUMNS;
        break;
      case Kind::kCanceled:
        sql = "UPDATE jobs SET state = " ACCEPTD_SQL_CANCELED
              ", finished_at = ?3, updated_at = ?3, " ATTEMPT_LOG_APPEND(
                  "?3", "'canceled'", "NULL", "NULL")
              "expires_at = ?3 + retention_ms, lease_owner = NULL, lease_expires_at = NULL "
              "WHERE id = ?1 AND state = " ACCEPTD_SQL_RUNNING
              " AND lease_token = ?2 RETURNING " JOB_COLUMNS;
        break;
    }
    auto s = db_.Prepare(sql);
    BindId(*s, 1, o.id);
    s->Bind(2, o.lease_token).Bind(3, o.now);
    if (o.kind == Kind::kSucceeded) {
      s->BindBlob(4, o.result.data(), o.result.size()).Bind(5, o.result_type);
    } else if (o.kind == Kind::kFailed || o.kind == Kind::kRetry) {
      JobError e = o.error.value_or(JobError{"handler_error", ""});
      s->Bind(4, e.type).Bind(5, e.message);
      if (o.kind == Kind::kRetry) s->Bind(6, o.retry_at);
    }
    auto job = OneJob(db_, *s, "finish attempt");
    if (!job) return std::move(job).error();
    if (!*job) {
      auto current = GetJob(db_, o.id);
      if (!current) return std::move(current).error();
      return sql::StaleLease(*current, o.lease_token);
    }
    if ((*job)->delete_requested && IsTerminal((*job)->state)) {
      if (auto st = DeleteSeq((*job)->seq); !st) return std::move(st).error();
    }
    return std::move(**job);
  }

  Result<CancelOutcome> Cancel(const JobId& id, UnixMillis now) override {
    {
      auto s =
          db_.Prepare("UPDATE jobs SET state = " ACCEPTD_SQL_CANCELED
                      ", cancel_requested = 1, finished_at = ?2, updated_at = ?2, "
                      "expires_at = ?2 + retention_ms WHERE id = ?1 AND state = " ACCEPTD_SQL_QUEUED
                      " RETURNING " JOB_COLUMNS);
      BindId(*s, 1, id);
      s->Bind(2, now);
      auto job = OneJob(db_, *s, "cancel queued");
      if (!job) return std::move(job).error();
      if (*job) return CancelOutcome{CancelOutcome::Kind::kCanceled, std::move(**job)};
    }
    auto signalled = SignalRunning(id, now, /*and_delete=*/false);
    if (!signalled) return std::move(signalled).error();
    if (*signalled) return CancelOutcome{CancelOutcome::Kind::kSignalled, std::move(**signalled)};
    auto current = GetJob(db_, id);
    if (!current) return std::move(current).error();
    return sql::TerminalConflict(current->state);
  }

  Result<CancelOutcome> Delete(const JobId& id, UnixMillis now) override {
    {
      // Queued or terminal: gone at once. A queued job counts as canceled.
      auto s = db_.Prepare("DELETE FROM jobs WHERE id = ?1 AND state <> " ACCEPTD_SQL_RUNNING
                           " RETURNING " JOB_COLUMNS);
      BindId(*s, 1, id);
      auto job = OneJob(db_, *s, "delete job");
      if (!job) return std::move(job).error();
      if (*job) return sql::DeletedRowOutcome(std::move(**job), now);
    }
    auto signalled = SignalRunning(id, now, /*and_delete=*/true);
    if (!signalled) return std::move(signalled).error();
    if (*signalled) return CancelOutcome{CancelOutcome::Kind::kSignalled, std::move(**signalled)};
    return Error::NotFound("no such job");
  }

  Status SetProgress(const JobId& id, int64_t token, const Progress& p, UnixMillis now) override {
    auto s = db_.Prepare(
        "UPDATE jobs SET progress_percent = ?3, progress_message = ?4, updated_at = ?5 "
        "WHERE id = ?1 AND state = " ACCEPTD_SQL_RUNNING " AND lease_token = ?2");
    BindId(*s, 1, id);
    s->Bind(2, token).Bind(3, std::clamp(p.percent, 0, 100)).Bind(4, p.message).Bind(5, now);
    if (s->Step() != SQLITE_DONE) return db_.LastError("set progress");
    return {};
  }

  Result<LeaseRenewal> ExtendLeases(const std::vector<LeaseRef>& leases, UnixMillis expires,
                                    UnixMillis now) override {
    LeaseRenewal renewal;
    for (const LeaseRef& lease : leases) {
      auto s = db_.Prepare(
          "UPDATE jobs SET lease_expires_at = ?3 WHERE id = ?1 AND lease_token = ?2 "
          "AND state = " ACCEPTD_SQL_RUNNING
          " AND lease_expires_at >= ?4 RETURNING cancel_requested");
      BindId(*s, 1, lease.id);
      s->Bind(2, lease.lease_token).Bind(3, expires).Bind(4, now);
      const int rc = s->Step();
      if (rc == SQLITE_ROW) {
        if (s->Int(0)) renewal.cancel_requested.push_back(lease.id);
      } else if (rc == SQLITE_DONE) {
        renewal.lost.push_back(lease.id);
      } else {
        return db_.LastError("extend lease");
      }
    }
    return renewal;
  }

  // Why a lease-fenced statement changed nothing: kNotFound if the job is
  // gone, else kStaleLease.
  Error StaleOrGone(const JobId& id, std::string_view what) {
    auto current = GetJob(db_, id);
    if (!current) return std::move(current).error();
    return Error::StaleLease(
        fmt::format("{} of job {}: it is {} with lease token {}{}", what, id.ToHex(),
                    ToString(current->state), current->lease_token,
                    current->state == JobState::kRunning ? " (or that lease expired)" : ""));
  }

  Result<HeartbeatResult> Heartbeat(const LeaseRef& lease, UnixMillis lease_until, UnixMillis now,
                                    const std::optional<Progress>& progress) override {
    auto s = db_.Prepare(
        "UPDATE jobs SET lease_expires_at = CASE WHEN lease_within_timeout AND timeout_ms > 0 "
        "  THEN MIN(?3, attempt_started_at + timeout_ms) ELSE ?3 END, "
        "progress_percent = CASE WHEN ?5 THEN ?6 ELSE progress_percent END, "
        "progress_message = CASE WHEN ?5 THEN ?7 ELSE progress_message END, "
        "updated_at = CASE WHEN ?5 THEN ?4 ELSE updated_at END "
        "WHERE id = ?1 AND lease_token = ?2 AND state = " ACCEPTD_SQL_RUNNING
        " AND lease_expires_at >= ?4 RETURNING lease_expires_at, cancel_requested");
    BindId(*s, 1, lease.id);
    s->Bind(2, lease.lease_token).Bind(3, lease_until).Bind(4, now);
    s->Bind(5, progress ? 1 : 0);
    s->Bind(6, progress ? progress->percent : 0);
    s->Bind(7, progress ? progress->message : std::string());
    const int rc = s->Step();
    if (rc == SQLITE_ROW) {
      return HeartbeatResult{s->Int(0), s->Int(1) != 0};
    }
    if (rc != SQLITE_DONE) return db_.LastError("heartbeat");
    return StaleOrGone(lease.id, "heartbeat");
  }

  Result<Job> ReleaseLease(const LeaseRef& lease, UnixMillis now) override {
    auto s =
        db_.Prepare("UPDATE jobs SET state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
                    " ELSE " ACCEPTD_SQL_QUEUED
                    " END, "
                    "finished_at = CASE WHEN cancel_requested THEN ?3 END, "
                    "expires_at = CASE WHEN cancel_requested THEN ?3 + retention_ms END, "
                    "attempts = attempts - 1, run_at = ?3, scheduled = 0, updated_at = ?3, "
                    ATTEMPT_LOG_APPEND("?3", "'released'", "NULL", "NULL")
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE id = ?1 AND lease_token = ?2 AND state = " ACCEPTD_SQL_RUNNING
                    " RETURNING " JOB_COLUMNS);
    BindId(*s, 1, lease.id);
    s->Bind(2, lease.lease_token).Bind(3, now);
    auto jobs = CollectJobs(db_, *s, "release lease");
    if (!jobs) return std::move(jobs).error();
    if (jobs->empty()) return StaleOrGone(lease.id, "release");
    Job job = std::move(jobs->front());
    if (job.delete_requested && IsTerminal(job.state)) {
      if (auto st = DeleteSeq(job.seq); !st) return std::move(st).error();
    }
    return job;
  }

  Result<std::vector<Job>> RescueExpiredLeases(UnixMillis now, int limit) override {
#define RESCUE_OUTCOME                                                          \
  "(CASE WHEN lease_within_timeout AND timeout_ms > 0 AND lease_expires_at >= " \
  "attempt_started_at + timeout_ms THEN 'timeout' ELSE 'lease_expired' END)"
#define RESCUE_MESSAGE                                                                     \
  "(CASE WHEN lease_within_timeout AND timeout_ms > 0 AND lease_expires_at >= "            \
  "attempt_started_at + timeout_ms THEN 'attempt ' || attempts || ' timed out after ' || " \
  "(timeout_ms / 1000.0) || ' s' "                                                         \
  "ELSE 'the worker running this attempt stopped renewing its lease' END)"
    auto s = db_.Prepare(
        "UPDATE jobs SET "
        "state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
        " WHEN attempts < max_attempts THEN " ACCEPTD_SQL_QUEUED " ELSE " ACCEPTD_SQL_FAILED
        " END, "
        "finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN ?1 END, "
        "expires_at = CASE WHEN cancel_requested OR attempts >= max_attempts "
        "  THEN ?1 + retention_ms END, "
        // A lease that ran into the attempt's timeout (an external worker's,
        // see Heartbeat) ended because the attempt timed out.
        "error_type = " RESCUE_OUTCOME ", error_message = " RESCUE_MESSAGE ", "
        "run_at = ?1, scheduled = 0, updated_at = ?1, "
        ATTEMPT_LOG_APPEND("?1", RESCUE_OUTCOME, RESCUE_OUTCOME, RESCUE_MESSAGE)
        "lease_owner = NULL, lease_expires_at = NULL "
        "WHERE seq IN (SELECT seq FROM jobs WHERE state = " ACCEPTD_SQL_RUNNING
        " AND lease_expires_at < ?1 LIMIT ?2) "
        "RETURNING " JOB_COLUMNS);
    s->Bind(1, now).Bind(2, limit);
    auto jobs = CollectJobs(db_, *s, "rescue expired leases");
    if (!jobs) return jobs;
    for (const Job& j : *jobs) {
      if (j.delete_requested && IsTerminal(j.state)) {
        if (auto st = DeleteSeq(j.seq); !st) return std::move(st).error();
      }
    }
    return jobs;
  }

  Result<int64_t> ReleaseLeases(const std::string& owner, UnixMillis now) override {
    auto s =
        db_.Prepare("UPDATE jobs SET state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
                    " ELSE " ACCEPTD_SQL_QUEUED
                    " END, "
                    "finished_at = CASE WHEN cancel_requested THEN ?2 END, "
                    "expires_at = CASE WHEN cancel_requested THEN ?2 + retention_ms END, "
                    "attempts = attempts - 1, run_at = ?2, scheduled = 0, updated_at = ?2, "
                    ATTEMPT_LOG_APPEND("?2", "'released'", "NULL", "NULL")
                    "lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE state = " ACCEPTD_SQL_RUNNING
                    " AND lease_owner = ?1 RETURNING seq, state, delete_requested");
    s->Bind(1, owner).Bind(2, now);
    int64_t released = 0;
    std::vector<int64_t> to_delete;
    int rc;
    while ((rc = s->Step()) == SQLITE_ROW) {
      ++released;
      auto state = StateFromColumn(s->Int(1));
      if (s->Int(2) && state && IsTerminal(*state)) to_delete.push_back(s->Int(0));
    }
    if (rc != SQLITE_DONE) return db_.LastError("release leases");
    for (int64_t seq : to_delete) {
      if (auto st = DeleteSeq(seq); !st) return std::move(st).error();
    }
    return released;
  }

  Result<std::vector<std::string>> PromoteDueJobs(UnixMillis now, int limit) override {
    auto s = db_.Prepare(
        "UPDATE jobs SET scheduled = 0 WHERE seq IN (SELECT seq FROM jobs "
        "WHERE state = " ACCEPTD_SQL_QUEUED
        " AND scheduled = 1 AND run_at <= ?1 ORDER BY run_at LIMIT ?2) "
        "RETURNING queue");
    s->Bind(1, now).Bind(2, limit);
    std::vector<std::string> queues;
    int rc;
    while ((rc = s->Step()) == SQLITE_ROW) {
      std::string q = s->Text(0);
      if (std::find(queues.begin(), queues.end(), q) == queues.end()) queues.push_back(q);
    }
    if (rc != SQLITE_DONE) return db_.LastError("promote due jobs");
    return queues;
  }

  Result<std::vector<QueueValue>> PurgeExpired(UnixMillis now, int limit,
                                               Millis tombstone_ttl) override {
    {
      auto old = db_.Prepare("DELETE FROM tombstones WHERE expires_at <= ?1");
      old->Bind(1, now);
      if (old->Step() != SQLITE_DONE) return db_.LastError("purge tombstones");
    }
    auto s = db_.Prepare(
        "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE expires_at <= ?1 "
        "AND callback_next_at IS NULL LIMIT ?2) "
        "RETURNING id, queue");
    s->Bind(1, now).Bind(2, limit);
    std::vector<std::string> ids;
    std::vector<QueueValue> purged;
    int rc;
    while ((rc = s->Step()) == SQLITE_ROW) {
      ids.push_back(s->Blob(0));
      std::string queue = s->Text(1);
      auto it = std::find_if(purged.begin(), purged.end(),
                             [&](const QueueValue& q) { return q.queue == queue; });
      if (it == purged.end()) {
        purged.push_back(QueueValue{std::move(queue), 1});
      } else {
        ++it->value;
      }
    }
    if (rc != SQLITE_DONE) return db_.LastError("purge expired");
    if (tombstone_ttl > 0) {
      for (const std::string& id : ids) {
        auto t = db_.Prepare("INSERT OR REPLACE INTO tombstones (id, expires_at) VALUES (?1, ?2)");
        t->BindBlob(1, id.data(), id.size()).Bind(2, now + tombstone_ttl);
        if (t->Step() != SQLITE_DONE) return db_.LastError("tombstone");
      }
    }
    return purged;
  }

  Result<std::vector<JobId>> DeleteFinished(const std::string& queue, std::optional<JobState> state,
                                            int limit) override {
    auto s = db_.Prepare(
        "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE queue = ?1 AND state "
        "IN " ACCEPTD_SQL_TERMINAL
        " AND (?2 IS NULL OR state = ?2) AND callback_next_at IS NULL LIMIT ?3) RETURNING id");
    s->Bind(1, queue);
    if (state) s->Bind(2, StateColumn(*state));
    s->Bind(3, limit);
    std::vector<JobId> ids;
    int rc;
    while ((rc = s->Step()) == SQLITE_ROW) {
      if (s->Bytes(0) == 16) ids.push_back(JobId::FromBytes(s->BlobPtr(0)));
    }
    if (rc != SQLITE_DONE) return db_.LastError("delete finished");
    return ids;
  }

  Result<Job> RetryJob(const JobId& id, UnixMillis now) override {
    auto s = db_.Prepare(
        "UPDATE jobs SET state = " ACCEPTD_SQL_QUEUED
        ", scheduled = 0, run_at = ?2, updated_at = ?2, finished_at = NULL, expires_at = NULL, "
        "cancel_requested = 0, delete_requested = 0, max_attempts = MAX(max_attempts, attempts + "
        "1), progress_percent = NULL, progress_message = NULL, lease_owner = NULL, "
        "lease_expires_at = NULL, callback_attempts = 0, callback_status = NULL, "
        "callback_error = NULL, callback_delivered_at = NULL, callback_next_at = NULL "
        "WHERE id = ?1 AND state IN (" ACCEPTD_SQL_FAILED ", " ACCEPTD_SQL_CANCELED
        ") RETURNING " JOB_COLUMNS);
    BindId(*s, 1, id);
    s->Bind(2, now);
    auto job = OneJob(db_, *s, "retry job");
    if (!job) return std::move(job).error();
    if (*job) return std::move(**job);
    auto current = GetJob(db_, id);
    if (!current) return std::move(current).error();
    return sql::NotRetryable(current->state);
  }

  Result<Job> FireSchedule(const ScheduleFire& f) override {
    // One writer at a time (the write transaction): look, then write.
    {
      auto s = db_.Prepare(
          "SELECT EXISTS (SELECT 1 FROM schedule_fires WHERE schedule = ?1 AND fire_at = ?2), "
          "(SELECT last_fire_at FROM schedules WHERE name = ?1)");
      s->Bind(1, f.schedule).Bind(2, f.tick);
      if (s->Step() != SQLITE_ROW) return db_.LastError("schedule fire");
      if (s->Int(0) != 0) {
        return Error::Conflict(fmt::format("schedule '{}': tick {} was fired already", f.schedule,
                                           FormatRfc3339(f.tick)));
      }
      if (!s->IsNull(1) && f.tick <= s->Int(1) - kScheduleFireRetention) {
        return Error::Conflict(fmt::format("schedule '{}': tick {} is too old to fire", f.schedule,
                                           FormatRfc3339(f.tick)));
      }
    }
    auto job = Insert(f.job);
    if (!job) return job;
    if (job->id != f.job.id) return Error::Internal("sqlite: a schedule's job was a replay");
    {
      auto s =
          db_.Prepare("INSERT INTO schedule_fires (schedule, fire_at, job_id) VALUES (?1, ?2, ?3)");
      s->Bind(1, f.schedule).Bind(2, f.tick);
      BindId(*s, 3, job->id);
      if (s->Step() != SQLITE_DONE) return db_.LastError("schedule fire record");
    }
    {
      auto s = db_.Prepare(
          "INSERT INTO schedules (name, last_fire_at, last_job_id) VALUES (?1, ?2, ?3) "
          "ON CONFLICT (name) DO UPDATE SET last_fire_at = excluded.last_fire_at, "
          "last_job_id = excluded.last_job_id WHERE excluded.last_fire_at > last_fire_at");
      s->Bind(1, f.schedule).Bind(2, f.tick);
      BindId(*s, 3, job->id);
      if (s->Step() != SQLITE_DONE) return db_.LastError("schedule state");
    }
    {
      auto s = db_.Prepare("DELETE FROM schedule_fires WHERE schedule = ?1 AND fire_at < ?2");
      s->Bind(1, f.schedule).Bind(2, f.tick - kScheduleFireRetention);
      if (s->Step() != SQLITE_DONE) return db_.LastError("schedule fire records");
    }
    return job;
  }

  Result<bool> SetQueuePaused(const std::string& queue, bool paused, UnixMillis now) override {
    bool was = false;
    {
      auto s = db_.Prepare("SELECT 1 FROM paused_queues WHERE queue = ?1");
      s->Bind(1, queue);
      const int rc = s->Step();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_.LastError("paused queue");
      was = rc == SQLITE_ROW;
    }
    if (was == paused) return was;
    auto s = db_.Prepare(paused ? "INSERT INTO paused_queues (queue, paused_at) VALUES (?1, ?2)"
                                : "DELETE FROM paused_queues WHERE queue = ?1");
    s->Bind(1, queue);
    if (paused) s->Bind(2, now);
    if (s->Step() != SQLITE_DONE) return db_.LastError(paused ? "pause queue" : "resume queue");
    return was;
  }

  Status TouchNode(const std::string& name, UnixMillis started_at, UnixMillis now,
                   UnixMillis forget_before) override {
    auto s = db_.Prepare(
        "INSERT INTO nodes (name, started_at, seen_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at, "
        "seen_at = MAX(seen_at, excluded.seen_at)");
    s->Bind(1, name);
    s->Bind(2, started_at);
    s->Bind(3, now);
    if (s->Step() != SQLITE_DONE) return db_.LastError("touch node");
    auto f = db_.Prepare("DELETE FROM nodes WHERE seen_at < ?1 AND name <> ?2");
    f->Bind(1, forget_before);
    f->Bind(2, name);
    if (f->Step() != SQLITE_DONE) return db_.LastError("forget nodes");
    return {};
  }

  Result<std::vector<Job>> ClaimCallbacks(UnixMillis now, int limit,
                                          UnixMillis lease_until) override {
    auto s = db_.Prepare(
        "UPDATE jobs SET callback_next_at = ?3 WHERE seq IN (SELECT seq FROM jobs "
        "WHERE callback_next_at <= ?1 ORDER BY callback_next_at LIMIT ?2) RETURNING " JOB_COLUMNS);
    s->Bind(1, now).Bind(2, limit).Bind(3, lease_until);
    auto jobs = CollectJobs(db_, *s, "claim callbacks");
    if (!jobs) return jobs;
    std::sort(jobs->begin(), jobs->end(),
              [](const Job& a, const Job& b) { return a.updated_at < b.updated_at; });
    return jobs;
  }

  Result<Job> RecordCallbackAttempt(const CallbackAttempt& a) override {
    auto s = db_.Prepare(
        "UPDATE jobs SET callback_attempts = callback_attempts + 1, callback_status = ?2, "
        "callback_error = ?3, callback_delivered_at = ?4, callback_next_at = ?5 "
        "WHERE id = ?1 AND callback_next_at = ?6 RETURNING " JOB_COLUMNS);
    BindId(*s, 1, a.id);
    if (a.http_status) s->Bind(2, *a.http_status);
    s->Bind(3, a.error);
    if (a.delivered) s->Bind(4, a.now);
    if (!a.delivered && a.next_attempt) s->Bind(5, *a.next_attempt);
    s->Bind(6, a.lease);
    auto job = OneJob(db_, *s, "record callback attempt");
    if (!job) return std::move(job).error();
    if (!*job) {
      auto current = GetJob(db_, a.id);
      if (!current) return std::move(current).error();
      return Error::StaleLease(
          fmt::format("the callback of job {} is no longer leased at {}", a.id.ToHex(), a.lease));
    }
    return std::move(**job);
  }

  Status Commit() override {
    auto token = CommitUnsynced();
    if (!token) return std::move(token).error();
    // Not holding write_mu_ while syncing would let the next Tx write
    // meanwhile, but a caller of Commit() asked to wait, and holds this Tx.
    return store_.WaitDurable(*token);
  }

  Result<CommitToken> CommitUnsynced() override {
    const CommitToken token = store_.BeginCommit();
    store_.wal_written_ = false;  // set by the WAL hook if COMMIT writes frames
    Status st = db_.Exec("COMMIT");
    const bool wrote = store_.wal_written_;
    store_.EndCommit(token, st.ok(), wrote);
    if (!st) return std::move(st).error();
    done_ = true;
    return token;
  }

 private:
  Result<std::optional<Job>> SignalRunning(const JobId& id, UnixMillis now, bool and_delete) {
    auto s = db_.Prepare(
        "UPDATE jobs SET cancel_requested = 1, delete_requested = (delete_requested OR ?3), "
        "updated_at = ?2 WHERE id = ?1 AND state = " ACCEPTD_SQL_RUNNING " RETURNING " JOB_COLUMNS);
    BindId(*s, 1, id);
    s->Bind(2, now).Bind(3, and_delete ? 1 : 0);
    return OneJob(db_, *s, "signal cancel");
  }

  Status DeleteSeq(int64_t seq) {
    auto s = db_.Prepare("DELETE FROM jobs WHERE seq = ?1");
    s->Bind(1, seq);
    if (s->Step() != SQLITE_DONE) return db_.LastError("delete job");
    return {};
  }

  std::unique_lock<std::mutex> lock_;
  SqliteStore& store_;
  SqliteDb& db_;
  bool done_ = false;
};

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                       const std::string& vfs) {
  // Memory statistics take a global mutex on every SQLite allocation; nothing
  // here reads them. Must precede SQLite's initialization, so it is a no-op
  // (SQLITE_MISUSE, ignored) if something initialized SQLite already.
  static std::once_flag configure_once;
  std::call_once(configure_once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) {
      return Error::Unavailable(
          fmt::format("cannot create directory {}: {}", p.parent_path().string(), ec.message()),
          "store unavailable");
    }
  }
  auto db = SqliteDb::Open(path, vfs);
  if (!db) return std::move(db).error();
  for (const char* pragma :
       {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 5000"}) {
    if (auto st = (*db)->Exec(pragma); !st) return std::move(st).error();
  }
  int64_t version = 0;
  {
    auto v = (*db)->Prepare("PRAGMA user_version");
    if (v->Step() != SQLITE_ROW) return (*db)->LastError("schema version");
    version = v->Int(0);
  }
  if (version > kSchemaVersion) {
    return Error::Unavailable(
        fmt::format("store {} has schema version {}, newer than this acceptd ({})", path, version,
                    kSchemaVersion),
        "store unavailable");
  }
  if (version == 1) {
    if (auto st = (*db)->Exec(kMigrateV1ToV2); !st) return std::move(st).error();
  }
  if (version == 1 || version == 2) {
    if (auto st = (*db)->Exec(kMigrateV2ToV3); !st) return std::move(st).error();
  }
  if (version >= 1 && version <= 3) {
    if (auto st = (*db)->Exec(kMigrateV3ToV4); !st) return std::move(st).error();
  }
  if (version >= 1 && version <= 4) {
    if (auto st = (*db)->Exec(kMigrateV4ToV5); !st) return std::move(st).error();
  }
  if (version >= 1 && version <= 7) {
    if (auto st = (*db)->Exec(kMigrateV7ToV8); !st) return std::move(st).error();
  }
  if (auto st = (*db)->Exec(kSchema); !st) return std::move(st).error();
  auto checkpointer = SqliteDb::Open(path, vfs);
  if (!checkpointer) return std::move(checkpointer).error();
  // A checkpoint must fsync the database before the WAL may start over.
  if (auto st = (*checkpointer)->Exec("PRAGMA synchronous = FULL"); !st) {
    return std::move(st).error();
  }
  // COMMIT writes the WAL without syncing it; the sync thread syncs it
  // (pipelined commits, see the header). Checkpoints in NORMAL still sync
  // the WAL before they copy frames into the database, and the database
  // before the WAL may start over (docs/store_contract.md).
  if (auto st = (*db)->Exec("PRAGMA synchronous = NORMAL"); !st) return std::move(st).error();
  auto syncer = SqliteDb::Open(path, vfs);
  if (!syncer) return std::move(syncer).error();
  // A read transaction opens the connection's handle of the WAL file, which
  // stays open as long as the connection.
  if (auto st = (*syncer)->Exec("SELECT count(*) FROM sqlite_schema"); !st) {
    return std::move(st).error();
  }
  sqlite3_file* wal = (*syncer)->WalFile();
  if (!wal || !wal->pMethods) {
    return Error::Unavailable(fmt::format("sqlite: {}: no WAL file to sync", path),
                              "store unavailable");
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, vfs));
  if (auto st = (*db)->CreateFunction("acceptd_transition", 2, &SqliteStore::CheckTransition,
                                      store.get());
      !st) {
    return std::move(st).error();
  }
  if (auto st = (*db)->Exec(kTransitionChecks); !st) return std::move(st).error();
  store->writer_ = std::move(*db);
  store->writer_->SetWalHook(&SqliteStore::OnWalCommit, store.get());
  store->writer_->SetErrorHook(&SqliteStore::OnDbError, store.get());
  store->writer_->SetUpdateHook(&SqliteStore::OnRowChanged, store.get());
  store->syncer_db_ = std::move(*syncer);
  store->wal_file_ = wal;
  store->syncer_ = std::thread([s = store.get()] { s->RunSyncer(); });
  store->checkpointer_db_ = std::move(*checkpointer);
  store->checkpointer_db_->SetErrorHook(&SqliteStore::OnDbError, store.get());
  store->checkpointer_ = std::thread([s = store.get()] { s->RunCheckpointer(); });
  return store;
}

SqliteStore::~SqliteStore() {
  {
    // The syncer syncs what was committed, then stops.
    std::lock_guard lock(durable_mu_);
    syncer_stopping_ = true;
  }
  durable_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  {
    std::lock_guard lock(checkpoint_mu_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void SqliteStore::SetTransitionObserver(TransitionObserver observer) {
  std::lock_guard lock(write_mu_);
  transition_observer_ = std::move(observer);
}

void SqliteStore::CheckTransition(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto* store = static_cast<SqliteStore*>(sqlite3_user_data(ctx));
  StateTransition t;
  std::optional<JobState> to = StateFromColumn(sqlite3_value_int64(argv[1]));
  if (sqlite3_value_type(argv[0]) != SQLITE_NULL) {
    t.from = StateFromColumn(sqlite3_value_int64(argv[0]));
    if (!t.from) {
      sqlite3_result_error(ctx, "job in an unknown state", -1);
      return;
    }
  }
  if (!to) {
    sqlite3_result_error(ctx, "unknown target state", -1);
    return;
  }
  t.to = *to;
  t.legal = t.from ? IsLegalTransition(*t.from, t.to) : IsLegalInitialState(t.to);
  if (store->transition_observer_) store->transition_observer_(t);
  if (!t.legal) {
    const std::string msg = fmt::format("illegal state transition {} -> {}",
                                        t.from ? ToString(*t.from) : "(new)", ToString(t.to));
    sqlite3_result_error(ctx, msg.c_str(), static_cast<int>(msg.size()));
    return;
  }
  sqlite3_result_null(ctx);
}

int SqliteStore::OnWalCommit(void* arg, sqlite3* db, const char*, int pages) {
  auto* store = static_cast<SqliteStore*>(arg);
  store->wal_written_ = true;
  if (pages < store->wal_frames_) {  // the WAL started over
    ++store->wal_generation_;
    store->checkpoint_requested_at_ = 0;
  }
  store->wal_frames_ = pages;
  // A commit that wrote to the WAL: the disk takes writes (again).
  if (store->disk_full_.exchange(false)) spdlog::warn("sqlite: writes succeed again");
  bool writer_pass = false;
  if (pages >= kCheckpointHardPages) {
    std::lock_guard lock(store->checkpoint_mu_);
    writer_pass =
        pages >= kCheckpointForcePages || (store->covered_generation_ == store->wal_generation_ &&
                                           pages - store->covered_frames_ <= kCheckpointWriterGap);
  }
  if (writer_pass) {
    // Under a steady stream of commits the background checkpoint never
    // catches the last frames, and the WAL can only start over once all are
    // copied. The background thread has copied nearly everything (see
    // kCheckpointWriterGap), so this pass is short; SQLITE_BUSY (the thread
    // is mid-pass) is fine: a later commit tries again.
    const auto start = std::chrono::steady_clock::now();
    int copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, &copied) !=
        SQLITE_OK) {
      OnDbError(store, sqlite3_extended_errcode(db));
    }
    // Every commit waits for this pass: say so when it was a long one (the
    // background checkpoint fell behind: the disk is slower than the writes).
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (ms >= kSlowWriterCheckpointMs) {
      spdlog::warn(
          "sqlite: commits waited {} ms for a checkpoint of the WAL ({} pages, {} copied): the "
          "background checkpoint fell behind the writes",
          ms, pages, copied);
    }
  } else if (pages - store->checkpoint_requested_at_ >= kCheckpointPages) {
    store->checkpoint_requested_at_ = pages;
    store->checkpoint_requests_.fetch_add(1);
    {
      std::lock_guard lock(store->checkpoint_mu_);
      store->checkpoint_wanted_ = true;
      store->wanted_generation_ = store->wal_generation_;
    }
    store->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteStore::OnRowChanged(void* arg, int, const char*, const char* table,
                               sqlite3_int64 rowid) {
  // Only job rows are read by id; other tables are read by List/Counts,
  // which wait for every commit (AwaitAllDurable).
  if (std::strcmp(table, "jobs") == 0) static_cast<SqliteStore*>(arg)->tx_rows_.push_back(rowid);
}

CommitToken SqliteStore::BeginCommit() {
  std::lock_guard lock(durable_mu_);
  const CommitToken token = ++begun_;
  // Marked before COMMIT makes them visible: a reader that sees the new row
  // finds the mark (or, once synced, no longer needs it).
  for (int64_t seq : tx_rows_) unsynced_rows_[seq] = token;
  unsynced_commits_.emplace_back(token, std::move(tx_rows_));
  tx_rows_.clear();
  return token;
}

void SqliteStore::EndCommit(CommitToken token, bool committed, bool wrote) {
  {
    std::lock_guard lock(durable_mu_);
    finished_ = token;  // committed or not: syncing past it is harmless
    if (committed) ++committed_;
    // A commit that wrote nothing (a batch whose claims found no job) needs
    // no sync of its own once every commit before it is durable: the engine
    // looks for work every few milliseconds, and must not fsync for it.
    if (committed && !wrote && synced_ == token - 1 && !sync_error_) {
      synced_ = token;
      committed_at_sync_ = committed_;
    }
  }
  durable_cv_.notify_all();
}

void SqliteStore::RunSyncer() {
  std::unique_lock lock(durable_mu_);
  while (true) {
    durable_cv_.wait(lock,
                     [this] { return (finished_ > synced_ && !sync_error_) || syncer_stopping_; });
    if (finished_ <= synced_ || sync_error_) break;  // stopping, nothing (more) to sync
    // Every WAL write of commits up to `target` has returned: a sync that
    // begins now covers them (frames written meanwhile may be covered too,
    // but are not counted).
    const CommitToken target = finished_;
    const int64_t committed = committed_;
    lock.unlock();
    const auto sync_start = std::chrono::steady_clock::now();
    const int rc = wal_file_->pMethods->xSync(wal_file_, SQLITE_SYNC_NORMAL);
    syncs_.fetch_add(1);
    // Every commit after `target` waits for this one: say so when the disk
    // took long (the tail of every submit and outcome).
    if (const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - sync_start)
                            .count();
        ms >= kSlowSyncMs) {
      spdlog::warn("sqlite: a WAL sync took {} ms (commits wait for it)", ms);
    }
    if (rc != SQLITE_OK) OnDbError(this, rc == SQLITE_IOERR_FSYNC ? rc : SQLITE_IOERR_FSYNC);
    std::vector<std::pair<CommitToken, std::function<void(const Error*)>>> ready;
    lock.lock();
    // A failed fsync anywhere (a checkpoint's too) leaves nothing provable.
    if (rc != SQLITE_OK || fsync_failed_.load()) {
      sync_error_ = Error::Unavailable(
          fmt::format("sqlite: syncing the WAL of {} failed (code {}); commits not yet durable "
                      "may be lost",
                      path_, rc),
          "the store stopped after a disk error");
      ready.assign(std::make_move_iterator(durable_waiters_.begin()),
                   std::make_move_iterator(durable_waiters_.end()));
      durable_waiters_.clear();
    } else {
      synced_ = target;
      committed_at_sync_ = committed;
      while (!unsynced_commits_.empty() && unsynced_commits_.front().first <= target) {
        for (int64_t seq : unsynced_commits_.front().second) {
          auto it = unsynced_rows_.find(seq);
          if (it != unsynced_rows_.end() && it->second <= target) unsynced_rows_.erase(it);
        }
        unsynced_commits_.pop_front();
      }
      while (!durable_waiters_.empty() && durable_waiters_.front().first <= target) {
        ready.push_back(std::move(durable_waiters_.front()));
        durable_waiters_.pop_front();
      }
    }
    const std::optional<Error> failure = sync_error_;
    lock.unlock();
    durable_cv_.notify_all();
    for (auto& entry : ready) {
      // Destroyed before the next one runs: a callback's captures (an
      // executor) must be gone by the time a later waiter learns it is
      // durable and may tear their owner down.
      auto done = std::move(entry.second);
      done(failure ? &*failure : nullptr);
    }
    lock.lock();
  }
  // Stopped: whoever still waits learns that nothing more will be synced.
  const Error stopped = sync_error_.value_or(
      Error::Unavailable("sqlite: store closed before the commit was synced", "store closed"));
  auto waiters = std::move(durable_waiters_);
  durable_waiters_.clear();
  lock.unlock();
  for (auto& entry : waiters) {
    auto done = std::move(entry.second);
    done(&stopped);
  }
}

void SqliteStore::WhenDurable(CommitToken token, std::function<void(const Error*)> done) {
  std::unique_lock lock(durable_mu_);
  if (token <= synced_) {
    lock.unlock();
    done(nullptr);
    return;
  }
  if (sync_error_ || syncer_stopping_) {
    const Error failure = sync_error_.value_or(
        Error::Unavailable("sqlite: store closed before the commit was synced", "store closed"));
    lock.unlock();
    done(&failure);
    return;
  }
  // Tokens reach here in commit order from the one writer, but keep the
  // queue sorted for any caller.
  auto it = durable_waiters_.end();
  while (it != durable_waiters_.begin() && std::prev(it)->first > token) --it;
  durable_waiters_.emplace(it, token, std::move(done));
}

Status SqliteStore::AwaitLocked(std::unique_lock<std::mutex>& lock, CommitToken token) {
  durable_cv_.wait(lock, [&] { return synced_ >= token || sync_error_ || syncer_stopping_; });
  if (synced_ >= token) return {};
  if (sync_error_) return *sync_error_;
  return Error::Unavailable("sqlite: store closed before the commit was synced", "store closed");
}

int64_t SqliteStore::UnsyncedCommits() {
  std::lock_guard lock(durable_mu_);
  return committed_ - committed_at_sync_;
}

Status SqliteStore::WaitDurable(CommitToken token) {
  std::unique_lock lock(durable_mu_);
  return AwaitLocked(lock, token);
}

Status SqliteStore::AwaitRowDurable(int64_t seq) {
  std::unique_lock lock(durable_mu_);
  auto it = unsynced_rows_.find(seq);
  if (it == unsynced_rows_.end()) return {};
  return AwaitLocked(lock, it->second);
}

Status SqliteStore::AwaitAllDurable() {
  std::unique_lock lock(durable_mu_);
  return AwaitLocked(lock, begun_);
}

void SqliteStore::RunCheckpointer() {
  std::unique_lock lock(checkpoint_mu_);
  while (!stopping_) {
    checkpoint_cv_.wait_for(lock, kCheckpointInterval,
                            [this] { return stopping_ || checkpoint_wanted_; });
    if (stopping_) break;
    checkpoint_wanted_ = false;
    if (fsync_failed_.load()) continue;  // fail-stop: the database file is not touched again
    // The WAL this pass works on started at or after the last request's
    // generation (it starts over only once every frame is copied).
    const int64_t generation = wanted_generation_;
    lock.unlock();
    // kUnavailable is SQLITE_BUSY: the writer is checkpointing; fine.
    int copied = 0;
    auto st = checkpointer_db_->CheckpointPassive(&copied);
    if (!st && st.error().code != ErrorCode::kUnavailable) {
      spdlog::warn("sqlite checkpoint failed: {}", st.error().message);
    }
    lock.lock();
    if (st) {  // frames behind a reader's snapshot are not copied: counted as such
      covered_frames_ = copied;
      covered_generation_ = generation;
    }
  }
}

void SqliteStore::OnDbError(void* arg, int code) {
  auto* store = static_cast<SqliteStore*>(arg);
  if (code == SQLITE_IOERR_FSYNC || code == SQLITE_IOERR_DIR_FSYNC) {
    // fsyncgate: after a failed fsync the kernel may have dropped the dirty
    // pages and marked them clean, so a later fsync can succeed without them
    // and SQLite's idea of what is in the WAL can be wrong. Nothing written
    // from now on could be trusted to be durable: stop writing (fail-stop).
    if (!store->fsync_failed_.exchange(true)) {
      spdlog::critical(
          "sqlite: fsync of {} failed (code {}); the store no longer accepts writes: every submit "
          "answers 503 and /readyz is not ready. Check the disk, then restart acceptd (recovery "
          "replays the WAL; every acknowledged job is kept)",
          store->path_, code);
    }
  } else if ((code & 0xff) == SQLITE_FULL) {
    if (!store->disk_full_.exchange(true)) {
      spdlog::error(
          "sqlite: the disk holding {} is full; writes fail (submits answer 503) and /readyz is "
          "not ready until space is freed; writes resume by themselves",
          store->path_);
    }
  }
}

void SqliteStore::ProbeWrite() {
  // Waits for a running batch rather than skipping the probe: a batch that
  // held the lock may have failed before the space came back, and /readyz
  // must not answer "full" for a disk that takes writes. Batches are short,
  // and this path runs only while the disk is (or was) full.
  std::unique_lock lock(write_mu_);
  if (!disk_full_.load()) return;  // the batch that held the lock committed
  if (!writer_->Exec("BEGIN IMMEDIATE")) return;
  // Rewriting user_version with its own value dirties the header page: one
  // WAL frame, so a commit needs space (and clears disk_full_ in OnWalCommit).
  int64_t version = 0;
  {
    auto v = writer_->Prepare("PRAGMA user_version");
    if (v->Step() == SQLITE_ROW) version = v->Int(0);
  }
  const std::string sql = fmt::format("PRAGMA user_version = {}", version);
  if (version <= 0 || !writer_->Exec(sql.c_str()) || !writer_->Exec("COMMIT")) {
    (void)writer_->Exec("ROLLBACK");
  }
}

Result<std::unique_ptr<WriteTx>> SqliteStore::BeginWrite() {
  std::unique_lock lock(write_mu_);
  if (fsync_failed_.load()) {
    return Error::Unavailable("sqlite: writes stopped after an fsync failure; restart acceptd",
                              "the store stopped after a disk error");
  }
  if (auto st = writer_->Exec("BEGIN IMMEDIATE"); !st) return std::move(st).error();
  return std::unique_ptr<WriteTx>(new Tx(std::move(lock), *this));
}

Result<SqliteStore::ReaderLease> SqliteStore::AcquireReader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      auto db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return ReaderLease(this, std::move(db));
    }
  }
  auto db = SqliteDb::Open(path_, vfs_);
  if (!db) return std::move(db).error();
  if (auto st = (*db)->Exec("PRAGMA busy_timeout = 5000"); !st) return std::move(st).error();
  return ReaderLease(this, std::move(*db));
}

void SqliteStore::ReleaseReader(std::unique_ptr<SqliteDb> db) {
  std::lock_guard lock(readers_mu_);
  idle_readers_.push_back(std::move(db));
}

Result<Job> SqliteStore::Get(const JobId& id) {
  Result<Job> job = [&]() -> Result<Job> {
    auto reader = AcquireReader();
    if (!reader) return std::move(reader).error();
    return GetJob(**reader, id);
  }();
  // What was read must not be undone by a crash once reported (see header).
  if (job) {
    if (auto st = AwaitRowDurable(job->seq); !st) return std::move(st).error();
  } else if (job.error().code == ErrorCode::kNotFound || job.error().code == ErrorCode::kGone) {
    // A deletion leaves no row to look up: wait for every commit begun.
    if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  }
  return job;
}

Result<StoredResult> SqliteStore::GetResult(const JobId& id) {
  int64_t seq = 0;
  Result<StoredResult> result = [&]() -> Result<StoredResult> {
    auto reader = AcquireReader();
    if (!reader) return std::move(reader).error();
    SqliteDb& db = **reader;
    auto s = db.Prepare(
        "SELECT state, result IS NOT NULL, result, result_type, expires_at, seq FROM jobs "
        "WHERE id = ?1");
    BindId(*s, 1, id);
    int rc = s->Step();
    if (rc == SQLITE_DONE) return Missing(db, id);
    if (rc != SQLITE_ROW) return db.LastError("get result");
    StoredResult r;
    r.state = StateFromColumn(s->Int(0)).value_or(JobState::kFailed);
    r.has_result = s->Int(1) != 0;
    r.body = s->Blob(2);
    r.content_type = s->Text(3);
    r.expires_at = OptInt(*s, 4);
    seq = s->Int(5);
    return r;
  }();
  if (result) {
    if (auto st = AwaitRowDurable(seq); !st) return std::move(st).error();
  } else if (result.error().code == ErrorCode::kNotFound ||
             result.error().code == ErrorCode::kGone) {
    if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  }
  return result;
}

Result<StoredPayload> SqliteStore::GetPayload(const JobId& id) {
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  auto s = db.Prepare("SELECT payload, content_type, expires_at FROM jobs WHERE id = ?1");
  BindId(*s, 1, id);
  int rc = s->Step();
  if (rc == SQLITE_DONE) return Missing(db, id);
  if (rc != SQLITE_ROW) return db.LastError("get payload");
  return StoredPayload{s->Blob(0), s->Text(1), OptInt(*s, 2)};
}

namespace {

// A search's filters, as one 0/1 column computed per examined row: CASE
// tries each WHEN in order and stops at the first that holds, so a row
// pays for the costly tests (substring, JSON) only if the cheap ones pass,
// and a filter not given costs one NULL test. The JSON tests run only on a
// payload that is valid JSON (json_extract would fail the statement).
#define SEARCH_MATCH                                                                       \
  "CASE WHEN ?1 IS NOT NULL AND queue IS NOT ?1 THEN 0 "                                   \
  "WHEN ?2 IS NOT NULL AND state IS NOT ?2 THEN 0 "                                        \
  "WHEN ?4 IS NOT NULL AND tenant IS NOT ?4 THEN 0 "                                       \
  "WHEN ?5 IS NOT NULL AND created_at < ?5 THEN 0 "                                        \
  "WHEN ?6 IS NOT NULL AND created_at >= ?6 THEN 0 "                                       \
  "WHEN ?7 IS NOT NULL AND (id < ?7 OR id > ?8) THEN 0 "                                   \
  "WHEN ?9 IS NOT NULL AND instr(payload, ?9) = 0 AND COALESCE(instr(result, ?9), 0) = 0 " \
  "  THEN 0 "                                                                              \
  "WHEN ?10 IS NULL THEN 1 "                                                               \
  "WHEN NOT json_valid(CAST(payload AS TEXT)) THEN 0 "                                     \
  "ELSE COALESCE(CASE json_type(CAST(payload AS TEXT), ?10) "                              \
  "  WHEN 'text' THEN json_extract(CAST(payload AS TEXT), ?10) = ?11 "                     \
  "  WHEN 'integer' THEN (CAST(payload AS TEXT) -> ?10) = ?11 "                            \
  "  WHEN 'real' THEN (CAST(payload AS TEXT) -> ?10) = ?11 "                               \
  "  WHEN 'true' THEN ?11 = 'true' WHEN 'false' THEN ?11 = 'false' ELSE 0 END, 0) END"

// ?3 is the cursor, never NULL (a bound past every seq when there is none),
// so the scan starts at it in the rowid b-tree instead of skipping to it.
constexpr const char* kSearchNewest =
    "SELECT " JOB_COLUMNS ", " SEARCH_MATCH " FROM jobs WHERE seq < ?3 ORDER BY seq DESC";
constexpr const char* kSearchOldest =
    "SELECT " JOB_COLUMNS ", " SEARCH_MATCH " FROM jobs WHERE seq > ?3 ORDER BY seq";
// The same, over the jobs an id prefix names (few: see ListParams), through
// the id index.
constexpr const char* kSearchIdNewest = "SELECT " JOB_COLUMNS ", " SEARCH_MATCH
                                        " FROM jobs INDEXED BY sqlite_autoindex_jobs_1 "
                                        "WHERE id >= ?7 AND id <= ?8 AND seq < ?3 "
                                        "ORDER BY seq DESC";
constexpr const char* kSearchIdOldest = "SELECT " JOB_COLUMNS ", " SEARCH_MATCH
                                        " FROM jobs INDEXED BY sqlite_autoindex_jobs_1 "
                                        "WHERE id >= ?7 AND id <= ?8 AND seq > ?3 ORDER BY seq";

Result<JobPage> Search(SqliteDb& db, const ListParams& p) {
  if (auto st = sql::CheckListParams(p); !st) return std::move(st).error();
  const bool newest = p.order == ListOrder::kNewest;
  std::array<uint8_t, 16> lo{}, hi{};
  bool by_id = false;
  if (p.id_prefix) {
    lo = sql::IdPrefixLow(*p.id_prefix);
    hi = sql::IdPrefixHigh(*p.id_prefix);
    // Few jobs carry the prefix: read just those, through the id index.
    auto n = db.Prepare(
        "SELECT count(*) FROM (SELECT 1 FROM jobs INDEXED BY sqlite_autoindex_jobs_1 "
        "WHERE id >= ?1 AND id <= ?2 LIMIT ?3)");
    n->BindBlob(1, lo.data(), lo.size()).BindBlob(2, hi.data(), hi.size());
    n->Bind(3, p.max_examined + 1);
    if (n->Step() != SQLITE_ROW) return db.LastError("search by id prefix");
    by_id = n->Int(0) <= p.max_examined;
  }
  auto s = db.Prepare(by_id ? (newest ? kSearchIdNewest : kSearchIdOldest)
                            : (newest ? kSearchNewest : kSearchOldest));
  if (p.queue) s->Bind(1, *p.queue);
  if (p.state) s->Bind(2, StateColumn(*p.state));
  if (newest) {
    s->Bind(3, p.before_seq.value_or(std::numeric_limits<int64_t>::max()));
  } else {
    s->Bind(3, p.after_seq.value_or(std::numeric_limits<int64_t>::min()));
  }
  if (p.tenant) s->Bind(4, *p.tenant);
  if (p.created_after) s->Bind(5, *p.created_after);
  if (p.created_before) s->Bind(6, *p.created_before);
  if (p.id_prefix) s->BindBlob(7, lo.data(), lo.size()).BindBlob(8, hi.data(), hi.size());
  // Bound as blobs: instr() then compares bytes, whatever the encoding.
  if (p.text) s->BindBlob(9, p.text->data(), p.text->size());
  std::string path;
  if (p.field) {
    path = sql::SqliteJsonPath(*p.field);
    s->Bind(10, path).Bind(11, p.field->value);
  }
  JobPage page;
  int examined = 0;
  int64_t last_seq = 0;
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    ++examined;
    last_seq = s->Int(0);
    if (s->Int(kFirstExtraCol) != 0) {
      if (static_cast<int>(page.jobs.size()) == p.limit) {
        // One more match: there is a next page, after the last job listed.
        page.next_cursor = page.jobs.back().seq;
        return page;
      }
      page.jobs.push_back(ReadJob(*s));
    }
    if (!by_id && examined >= p.max_examined) {
      // The bound: go on from here, unless nothing is left (one more step).
      rc = s->Step();
      if (rc == SQLITE_DONE) return page;
      if (rc != SQLITE_ROW) return db.LastError("search jobs");
      page.next_cursor = last_seq;
      page.scan_limited = true;
      return page;
    }
  }
  if (rc != SQLITE_DONE) return db.LastError("search jobs");
  return page;
}

}  // namespace

Result<JobPage> SqliteStore::List(const ListParams& p) {
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  if (p.IsSearch()) {
    auto page = Search(db, p);
    if (page) {
      if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
    }
    return page;
  }
  const bool newest = p.order == ListOrder::kNewest;
  auto s = db.Prepare(newest ? "SELECT " JOB_COLUMNS
                               " FROM jobs WHERE (?1 IS NULL OR queue = ?1) "
                               "AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR seq < ?3) "
                               "AND (?5 IS NULL OR tenant = ?5) "
                               "ORDER BY seq DESC LIMIT ?4"
                             : "SELECT " JOB_COLUMNS
                               " FROM jobs WHERE (?1 IS NULL OR queue = ?1) "
                               "AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR seq > ?3) "
                               "AND (?5 IS NULL OR tenant = ?5) "
                               "ORDER BY seq LIMIT ?4");
  if (p.queue) s->Bind(1, *p.queue);
  if (p.state) s->Bind(2, StateColumn(*p.state));
  if (newest && p.before_seq) s->Bind(3, *p.before_seq);
  if (!newest && p.after_seq) s->Bind(3, *p.after_seq);
  s->Bind(4, p.limit + 1);
  if (p.tenant) s->Bind(5, *p.tenant);
  auto jobs = CollectJobs(db, *s, "list jobs");
  if (!jobs) return std::move(jobs).error();
  // Lists and counts are rare (admin, dashboards): they wait for every
  // commit begun rather than find out which rows they met.
  if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  JobPage page;
  page.jobs = std::move(*jobs);
  if (static_cast<int>(page.jobs.size()) > p.limit) {
    page.jobs.resize(static_cast<size_t>(p.limit));
    page.next_cursor = page.jobs.back().seq;
  }
  return page;
}

Result<AttemptHistory> SqliteStore::GetAttempts(const JobId& id) {
  Result<AttemptHistory> history = [&]() -> Result<AttemptHistory> {
    auto reader = AcquireReader();
    if (!reader) return std::move(reader).error();
    SqliteDb& db = **reader;
    auto s = db.Prepare("SELECT " JOB_COLUMNS
                        ", attempt_log, attempt_log_total FROM jobs WHERE id = ?1");
    BindId(*s, 1, id);
    const int rc = s->Step();
    if (rc == SQLITE_DONE) return Missing(db, id);
    if (rc != SQLITE_ROW) return db.LastError("get attempts");
    return sql::BuildAttemptHistory(ReadJob(*s), s->Text(kFirstExtraCol),
                                    s->Int(kFirstExtraCol + 1));
  }();
  if (history) {
    if (auto st = AwaitRowDurable(history->job.seq); !st) return std::move(st).error();
  } else if (history.error().code == ErrorCode::kNotFound ||
             history.error().code == ErrorCode::kGone) {
    if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  }
  return history;
}

Result<std::vector<QueueThroughput>> SqliteStore::Throughput(UnixMillis since, Millis step,
                                                             int buckets) {
  if (step <= 0 || buckets <= 0) return std::vector<QueueThroughput>{};
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  // A range of the covering index jobs_finished: the window's jobs only.
  auto s = db.Prepare(
      "SELECT queue, state, (finished_at - ?1) / ?2, count(*) FROM jobs INDEXED BY jobs_finished "
      "WHERE finished_at >= ?1 AND finished_at < ?3 AND state IN " ACCEPTD_SQL_TERMINAL
      " GROUP BY 1, 2, 3");
  s->Bind(1, since).Bind(2, step).Bind(3, since + step * buckets);
  std::vector<QueueThroughput> out;
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    auto state = StateFromColumn(s->Int(1));
    if (!state) continue;
    sql::AddThroughput(out, s->Text(0), *state, s->Int(2), s->Int(3), buckets);
  }
  if (rc != SQLITE_DONE) return db.LastError("throughput");
  if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  return out;
}

Result<std::vector<QueueCounts>> SqliteStore::Counts() {
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  auto s = db.Prepare("SELECT queue, state, n FROM queue_counts ORDER BY queue");
  std::vector<QueueCounts> out;
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    std::string queue = s->Text(0);
    if (out.empty() || out.back().queue != queue) out.push_back(QueueCounts{queue, {}});
    if (auto state = StateFromColumn(s->Int(1))) {
      out.back().counts[static_cast<int>(*state)] = s->Int(2);
    }
  }
  if (rc != SQLITE_DONE) return db.LastError("counts");
  if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  return out;
}

Result<std::vector<QueueValue>> SqliteStore::OldestReady() {
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  // The claim index holds exactly the ready jobs (queue, priority, run_at):
  // a scan of it, not of the table.
  auto s = db.Prepare(
      "SELECT queue, MIN(run_at) FROM jobs INDEXED BY jobs_claim WHERE state = " ACCEPTD_SQL_QUEUED
      " AND scheduled = 0 GROUP BY queue");
  std::vector<QueueValue> out;
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) out.push_back(QueueValue{s->Text(0), s->Int(1)});
  if (rc != SQLITE_DONE) return db.LastError("oldest ready");
  if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  return out;
}

Result<std::vector<ScheduleState>> SqliteStore::ScheduleStates() {
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  auto s = db.Prepare("SELECT name, last_fire_at, last_job_id FROM schedules");
  std::vector<ScheduleState> out;
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    ScheduleState st;
    st.schedule = s->Text(0);
    st.last_fire_at = s->Int(1);
    if (s->Bytes(2) == 16) st.last_job_id = JobId::FromBytes(s->BlobPtr(2));
    out.push_back(std::move(st));
  }
  if (rc != SQLITE_DONE) return db.LastError("schedule states");
  if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  return out;
}

Result<std::vector<std::string>> SqliteStore::PausedQueues() {
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  auto s = db.Prepare("SELECT queue FROM paused_queues");
  std::vector<std::string> out;
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) out.push_back(s->Text(0));
  if (rc != SQLITE_DONE) return db.LastError("paused queues");
  if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  return out;
}

Result<NodeList> SqliteStore::Nodes() {
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  SqliteDb& db = **reader;
  NodeList out;
  auto s = db.Prepare("SELECT name, started_at, seen_at FROM nodes ORDER BY name");
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    out.nodes.push_back(NodeInfo{s->Text(0), s->Int(1), s->Int(2)});
  }
  if (rc != SQLITE_DONE) return db.LastError("nodes");
  // The running jobs' index is keyed by lease owner: a scan of it only.
  auto o = db.Prepare(
      "SELECT lease_owner, COUNT(*) FROM jobs INDEXED BY jobs_running WHERE state "
      "= " ACCEPTD_SQL_RUNNING " GROUP BY lease_owner ORDER BY lease_owner");
  while ((rc = o->Step()) == SQLITE_ROW) out.owners.push_back(OwnerCount{o->Text(0), o->Int(1)});
  if (rc != SQLITE_DONE) return db.LastError("running per owner");
  if (auto st = AwaitAllDurable(); !st) return std::move(st).error();
  return out;
}

Status SqliteStore::Ping() {
  if (fsync_failed_.load()) {
    return Error::Unavailable("sqlite: writes stopped after an fsync failure; restart acceptd",
                              "the store stopped after a disk error");
  }
  if (disk_full_.load()) ProbeWrite();
  if (disk_full_.load()) {
    return Error::Unavailable("sqlite: the disk is full", "the store's disk is full");
  }
  auto reader = AcquireReader();
  if (!reader) return std::move(reader).error();
  auto s = (**reader).Prepare("SELECT 1");
  if (s->Step() != SQLITE_ROW) return (**reader).LastError("ping");
  return {};
}

}  // namespace acceptd
