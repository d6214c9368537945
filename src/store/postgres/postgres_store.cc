#include "store/postgres/postgres_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "store/postgres/pg_feed.h"
#include "store/postgres/pg_schema.h"
#include "store/sql_outcomes.h"
#include "store/sql_reads.h"
#include "store/sql_state_encoding.h"

namespace acceptd {
namespace {

using pg::Conn;
using pg::Params;
using pg::Rows;
using sql::StateColumn;
using sql::StateFromColumn;

// A named statement: prepared once per connection under `name`.
struct Stmt {
  const char* name;
  const char* sql;
};

// The columns ReadJob() expects, in order; kFirstExtraCol is the first
// column selected after them.
#define JOB_COLUMNS                                                                             \
  "seq, id, queue, state, priority, content_type, created_at, updated_at, run_at, started_at, " \
  "finished_at, expires_at, attempts, max_attempts, timeout_ms, retention_ms, "                 \
  "progress_percent, progress_message, error_type, error_message, cancel_requested, "           \
  "delete_requested, result IS NOT NULL, lease_owner, lease_token, lease_expires_at, "          \
  "callback_url, callback_attempts, callback_status, callback_error, callback_delivered_at, "   \
  "callback_next_at, tenant, attempt_started_at"
constexpr int kFirstExtraCol = 34;

#define Q ACCEPTD_SQL_QUEUED
#define R ACCEPTD_SQL_RUNNING

// Appends the ending attempt to the job's history (store/sql_reads.h), in
// the statement that ends it: SET expressions see the row as it was, so
// `attempts`, `attempt_started_at` and `lease_owner` are the attempt's.
// Dropping the oldest line once the cap is reached keeps it bounded.
#define ATTEMPT_LOG_APPEND(ended_at, outcome, error_type, error_message)                        \
  "attempt_log = CASE WHEN attempt_log_total >= " ACCEPTD_SQL_ATTEMPT_LOG_CAP                   \
  " THEN substr(attempt_log, strpos(attempt_log, chr(10)) + 1) ELSE COALESCE(attempt_log, '') " \
  "END || json_build_array(attempts, attempt_started_at, " ended_at ", " outcome                \
  ", lease_owner, " error_type ", " error_message                                               \
  ")::text || chr(10), attempt_log_total = attempt_log_total + 1, "
#define FAILED_OUTCOME "CASE WHEN $4::text = 'timeout' THEN 'timeout' ELSE 'failed' END"

Job ReadJob(const Rows& r, int i) {
  Job j;
  j.seq = r.Int(i, 0);
  j.id = r.Uuid(i, 1);
  j.queue = r.Bytes(i, 2);
  j.state = StateFromColumn(r.Int(i, 3)).value_or(JobState::kFailed);
  j.priority = static_cast<int>(r.Int(i, 4));
  j.content_type = r.Bytes(i, 5);
  j.created_at = r.Int(i, 6);
  j.updated_at = r.Int(i, 7);
  j.run_at = r.Int(i, 8);
  j.started_at = r.OptInt(i, 9);
  j.finished_at = r.OptInt(i, 10);
  j.expires_at = r.OptInt(i, 11);
  j.attempts = static_cast<int>(r.Int(i, 12));
  j.max_attempts = static_cast<int>(r.Int(i, 13));
  j.timeout = r.Int(i, 14);
  j.retention = r.Int(i, 15);
  if (!r.IsNull(i, 16)) j.progress = Progress{static_cast<int>(r.Int(i, 16)), r.Bytes(i, 17)};
  if (!r.IsNull(i, 18)) j.error = JobError{r.Bytes(i, 18), r.Bytes(i, 19)};
  j.cancel_requested = r.Bool(i, 20);
  j.delete_requested = r.Bool(i, 21);
  j.has_result = r.Bool(i, 22);
  j.lease_owner = r.Bytes(i, 23);
  j.lease_token = r.Int(i, 24);
  j.lease_expires_at = r.IsNull(i, 25) ? 0 : r.Int(i, 25);
  if (!r.IsNull(i, 26)) {
    CallbackState& c = j.callback.emplace();
    c.url = r.Bytes(i, 26);
    c.attempts = static_cast<int>(r.Int(i, 27));
    if (!r.IsNull(i, 28)) c.last_status = static_cast<int>(r.Int(i, 28));
    c.last_error = r.Bytes(i, 29);
    c.delivered_at = r.OptInt(i, 30);
    c.next_attempt_at = r.OptInt(i, 31);
  }
  j.tenant = r.Bytes(i, 32);
  j.attempt_started_at = r.OptInt(i, 33);
  return j;
}

std::vector<Job> ReadJobs(const Rows& r, bool with_payload = false) {
  std::vector<Job> jobs;
  jobs.reserve(static_cast<size_t>(r.Size()));
  for (int i = 0; i < r.Size(); ++i) {
    jobs.push_back(ReadJob(r, i));
    if (with_payload) jobs.back().payload = r.Bytes(i, kFirstExtraCol);
  }
  return jobs;
}

Result<std::optional<Job>> OneJob(Conn& c, const Stmt& s, const Params& p) {
  auto r = c.Run(s.name, s.sql, p);
  if (!r) return std::move(r).error();
  if (r->Size() == 0) return std::optional<Job>();
  return std::optional<Job>(ReadJob(*r, 0));
}

constexpr Stmt kTombstone{"acceptd_tombstone", "SELECT 1 FROM acceptd.tombstones WHERE id = $1"};

// kGone if a tombstone remembers the id, else kNotFound (or a store error).
Error Missing(Conn& c, const JobId& id) {
  Params p;
  p.Uuid(id);
  auto r = c.Run(kTombstone.name, kTombstone.sql, p);
  if (!r) return std::move(r).error();
  if (r->Size() > 0) return JobExpired();
  return Error::NotFound("no such job");
}

constexpr Stmt kGetJob{"acceptd_get_job", "SELECT " JOB_COLUMNS " FROM acceptd.jobs WHERE id = $1"};

Result<Job> GetJob(Conn& c, const JobId& id) {
  Params p;
  p.Uuid(id);
  auto job = OneJob(c, kGetJob, p);
  if (!job) return std::move(job).error();
  if (!*job) return Missing(c, id);
  return std::move(**job);
}

std::string GeneratedNodeName() {
  static std::atomic<int> counter{0};
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "acceptd");
  return fmt::format("{}:{}:{}", host, getpid(), counter.fetch_add(1));
}

// Session setup of every pooled connection: the origin of its changes for
// the feed, bounds on waiting, and the durability check. A node that stops
// in the middle of a transaction (partitioned, frozen) would hold its locks
// (a queue's insert lock, claimed rows) until the server notices; the
// server ends such a session after 60 s idle in a transaction instead. A
// statement that waits 10 s for a lock fails (503) rather than holding a
// whole batch of submits longer.
constexpr Stmt kSession{"acceptd_session",
                        "SELECT set_config('acceptd.node', $1, false), current_setting('fsync'), "
                        "current_setting('synchronous_commit'), "
                        "set_config('idle_in_transaction_session_timeout', '60s', false), "
                        "set_config('lock_timeout', '10s', false)"};

Status SetUpSession(Conn& c, const std::string& node, bool unsafe_durability) {
  Params p;
  p.Text(node);
  auto r = c.Run(kSession.name, kSession.sql, p);
  if (!r) return std::move(r).error();
  const std::string fsync = r->Bytes(0, 1);
  const std::string sync_commit = r->Bytes(0, 2);
  if (unsafe_durability) return {};
  if (fsync == "off") {
    return Error::Unavailable(
        "postgres: the server runs with fsync = off, so a commit may be lost in a crash and "
        "acceptd could acknowledge (202) a job that then disappears; turn fsync on, or start "
        "acceptd with --unsafe-durability (store option unsafe_durability) to accept that",
        "store unavailable");
  }
  if (sync_commit == "off") {
    return Error::Unavailable(
        "postgres: this session runs with synchronous_commit = off (set for the server, the "
        "database or the role), so COMMIT returns before the commit is durable and acceptd "
        "could acknowledge (202) a job that is lost in a crash; set synchronous_commit = on, or "
        "start acceptd with --unsafe-durability (store option unsafe_durability) to accept that",
        "store unavailable");
  }
  return {};
}

}  // namespace

void PostgresConnectParams(const std::string& url, const std::string& node,
                           std::vector<std::string>* keywords, std::vector<std::string>* values) {
  keywords->clear();
  values->clear();
  std::set<std::string> given;
  char* err = nullptr;
  if (PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err)) {
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
      if (o->val && *o->val) given.insert(o->keyword);
    }
    PQconninfoFree(opts);
  }
  if (err) PQfreemem(err);
  keywords->push_back("dbname");
  values->push_back(url);
  auto add_default = [&](const char* key, const char* env, std::string value) {
    if (given.contains(key) || (env && std::getenv(env))) return;
    keywords->push_back(key);
    values->push_back(std::move(value));
  };
  add_default("connect_timeout", "PGCONNECT_TIMEOUT", "5");
  add_default("application_name", "PGAPPNAME", ("acceptd " + node).substr(0, 63));
  // A server that vanished without closing the connection (network cut,
  // host power loss) is noticed within ~25 s rather than the kernel's hours.
  add_default("keepalives_idle", nullptr, "10");
  add_default("keepalives_interval", nullptr, "5");
  add_default("keepalives_count", nullptr, "3");
}

class PostgresStore::Tx final : public WriteTx {
 public:
  Tx(PostgresStore* store, std::unique_lock<std::mutex> lock, pg::Pool::Lease conn)
      : store_(store), lock_(std::move(lock)), lease_(std::move(conn)), c_(*lease_) {
    c_.SetNoticeHandler([store](const PGresult* r) { store->OnNotice(r); });
  }
  ~Tx() override {
    if (!done_ && c_.Healthy()) (void)c_.Exec("ROLLBACK");
    c_.SetNoticeHandler(nullptr);
  }

  Result<Job> Insert(const NewJob& n) override {
    static constexpr Stmt kInsert{
        "acceptd_insert",
        "SELECT o_outcome, o_seq, o_depth FROM acceptd.insert_job($1::uuid, $2::text, "
        "$3::integer, $4::bytea, $5::text, $6::bigint, $7::bigint, $8::integer, $9::bigint, "
        "$10::bigint, $11::bigint, $12::text, $13::text, $14::bytea, $15::text)"};
    Params p;
    p.Uuid(n.id).Text(n.queue).Int(n.priority).Bytes(n.payload).Text(n.content_type);
    p.Int(n.now).Int(n.run_at).Int(n.max_attempts).Int(n.timeout).Int(n.retention);
    p.Int(n.max_depth).Text(n.tenant);
    if (n.idempotency_key.empty()) {
      p.Null().Null();
    } else {
      p.Text(n.idempotency_key).Bytes(n.request_digest);
    }
    if (n.callback_url.empty()) {
      p.Null();
    } else {
      p.Text(n.callback_url);
    }
    auto r = c_.Run(kInsert.name, kInsert.sql, p);
    if (!r) return std::move(r).error();
    if (r->Size() != 1) return Error::Internal("postgres: insert_job returned no row");
    if (r->Int(0, 0) != 1) return InsertOutcome(n, r->Int(0, 0), r->OptInt(0, 1), r->OptInt(0, 2));
    auto replayed = JobsBySeq({r->Int(0, 1)});
    if (!replayed) return std::move(replayed).error();
    return std::move(replayed->front());  // a replay: the original job
  }

  // One statement for all the jobs: acceptd.insert_job once per row, in the
  // rows' order. The function is volatile, so each call's statements see
  // what the calls before it in this statement did (its fresh snapshot per
  // statement, and the queue counts its AFTER triggers moved): each job gets
  // exactly Insert's outcome at its place in the sequence. The calls run in
  // the rows' order: the LATERAL call forces a nested loop over the unnest
  // (whose ordinality is its output order), checked on the way back by `ord`.
  // Arrays go in binary: no escaping of payloads, one prepared statement for
  // any number of rows.
  Result<std::vector<Result<Job>>> InsertMany(const std::vector<NewJob>& jobs) override {
    if (jobs.empty()) return std::vector<Result<Job>>{};
    if (jobs.size() == 1) {
      auto one = Insert(jobs.front());
      if (!one && (one.error().code == ErrorCode::kInternal ||
                   one.error().code == ErrorCode::kUnavailable)) {
        return std::move(one).error();
      }
      std::vector<Result<Job>> out;
      out.push_back(std::move(one));
      return out;
    }
    static constexpr Stmt kInsertMany{
        "acceptd_insert_many",
        "SELECT u.ord, r.o_outcome, r.o_seq, r.o_depth FROM unnest($1::uuid[], $2::text[], "
        "$3::integer[], $4::bytea[], $5::text[], $6::bigint[], $7::bigint[], $8::integer[], "
        "$9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::bytea[], "
        "$15::text[]) WITH ORDINALITY AS u(id, queue, priority, payload, content_type, now, "
        "run_at, max_attempts, timeout, retention, max_depth, tenant, key, digest, callback_url, "
        "ord) CROSS JOIN LATERAL acceptd.insert_job(u.id, u.queue, u.priority, u.payload, "
        "u.content_type, u.now, u.run_at, u.max_attempts, u.timeout, u.retention, u.max_depth, "
        "u.tenant, u.key, u.digest, u.callback_url) r ORDER BY u.ord"};
    using A = pg::ArrayParam;
    A id(A::kUuid), queue(A::kText), priority(A::kInt4), payload(A::kBytea), type(A::kText);
    A now(A::kInt8), run_at(A::kInt8), max_attempts(A::kInt4), timeout(A::kInt8);
    A retention(A::kInt8), max_depth(A::kInt8), tenant(A::kText), key(A::kText);
    A digest(A::kBytea), callback(A::kText);
    for (const NewJob& n : jobs) {
      id.Uuid(n.id);
      queue.Text(n.queue);
      priority.Int4(n.priority);
      payload.Bytes(n.payload);
      type.Text(n.content_type);
      now.Int8(n.now);
      run_at.Int8(n.run_at);
      max_attempts.Int4(n.max_attempts);
      timeout.Int8(n.timeout);
      retention.Int8(n.retention);
      max_depth.Int8(n.max_depth);
      tenant.Text(n.tenant);
      if (n.idempotency_key.empty()) {
        key.Null();
        digest.Null();
      } else {
        key.Text(n.idempotency_key);
        digest.Bytes(n.request_digest);
      }
      if (n.callback_url.empty()) {
        callback.Null();
      } else {
        callback.Text(n.callback_url);
      }
    }
    Params p;
    for (const A* a : {&id, &queue, &priority, &payload, &type, &now, &run_at, &max_attempts,
                       &timeout, &retention, &max_depth, &tenant, &key, &digest, &callback}) {
      p.Array(*a);
    }
    auto r = c_.Run(kInsertMany.name, kInsertMany.sql, p);
    if (!r) return std::move(r).error();
    if (r->Size() != static_cast<int>(jobs.size())) {
      return Error::Internal("postgres: insert_job returned a row count unlike the jobs'");
    }
    std::vector<Result<Job>> out;
    out.reserve(jobs.size());
    std::vector<int64_t> replays;
    for (int i = 0; i < r->Size(); ++i) {
      if (r->Int(i, 0) != i + 1) return Error::Internal("postgres: insert_job rows out of order");
      const int64_t outcome = r->Int(i, 1);
      if (outcome == 1) replays.push_back(r->Int(i, 2));
      out.push_back(
          InsertOutcome(jobs[static_cast<size_t>(i)], outcome, r->OptInt(i, 2), r->OptInt(i, 3)));
    }
    if (replays.empty()) return out;
    // Replays are rare (a client retrying): their original jobs in one more trip.
    auto originals = JobsBySeq(replays);
    if (!originals) return std::move(originals).error();
    size_t next = 0;
    for (int i = 0; i < r->Size(); ++i) {
      if (r->Int(i, 1) == 1) out[static_cast<size_t>(i)] = std::move((*originals)[next++]);
    }
    return out;
  }

  // What insert_job's outcome means for `n` (a replay, 1, is the caller's:
  // it needs the original job).
  static Result<Job> InsertOutcome(const NewJob& n, int64_t outcome, std::optional<int64_t> seq,
                                   std::optional<int64_t> depth) {
    switch (outcome) {
      case 0:
        break;
      case 1:
        return Error::Internal("postgres: replay outcome not resolved");
      case 2:
        return Error::IdempotencyMismatch(
            "this Idempotency-Key was already used for a different request");
      case 3:
        return Error::QueueFull(fmt::format("queue '{}' is full ({} jobs queued or running)",
                                            n.queue, depth.value_or(0)));
      case 4:
        return Error::Conflict("duplicate id");
      default:
        return Error::Internal("postgres: insert_job returned an unknown outcome");
    }
    if (!seq) return Error::Internal("postgres: insert_job inserted without a seq");
    Job j;
    j.seq = *seq;
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

  // The jobs with these seqs, in the order given (one per seq, repeats allowed).
  Result<std::vector<Job>> JobsBySeq(const std::vector<int64_t>& seqs) {
    static constexpr Stmt kBySeqs{"acceptd_jobs_by_seqs",
                                  "SELECT " JOB_COLUMNS " FROM acceptd.jobs WHERE seq = ANY($1)"};
    pg::ArrayParam a(pg::ArrayParam::kInt8);
    for (int64_t seq : seqs) a.Int8(seq);
    Params q;
    q.Array(a);
    auto r = c_.Run(kBySeqs.name, kBySeqs.sql, q);
    if (!r) return std::move(r).error();
    std::map<int64_t, Job> by_seq;
    for (Job& j : ReadJobs(*r)) by_seq.emplace(j.seq, std::move(j));
    std::vector<Job> out;
    out.reserve(seqs.size());
    for (int64_t seq : seqs) {
      auto it = by_seq.find(seq);
      if (it == by_seq.end()) return Error::Internal("postgres: the replayed job vanished");
      out.push_back(it->second);
    }
    return out;
  }

  Result<std::vector<Job>> Claim(const ClaimParams& cp) override {
    static constexpr Stmt kClaim{
        "acceptd_claim",
        "WITH c AS (SELECT seq AS claim_seq FROM acceptd.jobs WHERE queue = $4::text AND state = " Q
        " AND NOT scheduled AND NOT EXISTS (SELECT 1 FROM acceptd.paused_queues pq WHERE "
        "pq.queue = $4::text) ORDER BY priority DESC, run_at, seq LIMIT $5::bigint "
        "FOR UPDATE SKIP LOCKED) "
        "UPDATE acceptd.jobs SET state = " R
        ", attempts = attempts + 1, lease_token = lease_token + 1, "
        "lease_owner = $1::text, started_at = COALESCE(started_at, $3::bigint), "
        "attempt_started_at = $3::bigint, "
        "lease_expires_at = CASE WHEN $6::boolean AND timeout_ms > 0 "
        "  THEN LEAST($2::bigint, $3::bigint + timeout_ms) ELSE $2::bigint END, "
        "lease_within_timeout = $6::boolean, progress_percent = NULL, progress_message = NULL, "
        "updated_at = $3::bigint FROM c WHERE seq = c.claim_seq AND state = " Q
        " RETURNING " JOB_COLUMNS ", payload"};
    Params p;
    p.Text(cp.owner).Int(cp.lease_expires_at).Int(cp.now).Text(cp.queue).Int(cp.limit);
    p.Bool(cp.lease_within_timeout);
    auto r = c_.Run(kClaim.name, kClaim.sql, p);
    if (!r) return std::move(r).error();
    auto jobs = ReadJobs(*r, /*with_payload=*/true);
    // RETURNING gives no order guarantee; hand jobs out in claim order.
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
      if (a.priority != b.priority) return a.priority > b.priority;
      if (a.run_at != b.run_at) return a.run_at < b.run_at;
      return a.seq < b.seq;
    });
    return jobs;
  }

  Result<Job> Finish(const AttemptOutcome& o) override {
    using Kind = AttemptOutcome::Kind;
    static constexpr Stmt kSucceeded{
        "acceptd_finish_succeeded",
        "UPDATE acceptd.jobs SET state = " ACCEPTD_SQL_SUCCEEDED
        ", result = $4::bytea, result_type = $5::text, finished_at = $3::bigint, "
        ATTEMPT_LOG_APPEND("$3::bigint", "'succeeded'", "NULL::text", "NULL::text")
        "updated_at = $3::bigint, expires_at = $3::bigint + retention_ms, lease_owner = NULL, "
        "lease_expires_at = NULL WHERE id = $1::uuid AND state = " R
        " AND lease_token = $2::bigint RETURNING " JOB_COLUMNS};
    static constexpr Stmt kFailed{
        "acceptd_finish_failed",
        "UPDATE acceptd.jobs SET state = " ACCEPTD_SQL_FAILED
        ", error_type = $4::text, error_message = $5::text, finished_at = $3::bigint, "
        ATTEMPT_LOG_APPEND("$3::bigint", FAILED_OUTCOME, "$4::text", "$5::text")
        "updated_at = $3::bigint, expires_at = $3::bigint + retention_ms, lease_owner = NULL, "
        "lease_expires_at = NULL WHERE id = $1::uuid AND state = " R
        " AND lease_token = $2::bigint RETURNING " JOB_COLUMNS};
    // A requested cancel wins over the retry, wherever it was requested:
    // the client was told cancel_requested, so the job must not run again.
    static constexpr Stmt kRetry{
        "acceptd_finish_retry",
        "UPDATE acceptd.jobs SET state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
        " ELSE " Q
        " END, error_type = $4::text, error_message = $5::text, "
        ATTEMPT_LOG_APPEND("$3::bigint", FAILED_OUTCOME, "$4::text", "$5::text")
        "run_at = CASE WHEN cancel_requested THEN run_at ELSE $6::bigint END, "
        "scheduled = NOT cancel_requested AND $6::bigint > $3::bigint, "
        "finished_at = CASE WHEN cancel_requested THEN $3::bigint END, "
        "expires_at = CASE WHEN cancel_requested THEN $3::bigint + retention_ms END, "
        "updated_at = $3::bigint, lease_owner = NULL, lease_expires_at = NULL "
        "WHERE id = $1::uuid AND state = " R
        " AND lease_token = $2::bigint RETURNING " JOB_COLUMNS};
    static constexpr Stmt kCanceled{
        "acceptd_finish_canceled",
        "UPDATE acceptd.jobs SET state = " ACCEPTD_SQL_CANCELED
        ", finished_at = $3::bigint, updated_at = $3::bigint, "
        ATTEMPT_LOG_APPEND("$3::bigint", "'canceled'", "NULL::text", "NULL::text")
        "expires_at = $3::bigint + retention_ms, lease_owner = NULL, lease_expires_at = NULL "
        "WHERE id = $1::uuid AND state = " R
        " AND lease_token = $2::bigint RETURNING " JOB_COLUMNS};
    const Stmt* s = &kFailed;
    Params p;
    p.Uuid(o.id).Int(o.lease_token).Int(o.now);
    switch (o.kind) {
      case Kind::kSucceeded:
        s = &kSucceeded;
        p.Bytes(o.result).Text(o.result_type);
        break;
      case Kind::kFailed:
      case Kind::kRetry: {
        s = o.kind == Kind::kFailed ? &kFailed : &kRetry;
        JobError e = o.error.value_or(JobError{"handler_error", ""});
        p.Text(e.type).Text(e.message);
        if (o.kind == Kind::kRetry) p.Int(o.retry_at);
        break;
      }
      case Kind::kCanceled:
        s = &kCanceled;
        break;
    }
    auto job = OneJob(c_, *s, p);
    if (!job) return std::move(job).error();
    if (!*job) {
      auto current = GetJob(c_, o.id);
      if (!current) return std::move(current).error();
      return sql::StaleLease(*current, o.lease_token);
    }
    if ((*job)->delete_requested && IsTerminal((*job)->state)) {
      if (auto st = DeleteSeq((*job)->seq); !st) return std::move(st).error();
    }
    return std::move(**job);
  }

  Result<CancelOutcome> Cancel(const JobId& id, UnixMillis now) override {
    static constexpr Stmt kCancelQueued{
        "acceptd_cancel_queued",
        "UPDATE acceptd.jobs SET state = " ACCEPTD_SQL_CANCELED
        ", cancel_requested = true, finished_at = $2::bigint, updated_at = $2::bigint, "
        "expires_at = $2::bigint + retention_ms WHERE id = $1::uuid AND state = " Q
        " RETURNING " JOB_COLUMNS};
    Params p;
    p.Uuid(id).Int(now);
    auto job = OneJob(c_, kCancelQueued, p);
    if (!job) return std::move(job).error();
    if (*job) return CancelOutcome{CancelOutcome::Kind::kCanceled, std::move(**job)};
    auto signalled = SignalRunning(id, now, /*and_delete=*/false);
    if (!signalled) return std::move(signalled).error();
    if (*signalled) return CancelOutcome{CancelOutcome::Kind::kSignalled, std::move(**signalled)};
    auto current = GetJob(c_, id);
    if (!current) return std::move(current).error();
    return sql::TerminalConflict(current->state);
  }

  Result<CancelOutcome> Delete(const JobId& id, UnixMillis now) override {
    // Queued or terminal: gone at once. A queued job counts as canceled.
    static constexpr Stmt kDelete{"acceptd_delete",
                                  "DELETE FROM acceptd.jobs WHERE id = $1::uuid AND state <> " R
                                  " RETURNING " JOB_COLUMNS};
    Params p;
    p.Uuid(id);
    auto job = OneJob(c_, kDelete, p);
    if (!job) return std::move(job).error();
    if (*job) return sql::DeletedRowOutcome(std::move(**job), now);
    auto signalled = SignalRunning(id, now, /*and_delete=*/true);
    if (!signalled) return std::move(signalled).error();
    if (*signalled) return CancelOutcome{CancelOutcome::Kind::kSignalled, std::move(**signalled)};
    return Error::NotFound("no such job");
  }

  Status SetProgress(const JobId& id, int64_t token, const Progress& pr, UnixMillis now) override {
    static constexpr Stmt kProgress{
        "acceptd_set_progress",
        "UPDATE acceptd.jobs SET progress_percent = $3::integer, progress_message = $4::text, "
        "updated_at = $5::bigint WHERE id = $1::uuid AND state = " R
        " AND lease_token = $2::bigint"};
    Params p;
    p.Uuid(id).Int(token).Int(std::clamp(pr.percent, 0, 100)).Text(pr.message).Int(now);
    auto r = c_.Run(kProgress.name, kProgress.sql, p);
    if (!r) return std::move(r).error();
    return {};
  }

  Result<LeaseRenewal> ExtendLeases(const std::vector<LeaseRef>& leases, UnixMillis expires,
                                    UnixMillis now) override {
    static constexpr Stmt kExtend{
        "acceptd_extend_leases",
        "UPDATE acceptd.jobs j SET lease_expires_at = $3::bigint "
        "FROM unnest($1::uuid[], $2::bigint[]) AS l(lease_id, lease_tok) "
        "WHERE j.id = l.lease_id AND j.lease_token = l.lease_tok AND j.state = " R
        " AND j.lease_expires_at >= $4::bigint RETURNING j.id, j.cancel_requested"};
    LeaseRenewal renewal;
    if (leases.empty()) return renewal;
    std::string ids = "{", tokens = "{";
    for (size_t i = 0; i < leases.size(); ++i) {
      ids += (i ? "," : "") + leases[i].id.ToHex();
      tokens += (i ? "," : "") + std::to_string(leases[i].lease_token);
    }
    ids += "}";
    tokens += "}";
    Params p;
    p.Raw(std::move(ids)).Raw(std::move(tokens)).Int(expires).Int(now);
    auto r = c_.Run(kExtend.name, kExtend.sql, p);
    if (!r) return std::move(r).error();
    std::unordered_map<JobId, bool, JobIdHash> extended;
    for (int i = 0; i < r->Size(); ++i) extended[r->Uuid(i, 0)] = r->Bool(i, 1);
    for (const LeaseRef& lease : leases) {
      auto it = extended.find(lease.id);
      if (it == extended.end()) {
        renewal.lost.push_back(lease.id);
      } else if (it->second) {
        renewal.cancel_requested.push_back(lease.id);
      }
    }
    return renewal;
  }

  Result<HeartbeatResult> Heartbeat(const LeaseRef& lease, UnixMillis lease_until, UnixMillis now,
                                    const std::optional<Progress>& progress) override {
    static constexpr Stmt kHeartbeat{
        "acceptd_heartbeat",
        "UPDATE acceptd.jobs SET lease_expires_at = CASE WHEN lease_within_timeout AND "
        "timeout_ms > 0 THEN LEAST($3::bigint, attempt_started_at + timeout_ms) "
        "ELSE $3::bigint END, "
        "progress_percent = CASE WHEN $5::boolean THEN $6::integer ELSE progress_percent END, "
        "progress_message = CASE WHEN $5::boolean THEN $7::text ELSE progress_message END, "
        "updated_at = CASE WHEN $5::boolean THEN $4::bigint ELSE updated_at END "
        "WHERE id = $1::uuid AND lease_token = $2::bigint AND state = " R
        " AND lease_expires_at >= $4::bigint RETURNING lease_expires_at, cancel_requested"};
    Params p;
    p.Uuid(lease.id).Int(lease.lease_token).Int(lease_until).Int(now).Bool(progress.has_value());
    p.Int(progress ? progress->percent : 0).Text(progress ? progress->message : std::string());
    auto r = c_.Run(kHeartbeat.name, kHeartbeat.sql, p);
    if (!r) return std::move(r).error();
    if (r->Size() > 0) return HeartbeatResult{r->Int(0, 0), r->Bool(0, 1)};
    return StaleOrGone(lease.id, "heartbeat");
  }

  Result<Job> ReleaseLease(const LeaseRef& lease, UnixMillis now) override {
    static constexpr Stmt kRelease{
        "acceptd_release_lease",
        "UPDATE acceptd.jobs SET state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
        " ELSE " Q
        " END, finished_at = CASE WHEN cancel_requested THEN $3::bigint END, "
        "expires_at = CASE WHEN cancel_requested THEN $3::bigint + retention_ms END, "
        "attempts = attempts - 1, run_at = $3::bigint, scheduled = false, "
        ATTEMPT_LOG_APPEND("$3::bigint", "'released'", "NULL::text", "NULL::text")
        "updated_at = $3::bigint, lease_owner = NULL, lease_expires_at = NULL "
        "WHERE id = $1::uuid AND lease_token = $2::bigint AND state = " R
        " RETURNING " JOB_COLUMNS};
    Params p;
    p.Uuid(lease.id).Int(lease.lease_token).Int(now);
    auto job = OneJob(c_, kRelease, p);
    if (!job) return std::move(job).error();
    if (!*job) return StaleOrGone(lease.id, "release");
    Job j = std::move(**job);
    if (j.delete_requested && IsTerminal(j.state)) {
      if (auto st = DeleteSeq(j.seq); !st) return std::move(st).error();
    }
    return j;
  }

  Result<std::vector<Job>> RescueExpiredLeases(UnixMillis now, int limit) override {
#define RESCUE_OUTCOME                                                          \
  "(CASE WHEN lease_within_timeout AND timeout_ms > 0 AND lease_expires_at >= " \
  "attempt_started_at + timeout_ms THEN 'timeout' ELSE 'lease_expired' END)"
#define RESCUE_MESSAGE                                                                     \
  "(CASE WHEN lease_within_timeout AND timeout_ms > 0 AND lease_expires_at >= "            \
  "attempt_started_at + timeout_ms THEN 'attempt ' || attempts || ' timed out after ' || " \
  "(timeout_ms / 1000.0)::float8 || ' s' "                                                 \
  "ELSE 'the worker running this attempt stopped renewing its lease' END)"
    static constexpr Stmt kRescue{
        "acceptd_rescue",
        "WITH c AS (SELECT seq AS rescue_seq FROM acceptd.jobs WHERE state = " R
        " AND lease_expires_at < $1::bigint LIMIT $2::bigint FOR UPDATE SKIP LOCKED) "
        "UPDATE acceptd.jobs SET "
        "state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
        " WHEN attempts < max_attempts THEN " Q " ELSE " ACCEPTD_SQL_FAILED
        " END, "
        "finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN $1::bigint "
        "END, expires_at = CASE WHEN cancel_requested OR attempts >= max_attempts "
        "  THEN $1::bigint + retention_ms END, "
        // A lease that ran into the attempt's timeout (an external worker's,
        // see Heartbeat) ended because the attempt timed out.
        "error_type = " RESCUE_OUTCOME ", error_message = " RESCUE_MESSAGE ", "
        ATTEMPT_LOG_APPEND("$1::bigint", RESCUE_OUTCOME, RESCUE_OUTCOME, RESCUE_MESSAGE)
        "run_at = $1::bigint, scheduled = false, updated_at = $1::bigint, lease_owner = NULL, "
        "lease_expires_at = NULL FROM c WHERE seq = c.rescue_seq AND state = " R
        " RETURNING " JOB_COLUMNS};
    Params p;
    p.Int(now).Int(limit);
    auto r = c_.Run(kRescue.name, kRescue.sql, p);
    if (!r) return std::move(r).error();
    auto jobs = ReadJobs(*r);
    for (const Job& j : jobs) {
      if (j.delete_requested && IsTerminal(j.state)) {
        if (auto st = DeleteSeq(j.seq); !st) return std::move(st).error();
      }
    }
    return jobs;
  }

  Result<int64_t> ReleaseLeases(const std::string& owner, UnixMillis now) override {
    static constexpr Stmt kReleaseAll{
        "acceptd_release_leases",
        "UPDATE acceptd.jobs SET state = CASE WHEN cancel_requested THEN " ACCEPTD_SQL_CANCELED
        " ELSE " Q
        " END, finished_at = CASE WHEN cancel_requested THEN $2::bigint END, "
        "expires_at = CASE WHEN cancel_requested THEN $2::bigint + retention_ms END, "
        "attempts = attempts - 1, run_at = $2::bigint, scheduled = false, "
        ATTEMPT_LOG_APPEND("$2::bigint", "'released'", "NULL::text", "NULL::text")
        "updated_at = $2::bigint, lease_owner = NULL, lease_expires_at = NULL "
        "WHERE state = " R " AND lease_owner = $1::text RETURNING seq, state, delete_requested"};
    Params p;
    p.Text(owner).Int(now);
    auto r = c_.Run(kReleaseAll.name, kReleaseAll.sql, p);
    if (!r) return std::move(r).error();
    for (int i = 0; i < r->Size(); ++i) {
      auto state = StateFromColumn(r->Int(i, 1));
      if (r->Bool(i, 2) && state && IsTerminal(*state)) {
        if (auto st = DeleteSeq(r->Int(i, 0)); !st) return std::move(st).error();
      }
    }
    return static_cast<int64_t>(r->Size());
  }

  Result<std::vector<std::string>> PromoteDueJobs(UnixMillis now, int limit) override {
    static constexpr Stmt kPromote{
        "acceptd_promote",
        "WITH c AS (SELECT seq AS due_seq FROM acceptd.jobs WHERE state = " Q
        " AND scheduled AND run_at <= $1::bigint ORDER BY run_at LIMIT $2::bigint "
        "FOR UPDATE SKIP LOCKED) "
        "UPDATE acceptd.jobs SET scheduled = false FROM c WHERE seq = c.due_seq AND state = " Q
        " RETURNING queue"};
    Params p;
    p.Int(now).Int(limit);
    auto r = c_.Run(kPromote.name, kPromote.sql, p);
    if (!r) return std::move(r).error();
    std::vector<std::string> queues;
    for (int i = 0; i < r->Size(); ++i) {
      std::string q = r->Bytes(i, 0);
      if (std::find(queues.begin(), queues.end(), q) == queues.end()) queues.push_back(q);
    }
    return queues;
  }

  Result<std::vector<QueueValue>> PurgeExpired(UnixMillis now, int limit,
                                               Millis tombstone_ttl) override {
    static constexpr Stmt kOldTombstones{"acceptd_purge_tombstones",
                                         "DELETE FROM acceptd.tombstones WHERE expires_at <= $1"};
    static constexpr Stmt kPurge{
        "acceptd_purge",
        "WITH d AS (DELETE FROM acceptd.jobs WHERE seq IN (SELECT seq FROM acceptd.jobs "
        "WHERE expires_at <= $1::bigint AND callback_next_at IS NULL LIMIT $2::bigint "
        "FOR UPDATE SKIP LOCKED) RETURNING id, queue), "
        "t AS (INSERT INTO acceptd.tombstones (id, expires_at) "
        "SELECT id, $1::bigint + $3::bigint FROM d WHERE $3::bigint > 0 "
        "ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at) "
        "SELECT queue, count(*) FROM d GROUP BY queue"};
    // Housekeeping of the count rows, by one node at a time (see pg_schema.cc).
    static constexpr Stmt kCompact{"acceptd_compact_counts",
                                   "SELECT acceptd.compact_counts() FROM (SELECT 1) x "
                                   "WHERE pg_try_advisory_xact_lock($1::int, 1)"};
    Params old;
    old.Int(now);
    if (auto r = c_.Run(kOldTombstones.name, kOldTombstones.sql, old); !r) {
      return std::move(r).error();
    }
    Params p;
    p.Int(now).Int(limit).Int(tombstone_ttl);
    auto r = c_.Run(kPurge.name, kPurge.sql, p);
    if (!r) return std::move(r).error();
    Params lock;
    lock.Int(pg::kLockClassMigration);
    if (auto cr = c_.Run(kCompact.name, kCompact.sql, lock); !cr) return std::move(cr).error();
    std::vector<QueueValue> purged;
    for (int i = 0; i < r->Size(); ++i) purged.push_back(QueueValue{r->Bytes(i, 0), r->Int(i, 1)});
    return purged;
  }

  Result<std::vector<JobId>> DeleteFinished(const std::string& queue, std::optional<JobState> state,
                                            int limit) override {
    static constexpr Stmt kDeleteFinished{
        "acceptd_delete_finished",
        "DELETE FROM acceptd.jobs WHERE seq IN (SELECT seq FROM acceptd.jobs WHERE queue = "
        "$1::text "
        "AND state IN " ACCEPTD_SQL_TERMINAL
        " AND ($2::integer IS NULL OR state = $2::integer) AND callback_next_at IS NULL "
        "LIMIT $3::bigint FOR UPDATE SKIP LOCKED) RETURNING id"};
    Params p;
    p.Text(queue);
    if (state) {
      p.Int(StateColumn(*state));
    } else {
      p.Null();
    }
    p.Int(limit);
    auto r = c_.Run(kDeleteFinished.name, kDeleteFinished.sql, p);
    if (!r) return std::move(r).error();
    std::vector<JobId> ids;
    for (int i = 0; i < r->Size(); ++i) ids.push_back(r->Uuid(i, 0));
    return ids;
  }

  Result<Job> RetryJob(const JobId& id, UnixMillis now) override {
    static constexpr Stmt kRetryJob{
        "acceptd_retry_job",
        "UPDATE acceptd.jobs SET state = " Q
        ", scheduled = false, run_at = $2::bigint, updated_at = $2::bigint, finished_at = NULL, "
        "expires_at = NULL, cancel_requested = false, delete_requested = false, "
        "max_attempts = GREATEST(max_attempts, attempts + 1), progress_percent = NULL, "
        "progress_message = NULL, lease_owner = NULL, lease_expires_at = NULL, "
        "callback_attempts = 0, callback_status = NULL, callback_error = NULL, "
        "callback_delivered_at = NULL, callback_next_at = NULL "
        "WHERE id = $1::uuid AND state IN (" ACCEPTD_SQL_FAILED ", " ACCEPTD_SQL_CANCELED
        ") RETURNING " JOB_COLUMNS};
    Params p;
    p.Uuid(id).Int(now);
    auto job = OneJob(c_, kRetryJob, p);
    if (!job) return std::move(job).error();
    if (*job) return std::move(**job);
    auto current = GetJob(c_, id);
    if (!current) return std::move(current).error();
    return sql::NotRetryable(current->state);
  }

  Result<Job> FireSchedule(const ScheduleFire& f) override {
    // A tick another node fired and committed: refused before anything is
    // written (the common case with several nodes).
    static constexpr Stmt kLook{
        "acceptd_schedule_look",
        "SELECT EXISTS (SELECT 1 FROM acceptd.schedule_fires WHERE schedule = $1::text AND "
        "fire_at = $2::bigint), (SELECT last_fire_at FROM acceptd.schedules WHERE name = "
        "$1::text)"};
    Params look;
    look.Text(f.schedule).Int(f.tick);
    auto seen = c_.Run(kLook.name, kLook.sql, look);
    if (!seen) return std::move(seen).error();
    if (seen->Bool(0, 0)) {
      return Error::Conflict(fmt::format("schedule '{}': tick {} was fired already", f.schedule,
                                         FormatRfc3339(f.tick)));
    }
    if (auto last = seen->OptInt(0, 1); last && f.tick <= *last - kScheduleFireRetention) {
      return Error::Conflict(fmt::format("schedule '{}': tick {} is too old to fire", f.schedule,
                                         FormatRfc3339(f.tick)));
    }
    // The job first: its insert takes the queue's depth lock, and the
    // engine orders a fire among its queue's inserts (the fire record's lock
    // after the queue's, as everywhere), so nodes cannot deadlock on them.
    auto job = Insert(f.job);
    if (!job) return job;
    if (job->id != f.job.id) return Error::Internal("postgres: a schedule's job was a replay");
    // The fire record decides: a node racing us on the same tick waits here
    // for our commit and then inserts nothing (or the other way round).
    static constexpr Stmt kFire{
        "acceptd_schedule_fire",
        "WITH ins AS (INSERT INTO acceptd.schedule_fires (schedule, fire_at, job_id) "
        "VALUES ($1::text, $2::bigint, $3::uuid) ON CONFLICT DO NOTHING RETURNING 1), "
        "st AS (INSERT INTO acceptd.schedules (name, last_fire_at, last_job_id) "
        "SELECT $1::text, $2::bigint, $3::uuid WHERE EXISTS (SELECT 1 FROM ins) "
        "ON CONFLICT (name) DO UPDATE SET last_fire_at = excluded.last_fire_at, "
        "last_job_id = excluded.last_job_id "
        "WHERE excluded.last_fire_at > acceptd.schedules.last_fire_at), "
        "del AS (DELETE FROM acceptd.schedule_fires WHERE schedule = $1::text AND "
        "fire_at < $4::bigint AND EXISTS (SELECT 1 FROM ins)) "
        "SELECT EXISTS (SELECT 1 FROM ins)"};
    Params p;
    p.Text(f.schedule).Int(f.tick).Uuid(job->id).Int(f.tick - kScheduleFireRetention);
    auto fired = c_.Run(kFire.name, kFire.sql, p);
    if (!fired) return std::move(fired).error();
    if (fired->Bool(0, 0)) return job;
    // Lost the race: take the job back (it was never visible to anyone).
    static constexpr Stmt kUndo{"acceptd_schedule_undo",
                                "DELETE FROM acceptd.jobs WHERE id = $1::uuid"};
    Params undo;
    undo.Uuid(job->id);
    if (auto r = c_.Run(kUndo.name, kUndo.sql, undo); !r) return std::move(r).error();
    return Error::Conflict(
        fmt::format("schedule '{}': tick {} was fired already", f.schedule, FormatRfc3339(f.tick)));
  }

  Result<bool> SetQueuePaused(const std::string& queue, bool paused, UnixMillis now) override {
    // The row is the pause: its insert or delete is the one conditional
    // write, so two nodes pausing at once both succeed and agree.
    static constexpr Stmt kPause{
        "acceptd_pause_queue",
        "WITH prev AS (SELECT 1 FROM acceptd.paused_queues WHERE queue = $1::text), "
        "ins AS (INSERT INTO acceptd.paused_queues (queue, paused_at) "
        "SELECT $1::text, $2::bigint WHERE $3::boolean ON CONFLICT (queue) DO NOTHING), "
        "del AS (DELETE FROM acceptd.paused_queues WHERE queue = $1::text AND NOT $3::boolean) "
        "SELECT EXISTS (SELECT 1 FROM prev)"};
    Params p;
    p.Text(queue).Int(now).Bool(paused);
    auto r = c_.Run(kPause.name, kPause.sql, p);
    if (!r) return std::move(r).error();
    return r->Bool(0, 0);
  }

  Status TouchNode(const std::string& name, UnixMillis started_at, UnixMillis now,
                   UnixMillis forget_before) override {
    static constexpr Stmt kTouch{
        "acceptd_touch_node",
        "WITH t AS (INSERT INTO acceptd.nodes (name, started_at, seen_at) "
        "VALUES ($1::text, $2::bigint, $3::bigint) ON CONFLICT (name) DO UPDATE SET "
        "started_at = excluded.started_at, seen_at = GREATEST(acceptd.nodes.seen_at, "
        "excluded.seen_at)) "
        "DELETE FROM acceptd.nodes WHERE seen_at < $4::bigint AND name <> $1::text"};
    Params p;
    p.Text(name).Int(started_at).Int(now).Int(forget_before);
    auto r = c_.Run(kTouch.name, kTouch.sql, p);
    if (!r) return std::move(r).error();
    return {};
  }

  Result<std::vector<Job>> ClaimCallbacks(UnixMillis now, int limit,
                                          UnixMillis lease_until) override {
    static constexpr Stmt kClaimCallbacks{
        "acceptd_claim_callbacks",
        "WITH c AS (SELECT seq AS cb_seq, callback_next_at AS due_at FROM acceptd.jobs "
        "WHERE callback_next_at <= $1::bigint ORDER BY callback_next_at LIMIT $2::bigint "
        "FOR UPDATE SKIP LOCKED) "
        "UPDATE acceptd.jobs SET callback_next_at = $3::bigint FROM c WHERE seq = c.cb_seq "
        "RETURNING " JOB_COLUMNS ", c.due_at"};
    Params p;
    p.Int(now).Int(limit).Int(lease_until);
    auto r = c_.Run(kClaimCallbacks.name, kClaimCallbacks.sql, p);
    if (!r) return std::move(r).error();
    std::vector<std::pair<int64_t, Job>> due;
    for (int i = 0; i < r->Size(); ++i) due.emplace_back(r->Int(i, kFirstExtraCol), ReadJob(*r, i));
    std::sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      return a.second.seq < b.second.seq;
    });
    std::vector<Job> jobs;
    for (auto& [at, job] : due) jobs.push_back(std::move(job));
    return jobs;
  }

  Result<Job> RecordCallbackAttempt(const CallbackAttempt& a) override {
    static constexpr Stmt kRecord{
        "acceptd_record_callback",
        "UPDATE acceptd.jobs SET callback_attempts = callback_attempts + 1, "
        "callback_status = $2::integer, callback_error = $3::text, "
        "callback_delivered_at = $4::bigint, callback_next_at = $5::bigint "
        "WHERE id = $1::uuid AND callback_next_at = $6::bigint RETURNING " JOB_COLUMNS};
    Params p;
    p.Uuid(a.id);
    if (a.http_status) {
      p.Int(*a.http_status);
    } else {
      p.Null();
    }
    p.Text(a.error);
    if (a.delivered) {
      p.Int(a.now);
    } else {
      p.Null();
    }
    if (!a.delivered && a.next_attempt) {
      p.Int(*a.next_attempt);
    } else {
      p.Null();
    }
    p.Int(a.lease);
    auto job = OneJob(c_, kRecord, p);
    if (!job) return std::move(job).error();
    if (!*job) {
      auto current = GetJob(c_, a.id);
      if (!current) return std::move(current).error();
      return Error::StaleLease(
          fmt::format("the callback of job {} is no longer leased at {}", a.id.ToHex(), a.lease));
    }
    return std::move(**job);
  }

  Status Commit() override {
    auto r = c_.Exec("COMMIT");
    done_ = true;
    if (!r) return std::move(r).error();
    // COMMIT of a transaction in which a statement failed answers ROLLBACK.
    if (r->CommandStatus() != "COMMIT") {
      return Error::Internal("postgres: the transaction was rolled back (" + r->CommandStatus() +
                             "), not committed");
    }
    return {};
  }

 private:
  Result<std::optional<Job>> SignalRunning(const JobId& id, UnixMillis now, bool and_delete) {
    static constexpr Stmt kSignal{
        "acceptd_signal_cancel",
        "UPDATE acceptd.jobs SET cancel_requested = true, "
        "delete_requested = (delete_requested OR $3::boolean), updated_at = $2::bigint "
        "WHERE id = $1::uuid AND state = " R " RETURNING " JOB_COLUMNS};
    Params p;
    p.Uuid(id).Int(now).Bool(and_delete);
    return OneJob(c_, kSignal, p);
  }

  Status DeleteSeq(int64_t seq) {
    static constexpr Stmt kDeleteSeq{"acceptd_delete_seq",
                                     "DELETE FROM acceptd.jobs WHERE seq = $1::bigint"};
    Params p;
    p.Int(seq);
    if (auto r = c_.Run(kDeleteSeq.name, kDeleteSeq.sql, p); !r) return std::move(r).error();
    return {};
  }

  // Why a lease-fenced statement changed nothing: kNotFound if the job is
  // gone, else kStaleLease.
  Error StaleOrGone(const JobId& id, std::string_view what) {
    auto current = GetJob(c_, id);
    if (!current) return std::move(current).error();
    return Error::StaleLease(
        fmt::format("{} of job {}: it is {} with lease token {}{}", what, id.ToHex(),
                    ToString(current->state), current->lease_token,
                    current->state == JobState::kRunning ? " (or that lease expired)" : ""));
  }

  PostgresStore* store_;
  std::unique_lock<std::mutex> lock_;
  pg::Pool::Lease lease_;
  Conn& c_;
  bool done_ = false;
};

PostgresStore::PostgresStore(std::vector<std::string> keywords, std::vector<std::string> values,
                             std::string node, const StoreOptions& options)
    : keywords_(std::move(keywords)),
      values_(std::move(values)),
      node_(std::move(node)),
      options_(options) {
  pg::Pool::Options po;
  po.keywords = keywords_;
  po.values = values_;
  po.size = std::max(1, options.pool_size);
  po.on_connect = [node = node_, unsafe = options.unsafe_durability](Conn& c) {
    return SetUpSession(c, node, unsafe);
  };
  pool_ = std::make_unique<pg::Pool>(std::move(po));
}

PostgresStore::~PostgresStore() = default;

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& url,
                                                           const StoreOptions& options) {
  const std::string node = options.node_name.empty() ? GeneratedNodeName() : options.node_name;
  std::vector<std::string> keywords, values;
  PostgresConnectParams(url, node, &keywords, &values);
  std::unique_ptr<PostgresStore> store(new PostgresStore(keywords, values, node, options));
  {
    auto conn = store->pool_->Acquire();
    if (!conn) return std::move(conn).error();
    auto version = pg::Migrate(**conn, options.migrate);
    if (!version) return std::move(version).error();
    // Durability is checked per connection (SetUpSession); say once that it is off.
    if (options.unsafe_durability) {
      auto r = (*conn)->Exec(
          "SELECT current_setting('fsync') = 'off' OR "
          "current_setting('synchronous_commit') = 'off'");
      if (r && r->Size() && r->Bytes(0, 0) == "t") {
        spdlog::warn(
            "postgres: fsync or synchronous_commit is off and --unsafe-durability is set: a crash "
            "of the database server can lose jobs that were acknowledged with 202");
      }
    }
  }
  return store;
}

Result<int> PostgresStore::Migrate(const std::string& url) {
  std::vector<std::string> keywords, values;
  PostgresConnectParams(url, "migrate", &keywords, &values);
  auto conn = Conn::Connect(keywords, values);
  if (!conn) return std::move(conn).error();
  return pg::Migrate(**conn, /*apply=*/true);
}

void PostgresStore::SetTransitionObserver(TransitionObserver observer) {
  std::lock_guard lock(write_mu_);
  transition_observer_ = std::move(observer);
  observing_ = static_cast<bool>(transition_observer_);
}

void PostgresStore::OnNotice(const PGresult* r) {
  const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  if (!msg) return;
  int from = 0, to = 0;
  if (std::sscanf(msg, "acceptd_transition %d %d", &from, &to) != 2) {
    spdlog::debug("postgres notice: {}", msg);
    return;
  }
  if (!transition_observer_) return;
  StateTransition t;
  auto to_state = StateFromColumn(to);
  if (!to_state) return;
  t.to = *to_state;
  if (from >= 0) t.from = StateFromColumn(from);
  t.legal = t.from ? IsLegalTransition(*t.from, t.to) : IsLegalInitialState(t.to);
  transition_observer_(t);
}

template <typename F>
auto PostgresStore::WithConn(F&& f) -> decltype(f(std::declval<pg::Conn&>())) {
  for (int attempt = 0;; ++attempt) {
    auto conn = pool_->Acquire();
    if (!conn) return std::move(conn).error();
    const bool fresh = conn->fresh();
    auto r = f(**conn);
    if (r.ok() || r.error().code != ErrorCode::kUnavailable || fresh || (*conn)->Healthy() ||
        attempt > 0) {
      return r;
    }
    // A pooled connection that died while idle; nothing was done through it.
  }
}

Result<std::unique_ptr<WriteTx>> PostgresStore::BeginWrite() {
  std::unique_lock lock(write_mu_);
  const std::string begin =
      observing_ ? "BEGIN; SET LOCAL acceptd.observe = 'on'" : std::string("BEGIN");
  for (int attempt = 0;; ++attempt) {
    auto conn = pool_->Acquire();
    if (!conn) return std::move(conn).error();
    auto r = (*conn)->Exec(begin);
    if (r) {
      return std::unique_ptr<WriteTx>(new Tx(this, std::move(lock), std::move(*conn)));
    }
    if (r.error().code != ErrorCode::kUnavailable || conn->fresh() || (*conn)->Healthy() ||
        attempt > 0) {
      return std::move(r).error();
    }
  }
}

Result<Job> PostgresStore::Get(const JobId& id) {
  return WithConn([&](Conn& c) { return GetJob(c, id); });
}

namespace {
// PostgreSQL's array literal of `ids`: "{hex,hex,...}" (uuid accepts hex).
std::string UuidArray(const std::vector<JobId>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += ids[i].ToHex();
  }
  out += '}';
  return out;
}
}  // namespace

std::vector<Result<Job>> PostgresStore::GetMany(const std::vector<JobId>& ids) {
  // One statement for the rows, and a second only if some id has none (the
  // tombstones tell kGone from kNotFound): a batch of status polls of live
  // jobs costs one round trip and one executor start-up, not one per job.
  static constexpr Stmt kGetJobs{
      "acceptd_get_jobs", "SELECT " JOB_COLUMNS " FROM acceptd.jobs WHERE id = ANY($1::uuid[])"};
  static constexpr Stmt kTombstones{"acceptd_tombstones",
                                    "SELECT id FROM acceptd.tombstones WHERE id = ANY($1::uuid[])"};
  if (ids.empty()) return {};
  std::unordered_map<JobId, Job, JobIdHash> found;
  std::unordered_set<JobId, JobIdHash> gone;
  auto read = WithConn([&](Conn& c) -> Status {
    found.clear();
    gone.clear();
    Params p;
    p.Raw(UuidArray(ids));
    auto r = c.Run(kGetJobs.name, kGetJobs.sql, p);
    if (!r) return std::move(r).error();
    for (int i = 0; i < r->Size(); ++i) {
      Job j = ReadJob(*r, i);
      JobId id = j.id;
      found.emplace(id, std::move(j));
    }
    std::vector<JobId> missing;
    for (const JobId& id : ids) {
      if (!found.contains(id)) missing.push_back(id);
    }
    if (missing.empty()) return {};
    Params q;
    q.Raw(UuidArray(missing));
    auto t = c.Run(kTombstones.name, kTombstones.sql, q);
    if (!t) return std::move(t).error();
    for (int i = 0; i < t->Size(); ++i) gone.insert(t->Uuid(i, 0));
    return {};
  });
  std::vector<Result<Job>> jobs;
  jobs.reserve(ids.size());
  for (const JobId& id : ids) {
    if (!read.ok()) {
      jobs.push_back(read.error());
    } else if (auto it = found.find(id); it != found.end()) {
      jobs.push_back(it->second);
    } else if (gone.contains(id)) {
      jobs.push_back(JobExpired());
    } else {
      jobs.push_back(Error::NotFound("no such job"));
    }
  }
  return jobs;
}

Result<StoredResult> PostgresStore::GetResult(const JobId& id) {
  static constexpr Stmt kGetResult{
      "acceptd_get_result",
      "SELECT state, result IS NOT NULL, result, result_type, expires_at FROM acceptd.jobs "
      "WHERE id = $1"};
  return WithConn([&](Conn& c) -> Result<StoredResult> {
    Params p;
    p.Uuid(id);
    auto r = c.Run(kGetResult.name, kGetResult.sql, p);
    if (!r) return std::move(r).error();
    if (r->Size() == 0) return Missing(c, id);
    StoredResult out;
    out.state = StateFromColumn(r->Int(0, 0)).value_or(JobState::kFailed);
    out.has_result = r->Bool(0, 1);
    out.body = r->Bytes(0, 2);
    out.content_type = r->Bytes(0, 3);
    out.expires_at = r->OptInt(0, 4);
    return out;
  });
}

Result<StoredPayload> PostgresStore::GetPayload(const JobId& id) {
  static constexpr Stmt kGetPayload{
      "acceptd_get_payload",
      "SELECT payload, content_type, expires_at FROM acceptd.jobs WHERE id = $1"};
  return WithConn([&](Conn& c) -> Result<StoredPayload> {
    Params p;
    p.Uuid(id);
    auto r = c.Run(kGetPayload.name, kGetPayload.sql, p);
    if (!r) return std::move(r).error();
    if (r->Size() == 0) return Missing(c, id);
    return StoredPayload{r->Bytes(0, 0), r->Bytes(0, 1), r->OptInt(0, 2)};
  });
}

namespace {

// A search's filters as one boolean over a row of the window `w` (all of a
// job's columns): AND stops at the first false operand, cheap tests first,
// and a filter not given costs one NULL test.
#define SEARCH_MATCH                                                                            \
  "(($4::text IS NULL OR queue = $4::text) AND ($5::smallint IS NULL OR state = $5::smallint) " \
  "AND ($6::text IS NULL OR tenant = $6::text) "                                                \
  "AND ($7::bigint IS NULL OR created_at >= $7::bigint) "                                       \
  "AND ($8::bigint IS NULL OR created_at < $8::bigint) "                                        \
  "AND ($9::uuid IS NULL OR (id >= $9::uuid AND id <= $10::uuid)) "                             \
  "AND ($11::bytea IS NULL OR position($11::bytea IN payload) > 0 "                             \
  "  OR COALESCE(position($11::bytea IN result) > 0, false)) "                                  \
  "AND ($12::text[] IS NULL OR acceptd.json_field_equals(payload, $12::text[], $13::text)))"

// The window: the next $2 jobs in the list's order from the cursor $1 (a
// backward or forward walk of the primary key, stopped by the outer LIMIT
// as soon as enough rows are out), numbered, and one more to tell whether
// any is left. Out come the matches, and the window's last two rows whatever
// they are (n >= $2): the one where the scan stopped (the next page starts
// after it) and the one past it (there is a next page). row_number() keeps
// the filter from being pushed into the window.
#define SEARCH_SQL(cmp, dir)                                \
  "SELECT " JOB_COLUMNS ", w.n, " SEARCH_MATCH              \
  " FROM (SELECT j.*, row_number() OVER (ORDER BY seq " dir \
  ") AS n FROM acceptd.jobs j "                             \
  "WHERE seq " cmp " $1::bigint ORDER BY seq " dir          \
  " LIMIT $2::bigint + 1) w WHERE w.n >= "                  \
  "$2::bigint OR " SEARCH_MATCH " ORDER BY seq " dir " LIMIT $3::bigint + 1"
// The same over the jobs an id prefix names (few: see ListParams).
#define SEARCH_ID_SQL(cmp, dir)                                              \
  "SELECT " JOB_COLUMNS ", 0::bigint, " SEARCH_MATCH                         \
  " FROM acceptd.jobs WHERE id >= $9::uuid AND id <= $10::uuid AND seq " cmp \
  " $1::bigint AND $2::bigint > 0 AND " SEARCH_MATCH " ORDER BY seq " dir " LIMIT $3::bigint"

constexpr Stmt kSearchNewest{"acceptd_search_newest", SEARCH_SQL("<", "DESC")};
constexpr Stmt kSearchOldest{"acceptd_search_oldest", SEARCH_SQL(">", "ASC")};
constexpr Stmt kSearchIdNewest{"acceptd_search_id_newest", SEARCH_ID_SQL("<", "DESC")};
constexpr Stmt kSearchIdOldest{"acceptd_search_id_oldest", SEARCH_ID_SQL(">", "ASC")};
constexpr Stmt kCountIdRange{"acceptd_count_id_range",
                             "SELECT count(*) FROM (SELECT 1 FROM acceptd.jobs WHERE id >= "
                             "$1::uuid AND id <= $2::uuid LIMIT $3::bigint) r"};

Result<JobPage> Search(Conn& c, const ListParams& lp) {
  const bool newest = lp.order == ListOrder::kNewest;
  std::optional<JobId> lo, hi;
  bool by_id = false;
  if (lp.id_prefix) {
    lo = JobId::FromBytes(sql::IdPrefixLow(*lp.id_prefix).data());
    hi = JobId::FromBytes(sql::IdPrefixHigh(*lp.id_prefix).data());
    // Few jobs carry the prefix: read just those, through the id index.
    Params q;
    q.Uuid(*lo).Uuid(*hi).Int(lp.max_examined + 1);
    auto r = c.Run(kCountIdRange.name, kCountIdRange.sql, q);
    if (!r) return std::move(r).error();
    by_id = r->Int(0, 0) <= lp.max_examined;
  }
  Params p;
  if (newest) {
    p.Int(lp.before_seq.value_or(std::numeric_limits<int64_t>::max()));
  } else {
    p.Int(lp.after_seq.value_or(std::numeric_limits<int64_t>::min()));
  }
  p.Int(lp.max_examined).Int(lp.limit + 1);
  auto opt_text = [&p](const std::optional<std::string>& v) {
    if (v) {
      p.Text(*v);
    } else {
      p.Null();
    }
  };
  auto opt_int = [&p](std::optional<int64_t> v) {
    if (v) {
      p.Int(*v);
    } else {
      p.Null();
    }
  };
  opt_text(lp.queue);
  opt_int(lp.state ? std::optional<int64_t>(StateColumn(*lp.state)) : std::nullopt);
  opt_text(lp.tenant);
  opt_int(lp.created_after);
  opt_int(lp.created_before);
  if (lo) {
    p.Uuid(*lo).Uuid(*hi);
  } else {
    p.Null().Null();
  }
  if (lp.text) {
    p.Bytes(*lp.text);
  } else {
    p.Null();
  }
  if (lp.field) {
    pg::ArrayParam path(pg::ArrayParam::kText);
    for (const std::string& seg : lp.field->path) path.Text(seg);
    p.Array(path).Text(lp.field->value);
  } else {
    p.Null().Null();
  }
  const Stmt& s = by_id ? (newest ? kSearchIdNewest : kSearchIdOldest)
                        : (newest ? kSearchNewest : kSearchOldest);
  auto r = c.Run(s.name, s.sql, p);
  if (!r) return std::move(r).error();
  JobPage page;
  std::optional<int64_t> stopped_at;  // the seq of the last row the page may examine
  for (int i = 0; i < r->Size(); ++i) {
    const int64_t n = r->Int(i, kFirstExtraCol);
    if (!by_id && n > lp.max_examined) {
      // A row past the bound: the next page goes on after the last examined.
      page.next_cursor = stopped_at;
      page.scan_limited = stopped_at.has_value();
      return page;
    }
    if (r->Bool(i, kFirstExtraCol + 1)) {
      if (static_cast<int>(page.jobs.size()) == lp.limit) {
        page.next_cursor = page.jobs.back().seq;
        return page;
      }
      page.jobs.push_back(ReadJob(*r, i));
    }
    if (!by_id && n == lp.max_examined) stopped_at = r->Int(i, 0);
  }
  return page;
}

}  // namespace

Result<JobPage> PostgresStore::List(const ListParams& lp) {
  if (lp.IsSearch()) {
    if (auto st = sql::CheckListParams(lp); !st) return std::move(st).error();
    return WithConn([&](Conn& c) { return Search(c, lp); });
  }
  static constexpr Stmt kListOldest{
      "acceptd_list_oldest",
      "SELECT " JOB_COLUMNS
      " FROM acceptd.jobs WHERE ($1::text IS NULL OR queue = $1::text) "
      "AND ($2::smallint IS NULL OR state = $2::smallint) "
      "AND ($3::bigint IS NULL OR seq > $3::bigint) "
      "AND ($5::text IS NULL OR tenant = $5::text) ORDER BY seq LIMIT $4::bigint"};
  static constexpr Stmt kList{
      "acceptd_list",
      "SELECT " JOB_COLUMNS
      " FROM acceptd.jobs WHERE ($1::text IS NULL OR queue = $1::text) "
      "AND ($2::smallint IS NULL OR state = $2::smallint) "
      "AND ($3::bigint IS NULL OR seq < $3::bigint) "
      "AND ($5::text IS NULL OR tenant = $5::text) ORDER BY seq DESC LIMIT $4::bigint"};
  return WithConn([&](Conn& c) -> Result<JobPage> {
    Params p;
    if (lp.queue) {
      p.Text(*lp.queue);
    } else {
      p.Null();
    }
    if (lp.state) {
      p.Int(StateColumn(*lp.state));
    } else {
      p.Null();
    }
    const bool newest = lp.order == ListOrder::kNewest;
    if (const auto cursor = newest ? lp.before_seq : lp.after_seq) {
      p.Int(*cursor);
    } else {
      p.Null();
    }
    p.Int(lp.limit + 1);
    if (lp.tenant) {
      p.Text(*lp.tenant);
    } else {
      p.Null();
    }
    const Stmt& s = newest ? kList : kListOldest;
    auto r = c.Run(s.name, s.sql, p);
    if (!r) return std::move(r).error();
    JobPage page;
    page.jobs = ReadJobs(*r);
    if (static_cast<int>(page.jobs.size()) > lp.limit) {
      page.jobs.resize(static_cast<size_t>(std::max(0, lp.limit)));
      if (!page.jobs.empty()) page.next_cursor = page.jobs.back().seq;
    }
    return page;
  });
}

Result<AttemptHistory> PostgresStore::GetAttempts(const JobId& id) {
  static constexpr Stmt kGetAttempts{
      "acceptd_get_attempts",
      "SELECT " JOB_COLUMNS ", attempt_log, attempt_log_total FROM acceptd.jobs WHERE id = $1"};
  return WithConn([&](Conn& c) -> Result<AttemptHistory> {
    Params p;
    p.Uuid(id);
    auto r = c.Run(kGetAttempts.name, kGetAttempts.sql, p);
    if (!r) return std::move(r).error();
    if (r->Size() == 0) return Missing(c, id);
    return sql::BuildAttemptHistory(ReadJob(*r, 0), r->Bytes(0, kFirstExtraCol),
                                    r->Int(0, kFirstExtraCol + 1));
  });
}

Result<std::vector<QueueThroughput>> PostgresStore::Throughput(UnixMillis since, Millis step,
                                                               int buckets) {
  // A range of jobs_finished (covering): the window's jobs only.
  static constexpr Stmt kThroughput{
      "acceptd_throughput",
      "SELECT queue, state, (finished_at - $1::bigint) / $2::bigint AS b, count(*) "
      "FROM acceptd.jobs WHERE finished_at >= $1::bigint AND finished_at < $3::bigint "
      "AND state IN " ACCEPTD_SQL_TERMINAL " GROUP BY queue, state, b"};
  if (step <= 0 || buckets <= 0) return std::vector<QueueThroughput>{};
  return WithConn([&](Conn& c) -> Result<std::vector<QueueThroughput>> {
    Params p;
    p.Int(since).Int(step).Int(since + step * buckets);
    auto r = c.Run(kThroughput.name, kThroughput.sql, p);
    if (!r) return std::move(r).error();
    std::vector<QueueThroughput> out;
    for (int i = 0; i < r->Size(); ++i) {
      auto state = StateFromColumn(r->Int(i, 1));
      if (!state) continue;
      sql::AddThroughput(out, r->Bytes(i, 0), *state, r->Int(i, 2), r->Int(i, 3), buckets);
    }
    return out;
  });
}

Result<std::vector<QueueCounts>> PostgresStore::Counts() {
  static constexpr Stmt kCounts{
      "acceptd_counts",
      "SELECT queue, state, sum(n)::bigint FROM acceptd.queue_counts GROUP BY queue, state "
      "ORDER BY queue, state"};
  return WithConn([&](Conn& c) -> Result<std::vector<QueueCounts>> {
    auto r = c.Run(kCounts.name, kCounts.sql, Params());
    if (!r) return std::move(r).error();
    std::vector<QueueCounts> out;
    for (int i = 0; i < r->Size(); ++i) {
      std::string queue = r->Bytes(i, 0);
      if (out.empty() || out.back().queue != queue) out.push_back(QueueCounts{queue, {}});
      if (auto state = StateFromColumn(r->Int(i, 1))) {
        out.back().counts[static_cast<int>(*state)] = r->Int(i, 2);
      }
    }
    return out;
  });
}

Result<std::vector<QueueValue>> PostgresStore::OldestReady() {
  // The claim index holds exactly the ready jobs: an index-only scan.
  static constexpr Stmt kOldest{"acceptd_oldest_ready",
                                "SELECT queue, min(run_at) FROM acceptd.jobs WHERE state = " Q
                                " AND NOT scheduled GROUP BY queue"};
  return WithConn([&](Conn& c) -> Result<std::vector<QueueValue>> {
    auto r = c.Run(kOldest.name, kOldest.sql, Params());
    if (!r) return std::move(r).error();
    std::vector<QueueValue> out;
    for (int i = 0; i < r->Size(); ++i) out.push_back(QueueValue{r->Bytes(i, 0), r->Int(i, 1)});
    return out;
  });
}

Result<std::vector<ScheduleState>> PostgresStore::ScheduleStates() {
  static constexpr Stmt kStates{"acceptd_schedule_states",
                                "SELECT name, last_fire_at, last_job_id FROM acceptd.schedules"};
  return WithConn([&](Conn& c) -> Result<std::vector<ScheduleState>> {
    auto r = c.Run(kStates.name, kStates.sql, Params());
    if (!r) return std::move(r).error();
    std::vector<ScheduleState> out;
    for (int i = 0; i < r->Size(); ++i) {
      out.push_back(ScheduleState{r->Bytes(i, 0), r->Int(i, 1), r->Uuid(i, 2)});
    }
    return out;
  });
}

Result<std::vector<std::string>> PostgresStore::PausedQueues() {
  static constexpr Stmt kPaused{"acceptd_paused_queues", "SELECT queue FROM acceptd.paused_queues"};
  return WithConn([&](Conn& c) -> Result<std::vector<std::string>> {
    auto r = c.Run(kPaused.name, kPaused.sql, Params());
    if (!r) return std::move(r).error();
    std::vector<std::string> out;
    for (int i = 0; i < r->Size(); ++i) out.push_back(r->Bytes(i, 0));
    return out;
  });
}

Result<NodeList> PostgresStore::Nodes() {
  static constexpr Stmt kNodes{"acceptd_nodes",
                               "SELECT name, started_at, seen_at FROM acceptd.nodes ORDER BY name"};
  // The running jobs' partial index is keyed by lease owner.
  static constexpr Stmt kOwners{"acceptd_running_owners",
                                "SELECT lease_owner, count(*) FROM acceptd.jobs WHERE state = " R
                                " GROUP BY lease_owner ORDER BY lease_owner"};
  return WithConn([&](Conn& c) -> Result<NodeList> {
    NodeList out;
    auto n = c.Run(kNodes.name, kNodes.sql, Params());
    if (!n) return std::move(n).error();
    for (int i = 0; i < n->Size(); ++i) {
      out.nodes.push_back(NodeInfo{n->Bytes(i, 0), n->Int(i, 1), n->Int(i, 2)});
    }
    auto o = c.Run(kOwners.name, kOwners.sql, Params());
    if (!o) return std::move(o).error();
    for (int i = 0; i < o->Size(); ++i)
      out.owners.push_back(OwnerCount{o->Bytes(i, 0), o->Int(i, 1)});
    return out;
  });
}

Status PostgresStore::Ping() {
  static constexpr Stmt kPing{"acceptd_ping", "SELECT 1"};
  auto r = WithConn([&](Conn& c) { return c.Run(kPing.name, kPing.sql, Params()); });
  if (!r) return std::move(r).error();
  return {};
}

std::unique_ptr<ChangeSubscription> PostgresStore::Subscribe(ChangeListener listener) {
  return std::make_unique<pg::ChangeFeed>(keywords_, values_, node_, std::move(listener));
}

}  // namespace acceptd
