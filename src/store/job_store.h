// JobStore: the durable home of every job, and the contract each backend
// (sqlite/, later postgres/) implements. The conformance suite in
// store/testing/ is written once against this interface.
//
// Reads are thread-safe and may be called from any thread. Writes happen
// inside a WriteTx obtained from BeginWrite(); at most one WriteTx is open per
// store object at a time (BeginWrite blocks until the previous one ends). A
// WriteTx that is destroyed without Commit() rolls back. Commit() returns only
// when the transaction is durable. A store may also pipeline commits
// (WriteTx::CommitUnsynced, JobStore::WhenDurable): a transaction is then
// applied at once and made durable by a later sync, so the next transaction
// is written while the previous one is synced. Reads never report what a
// crash could undo: a read that meets a change not yet durable waits for the
// sync that covers it (see "Pipelined commits" in docs/store_contract.md).
// A store that cannot tell whether what it wrote is durable (a failed fsync)
// stops: every later BeginWrite and Ping fails with kUnavailable until it is
// opened again (fail-stop); a full disk fails writes with kUnavailable only
// while it lasts.
//
// Every state change is a single conditional statement guarded by the expected
// state (and, for lease-fenced outcomes, the lease token), so several engines
// may share one database: all dispatch state lives here.
//
// Inside a WriteTx, an operation that fails with kNotFound, kConflict,
// kQueueFull or kStaleLease changed nothing and leaves the transaction usable;
// kInternal or kUnavailable means the transaction must be abandoned.
//
// The transition table in core/job_state.cc is the authority over states:
// every state change a store makes (and the state of every inserted job) is
// checked against IsLegalTransition / IsLegalInitialState in the statement
// that makes it, and an illegal one fails the operation with kInternal,
// changing nothing. How a backend encodes states is its own business; no
// layer above the store knows it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/job.h"

namespace acceptd {

struct NewJob {
  JobId id;
  std::string queue;
  std::string payload;
  std::string content_type;
  int priority = 0;
  int max_attempts = 1;
  Millis timeout = 0;
  Millis retention = 0;
  UnixMillis now = 0;
  UnixMillis run_at = 0;
  int64_t max_depth = 0;  // refuse with kQueueFull when queued+running >= this
  // The tenant the job belongs to (empty: none). Immutable; readers scope by it.
  std::string tenant;
  // Idempotent submit (empty: none). If a job of this tenant and queue already carries
  // the key, nothing is inserted: Insert returns that job (its id differs from
  // `id`) when `request_digest` matches, else kIdempotencyMismatch.
  std::string idempotency_key;
  std::string request_digest;  // identifies the request the key was used for
  // Where to POST the job's status once it is terminal (empty: nowhere). The
  // store makes the delivery due in the same transaction that makes the job
  // terminal, so a pending delivery survives a crash.
  std::string callback_url;
};

// How long a schedule's fire records (WriteTx::FireSchedule) are kept after a
// later tick of the same schedule fired: a day, so that a node whose clock
// is behind by less than that still finds the record of a tick it is late
// for. A tick older than that before the schedule's last fire is refused.
inline constexpr Millis kScheduleFireRetention = 24 * 3600 * 1000;

// One tick of a schedule and the job it creates (WriteTx::FireSchedule).
struct ScheduleFire {
  std::string schedule;  // the schedule's name
  UnixMillis tick = 0;   // the tick's instant (a whole second)
  NewJob job;            // inserted as by Insert; no idempotency key
};

// What the store keeps of a schedule, shared by every node on the store.
struct ScheduleState {
  std::string schedule;
  UnixMillis last_fire_at = 0;  // the latest tick fired (the tick, not the commit time)
  JobId last_job_id;            // the job that tick created
  bool operator==(const ScheduleState&) const = default;
};

struct ClaimParams {
  std::string queue;
  int limit = 1;
  std::string owner;  // this node's lease-owner name
  UnixMillis now = 0;
  UnixMillis lease_expires_at = 0;
  // The lease ends no later than each job's timeout after the claim (for
  // external workers, whose attempts only the lease can time out; see
  // Heartbeat). In-process attempts have their own timer.
  bool lease_within_timeout = false;
};

// How an attempt ended. Use the named constructors: they are the only legal
// combinations. Applied only if the job is still running under `lease_token`.
struct AttemptOutcome {
  enum class Kind { kSucceeded, kFailed, kRetry, kCanceled };
  JobId id;
  int64_t lease_token = 0;
  Kind kind = Kind::kFailed;
  UnixMillis now = 0;
  UnixMillis retry_at = 0;        // kRetry: not claimed before this
  std::string result;             // kSucceeded
  std::string result_type;        // kSucceeded
  std::optional<JobError> error;  // kFailed, kRetry (kept for the status document)

  static AttemptOutcome Succeeded(JobId id, int64_t token, UnixMillis now, std::string body,
                                  std::string content_type);
  static AttemptOutcome Failed(JobId id, int64_t token, UnixMillis now, JobError error);
  static AttemptOutcome Retry(JobId id, int64_t token, UnixMillis now, UnixMillis retry_at,
                              JobError error);
  static AttemptOutcome Canceled(JobId id, int64_t token, UnixMillis now);
};

// What a cancel or delete request did.
struct CancelOutcome {
  enum class Kind {
    kCanceled,   // was queued: canceled at once (by Delete: and removed)
    kSignalled,  // was running: cancel_requested set; the runner must stop it
    kDeleted,    // (Delete only) was terminal: removed
  };
  Kind kind = Kind::kCanceled;
  Job job;  // the job after the change (before removal for kDeleted)
};

// How one callback delivery attempt ended. Use the named constructors.
// `lease` is the lease_until of the ClaimCallbacks that handed out the
// delivery: the record applies only while that claim is the current one, so
// a late attempt cannot overwrite a newer one (or undo a delivery).
struct CallbackAttempt {
  JobId id;
  UnixMillis lease = 0;
  UnixMillis now = 0;
  std::optional<int> http_status;          // the receiver's answer, if any
  std::string error;                       // transport failure, when no status
  bool delivered = false;                  // a 2xx: no further attempts
  std::optional<UnixMillis> next_attempt;  // retry at; nullopt with !delivered: gave up

  static CallbackAttempt Delivered(JobId id, UnixMillis lease, UnixMillis now, int http_status);
  static CallbackAttempt Retry(JobId id, UnixMillis lease, UnixMillis now,
                               std::optional<int> http_status, std::string error,
                               UnixMillis next_attempt);
  static CallbackAttempt GaveUp(JobId id, UnixMillis lease, UnixMillis now,
                                std::optional<int> http_status, std::string error);
};

struct LeaseRef {
  JobId id;
  int64_t lease_token = 0;
};

// What a worker's heartbeat did (WriteTx::Heartbeat).
struct HeartbeatResult {
  UnixMillis lease_expires_at = 0;  // the lease's new end
  bool cancel_requested = false;    // the worker should stop (and release)
};

struct LeaseRenewal {
  std::vector<JobId> cancel_requested;  // extended, and a cancel is pending
  std::vector<JobId> lost;              // not extended: the lease is gone
};

// The order of a list: insertion order (seq), newest or oldest first.
enum class ListOrder { kNewest, kOldest };

// A search examines at most this many jobs per page (see ListParams).
inline constexpr int kListMaxExamined = 10'000;

// A JSON payload whose member at `path` (object member names, outermost
// first) is the string `value`, or a number or boolean whose JSON text is
// `value`. A payload that is not JSON never matches; neither does a path
// through anything but objects. No segment may be empty or contain '"'
// (kInvalidArgument).
struct FieldMatch {
  std::vector<std::string> path;
  std::string value;
};

// Filters combine with AND. queue, state and tenant alone list as before:
// each page reads until it has `limit` jobs. Any of the search filters
// (id_prefix, text, field, created_after, created_before) makes the list a
// search, which examines at most `max_examined` jobs per page in the list's
// order, from the cursor on: a page may then hold fewer than `limit` jobs
// (none, even) while next_cursor says where to go on (JobPage::scan_limited).
// Exception: an id_prefix that at most `max_examined` jobs carry is looked up
// in the id index, and such a page examines only those jobs.
struct ListParams {
  std::optional<std::string> queue;
  std::optional<JobState> state;
  int limit = 50;
  std::optional<int64_t> before_seq;  // cursor of kNewest: only jobs with seq < this
  std::optional<int64_t> after_seq;   // cursor of kOldest: only jobs with seq > this
  std::optional<std::string> tenant;  // only this tenant's jobs ("": those of no tenant)
  ListOrder order = ListOrder::kNewest;
  // Search filters.
  std::optional<std::string> id_prefix;  // 1 to 32 lowercase hex digits (else kInvalidArgument)
  std::optional<std::string> text;       // bytes the payload or the result contains (non-empty)
  std::optional<FieldMatch> field;
  std::optional<UnixMillis> created_after;   // created_at >= this
  std::optional<UnixMillis> created_before;  // created_at < this
  int max_examined = kListMaxExamined;

  bool IsSearch() const { return id_prefix || text || field || created_after || created_before; }
};

struct JobPage {
  std::vector<Job> jobs;
  // Where the next page starts, if there may be more: the seq to pass as
  // before_seq (kNewest) or after_seq (kOldest).
  std::optional<int64_t> next_cursor;
  // A search stopped at max_examined jobs before it had `limit` matches.
  bool scan_limited = false;
};

// How an attempt ended, as the attempt history records it.
enum class AttemptEnd {
  kRunning,  // not ended: the job's current attempt
  kSucceeded,
  kFailed,        // the handler failed (the job may have been retried)
  kTimeout,       // the attempt ran into its timeout
  kLeaseExpired,  // its lease expired (the worker or node vanished)
  kCanceled,
  kReleased,  // its lease was given back without spending the attempt
};
std::string_view ToString(AttemptEnd end);

// One attempt of a job (GetAttempts).
struct AttemptRecord {
  int attempt = 0;  // the job's attempt number (a released attempt's number is used again)
  std::optional<UnixMillis> started_at;
  std::optional<UnixMillis> ended_at;  // nullopt while running
  AttemptEnd end = AttemptEnd::kRunning;
  std::optional<JobError> error;  // kFailed, kTimeout, kLeaseExpired
  std::string worker;             // the lease owner that ran it (node or worker name)
};

// The attempts a store keeps per job: the history is stored with the job
// row, appended when an attempt ends, and capped to the last this many.
inline constexpr int kAttemptHistoryCap = 20;

struct AttemptHistory {
  Job job;
  std::vector<AttemptRecord> attempts;  // oldest first; a running attempt is last
  int64_t dropped = 0;                  // ended attempts not kept (older than the cap)
};

// Jobs of one queue that ended in each terminal state, per time bucket
// (JobStore::Throughput); each vector has one entry per bucket, oldest first.
struct QueueThroughput {
  std::string queue;
  std::vector<int64_t> succeeded, failed, canceled;
};

struct QueueCounts {
  std::string queue;
  int64_t counts[kJobStateCount] = {};
};

// Jobs of one queue: counts purged by PurgeExpired, or the run_at of the
// oldest ready job (OldestReady).
struct QueueValue {
  std::string queue;
  int64_t value = 0;
  bool operator==(const QueueValue&) const = default;
};

// A node sharing this store (WriteTx::TouchNode), as JobStore::Nodes reads it.
struct NodeInfo {
  std::string name;           // EngineOptions::node_id
  UnixMillis started_at = 0;  // when it started
  UnixMillis seen_at = 0;     // its latest TouchNode
  bool operator==(const NodeInfo&) const = default;
};

// Running jobs per lease owner: a node's name for its own handlers,
// "worker:<key name>" for external workers' leases.
struct OwnerCount {
  std::string owner;
  int64_t running = 0;
  bool operator==(const OwnerCount&) const = default;
};

struct NodeList {
  std::vector<NodeInfo> nodes;     // by name
  std::vector<OwnerCount> owners;  // by owner; owners with no running job left out
};

struct StoredResult {
  JobState state = JobState::kQueued;
  bool has_result = false;
  std::string body;
  std::string content_type;
  std::optional<UnixMillis> expires_at;  // as Job::expires_at
};

struct StoredPayload {
  std::string body;
  std::string content_type;
  std::optional<UnixMillis> expires_at;  // as Job::expires_at
};

// One state change as the store is about to make it: `from` is empty for an
// inserted job. See JobStore::SetTransitionObserver.
struct StateTransition {
  std::optional<JobState> from;
  JobState to = JobState::kQueued;
  bool legal = false;  // IsLegalTransition (or IsLegalInitialState) said yes
};
using TransitionObserver = std::function<void(const StateTransition&)>;

// One job change committed through another store object (another node) on
// the same database, as a change feed reports it (JobStore::Subscribe). It
// is a wake-up, not a record: the job may have changed again since, and
// readers re-read the store for the truth.
struct JobChange {
  JobId id;
  std::string queue;
  JobState state = JobState::kQueued;  // the state the change committed
  bool cancel_requested = false;       // running, and a cancel was requested
  bool due = false;                    // queued and claimable now (run_at <= commit time)
  bool removed = false;                // the row was deleted (delete, purge)
};

// Receives a change feed's reports on the feed's own thread. Handlers must
// be quick and must not call into the store.
struct ChangeListener {
  // Changes committed by other store objects, in commit order per job.
  std::function<void(const std::vector<JobChange>&)> on_changes;
  // The feed was interrupted (e.g. the connection was lost) and changes may
  // have been missed; called again with `live` true once it delivers again.
  // While !live, callers fall back to polling the store. A new feed is not
  // live until its first on_state(true) (once it listens); one that cannot
  // listen says on_state(false).
  std::function<void(bool live)> on_state;
};

// Keeps a feed running; destroying it stops the feed (no call after the
// destructor returns).
class ChangeSubscription {
 public:
  virtual ~ChangeSubscription() = default;
};

// Names a commit of WriteTx::CommitUnsynced; 0: durable already.
using CommitToken = int64_t;

class WriteTx {
 public:
  virtual ~WriteTx() = default;

  // Inserts a queued job unless the queue is at job.max_depth (kQueueFull).
  // kConflict if the id exists. See NewJob::idempotency_key for replays.
  virtual Result<Job> Insert(const NewJob& job) = 0;
  // Inserts `jobs` as if by Insert on each, in order: one outcome per job, in
  // the same order, each exactly what Insert would have returned at that
  // point (a job sees the jobs before it: a later one may find its queue
  // full, its id taken, or replay an earlier one's idempotency key). A
  // refused job (kQueueFull, kConflict, kIdempotencyMismatch, ...) changed
  // nothing and the others still apply. The outer error is kInternal or
  // kUnavailable only: the transaction must be abandoned. Exists so that a
  // network database inserts a group commit's submits in one round trip;
  // the default calls Insert for each.
  virtual Result<std::vector<Result<Job>>> InsertMany(const std::vector<NewJob>& jobs);
  // Leases up to `limit` claimable queued jobs of a queue (priority desc, then
  // run_at, then insertion order): state running, attempts+1, a new lease
  // token, progress cleared (each attempt reports its own). A job inserted or retried with run_at >
  // now is not claimable until PromoteDueJobs() has seen its run_at pass. The returned jobs carry
  // their payload.
  virtual Result<std::vector<Job>> Claim(const ClaimParams& params) = 0;
  // Applies an attempt outcome. kStaleLease if the job is not running under
  // that token, kNotFound if it is gone. A requested cancel wins over a
  // retry: kRetry of a job whose cancel_requested is set (by any process
  // sharing the store) ends it canceled instead of queued. A job with
  // delete_requested is removed once terminal.
  virtual Result<Job> Finish(const AttemptOutcome& outcome) = 0;
  // queued -> canceled; running -> cancel_requested. kConflict (detail names
  // the state) for terminal jobs, kNotFound for unknown ids.
  virtual Result<CancelOutcome> Cancel(const JobId& id, UnixMillis now) = 0;
  // Terminal: removed (kDeleted); queued: canceled and removed (kCanceled);
  // running: cancel + delete_requested (kSignalled), removed once it stops.
  // kNotFound for unknown ids.
  virtual Result<CancelOutcome> Delete(const JobId& id, UnixMillis now) = 0;
  // Progress of a running attempt; ignored (ok) if the lease moved on.
  virtual Status SetProgress(const JobId& id, int64_t lease_token, const Progress& progress,
                             UnixMillis now) = 0;
  // Extends the given leases (each still running under its token and not
  // yet expired) to `lease_expires_at`. Reports which of them had a cancel
  // requested (possibly through another node) and which were lost: no longer
  // running under that token, or expired (the rescuer may requeue them).
  virtual Result<LeaseRenewal> ExtendLeases(const std::vector<LeaseRef>& leases,
                                            UnixMillis lease_expires_at, UnixMillis now) = 0;
  // One external worker's heartbeat: extends a lease (running under its
  // token and not expired) to `lease_until`, but, for a lease claimed with
  // lease_within_timeout, never past the attempt's timeout (claim time +
  // timeout, when the job has one): such a lease that runs into it is
  // rescued as a timeout. Records `progress` if given. Reports
  // whether a cancel was requested. kStaleLease if the job is not running
  // under that token or the lease expired; kNotFound if the job is gone.
  virtual Result<HeartbeatResult> Heartbeat(const LeaseRef& lease, UnixMillis lease_until,
                                            UnixMillis now,
                                            const std::optional<Progress>& progress) = 0;
  // Gives one leased job back without spending its attempt: queued and due
  // at once, or canceled if a cancel was requested (removed if its delete
  // was). kStaleLease / kNotFound as for Finish.
  virtual Result<Job> ReleaseLease(const LeaseRef& lease, UnixMillis now) = 0;
  // Running jobs whose lease expired before `now`: back to queued when
  // attempts remain, failed otherwise, canceled if a cancel was requested;
  // the error is "timeout" if the lease ran into the attempt's timeout (see
  // Heartbeat), else "lease_expired". Returns the jobs after the change.
  virtual Result<std::vector<Job>> RescueExpiredLeases(UnixMillis now, int limit) = 0;
  // `owner`'s running jobs go back to queued without spending an attempt
  // (graceful shutdown); those whose cancel was requested become canceled
  // instead (and are removed if their delete was requested). Returns how many.
  virtual Result<int64_t> ReleaseLeases(const std::string& owner, UnixMillis now) = 0;
  // Queued jobs that were not yet due (delay, retry backoff) and whose run_at
  // has come become claimable. Returns the distinct queues that got work.
  virtual Result<std::vector<std::string>> PromoteDueJobs(UnixMillis now, int limit) = 0;
  // Deletes terminal jobs whose expires_at <= now, leaving for each a
  // tombstone until now + tombstone_ttl (none if 0), so that readers can tell
  // "expired" (kGone) from "never existed" (kNotFound); removes tombstones
  // whose time is over. Returns how many jobs were purged per queue (queues
  // with none left out, in no particular order).
  virtual Result<std::vector<QueueValue>> PurgeExpired(UnixMillis now, int limit,
                                                       Millis tombstone_ttl) = 0;
  // Pauses (`paused`) or resumes `queue` for every node on this store: while
  // it is paused, Claim hands out none of its jobs (submits are still
  // accepted, running attempts finish, callbacks are delivered). Idempotent;
  // returns whether the queue was paused before.
  virtual Result<bool> SetQueuePaused(const std::string& queue, bool paused, UnixMillis now) = 0;
  // A node's heartbeat: records (or refreshes) node `name`, started at
  // `started_at`, as seen at `now`, and forgets every node last seen before
  // `forget_before` (nodes that stopped or died long ago).
  virtual Status TouchNode(const std::string& name, UnixMillis started_at, UnixMillis now,
                           UnixMillis forget_before) = 0;
  // An operator's retry of a failed or canceled job: the same job queued
  // again, due at `now`, for a new attempt. Its attempts so far count (if
  // they were all spent, max_attempts becomes attempts + 1: one more), its
  // last error is kept (not shown while it is pending), its callback (if
  // any) is delivered afresh for the next outcome. kConflict (nothing changed) if
  // the job is queued, running or succeeded; kNotFound if absent.
  virtual Result<Job> RetryJob(const JobId& id, UnixMillis now) = 0;
  // An operator's purge: deletes up to `limit` finished jobs of `queue`
  // (only those in `state`, if given: a terminal state) with their results,
  // as Delete does (no tombstone: their ids become unknown). Jobs whose
  // callback delivery is pending are kept. Returns the deleted jobs' ids.
  virtual Result<std::vector<JobId>> DeleteFinished(const std::string& queue,
                                                    std::optional<JobState> state, int limit) = 0;
  // Fires one tick of a schedule: inserts fire.job (as Insert would) and the
  // fire record (schedule, tick) in this transaction, and moves the
  // schedule's state (JobStore::ScheduleStates) to this tick and job if the
  // tick is later than its last fire. A tick thus makes exactly one job,
  // however many store objects (nodes) fire it. kConflict, changing nothing:
  // the tick was fired already (by any store object on this database), or
  // it is more than kScheduleFireRetention before the schedule's last fire
  // (its record may be gone). Insert's refusals (kQueueFull, kConflict for
  // a duplicate id) change nothing either and record no fire: the same tick
  // may be fired later. Fire records older than kScheduleFireRetention
  // before `tick` are removed.
  virtual Result<Job> FireSchedule(const ScheduleFire& fire) = 0;
  // Jobs whose callback delivery is due (next_attempt_at <= now), earliest
  // first. Each is leased by moving its next_attempt_at to `lease_until`, so
  // that no other node delivers it meanwhile; if this node dies mid-delivery
  // the delivery becomes due again then (at-least-once).
  virtual Result<std::vector<Job>> ClaimCallbacks(UnixMillis now, int limit,
                                                  UnixMillis lease_until) = 0;
  // Records a delivery attempt (attempts + 1, last status or error, and
  // delivered_at or the next attempt) if the delivery is still leased under
  // attempt.lease; kStaleLease if it is not (re-claimed after the lease ran
  // out, or recorded already), kNotFound if the job is gone.
  virtual Result<Job> RecordCallbackAttempt(const CallbackAttempt& attempt) = 0;

  virtual Status Commit() = 0;
  // Commits like Commit() but may return before the transaction is durable:
  // its changes are applied (later transactions build on them) and the
  // returned token names the commit for JobStore::WhenDurable. Until then a
  // power loss may undo it; reads of this store wait for it (see above).
  // Token 0: durable already (the default calls Commit()). Tokens of one
  // store object grow with each commit, and a sync covers every commit up to
  // its token. An error means nothing of the transaction became visible,
  // or the store stopped (fail-stop) and nothing is known about it.
  virtual Result<CommitToken> CommitUnsynced();
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Reports every state change this store object's writes attempt, legal or
  // not, before it is applied (an illegal one is then refused, see above), on
  // the writing thread, inside the transaction (which may still roll back).
  // For tests (the conformance suite asserts that each observed change is
  // legal). Set it before the first write; it must not call into the store.
  virtual void SetTransitionObserver(TransitionObserver observer) = 0;

  virtual Result<std::unique_ptr<WriteTx>> BeginWrite() = 0;
  // Calls `done` once every commit of this store object up to `token`
  // (from WriteTx::CommitUnsynced, > 0) is durable, with nullptr; or, if
  // that can no longer happen (a failed sync: the store stopped, fail-stop),
  // with the error: such a commit may be lost to a power loss, and callers
  // must not report it as done. `done` runs on a thread of the store (or on
  // the caller's, if the token is durable already), must be quick and must
  // not call into the store. The default (a store whose commits are durable
  // when they return) calls it at once.
  virtual void WhenDurable(CommitToken token, std::function<void(const Error*)> done) {
    (void)token;
    done(nullptr);
  }

  // The job without payload or result. kGone if it was purged after its
  // retention (while its tombstone lasts), kNotFound if absent.
  virtual Result<Job> Get(const JobId& id) = 0;
  // Get of many jobs at once: one result per id, in the order of `ids`
  // (an id given twice is answered twice), each as Get would answer it
  // (kNotFound, kGone while a tombstone lasts). A failure of the store
  // itself (kUnavailable, ...) is every id's result. A remote store answers
  // in one round trip where it can (the engine coalesces concurrent status
  // reads into one call); the default calls Get for each id.
  virtual std::vector<Result<Job>> GetMany(const std::vector<JobId>& ids);
  virtual Result<StoredResult> GetResult(const JobId& id) = 0;
  // The job's input as submitted. kGone / kNotFound as for Get.
  virtual Result<StoredPayload> GetPayload(const JobId& id) = 0;
  virtual Result<JobPage> List(const ListParams& params) = 0;
  // The job (as Get) with its attempts: the kept history plus, while it
  // runs, the current attempt (from its lease). kGone / kNotFound as for Get.
  virtual Result<AttemptHistory> GetAttempts(const JobId& id) = 0;
  // Terminal jobs still stored, counted per queue, terminal state and bucket
  // of their finished_at: bucket i holds since + i * step <= finished_at <
  // since + (i + 1) * step, for i < buckets. Queues without such a job are
  // left out; queues in no particular order. Reads only the jobs that
  // finished in the window (an index on finished_at), never the whole table.
  virtual Result<std::vector<QueueThroughput>> Throughput(UnixMillis since, Millis step,
                                                          int buckets) = 0;
  // Counts per state for every queue that has or had jobs.
  virtual Result<std::vector<QueueCounts>> Counts() = 0;
  // For each queue with a job ready to run (queued, due, not delayed or
  // backing off: what a claim would take), the earliest run_at among them,
  // in no particular order. It reads every ready job's index entry: for
  // metrics scrapes, not for a hot path.
  virtual Result<std::vector<QueueValue>> OldestReady() = 0;
  // The paused queues (WriteTx::SetQueuePaused), in no particular order.
  virtual Result<std::vector<std::string>> PausedQueues() = 0;
  // The nodes recorded by TouchNode, and the running jobs per lease owner.
  virtual Result<NodeList> Nodes() = 0;
  // The state of every schedule that ever fired (WriteTx::FireSchedule), in
  // no particular order; a schedule removed from the configuration keeps
  // its state (it resumes from it if configured again).
  virtual Result<std::vector<ScheduleState>> ScheduleStates() = 0;
  // Answers iff the store is usable (for /readyz).
  virtual Status Ping() = 0;

  // True when a call may wait on the network (a database server): callers
  // on an event loop must run such calls on another thread. An embedded
  // store answers reads from local files in microseconds.
  virtual bool RemoteCalls() const { return false; }

  // Starts a feed of the job changes that other store objects (other nodes)
  // commit to the same database, delivered to `listener` soon after each
  // commit; this object's own writes are not reported. nullptr: the backend
  // has no feed (the caller polls the store to see other nodes' work).
  virtual std::unique_ptr<ChangeSubscription> Subscribe(ChangeListener listener) {
    (void)listener;
    return nullptr;
  }
};

// How to open a store (OpenStore); keys a backend does not use are ignored.
struct StoreOptions {
  // Connections to a database server (reads and writes together).
  int pool_size = 8;
  // Run even if the database server does not make commits durable
  // (PostgreSQL fsync = off or synchronous_commit = off).
  bool unsafe_durability = false;
  // This node's name in the database (logs, change feed origin); empty: a
  // generated one.
  std::string node_name;
  // Apply the schema if it is missing or older (`serve` does; `false`
  // fails with kUnavailable on a missing or older schema instead).
  bool migrate = true;
};

// The kGone error of a job past its expires_at: from that instant on, whether
// or not PurgeExpired has removed it yet (the engine's reads check the time,
// the store's the tombstone), with one detail for both.
Error JobExpired();

// Opens a store from a URL: "sqlite:PATH" (the directory is created), or
// "postgres://..." / "postgresql://..." (a libpq connection URI; unset parts
// come from the PG* environment variables).
Result<std::unique_ptr<JobStore>> OpenStore(const std::string& url,
                                            const StoreOptions& options = {});

// Applies the store's schema (`acceptd migrate`), creating it if missing:
// returns the schema version the store has afterwards. kInvalidArgument for
// an unknown URL; kUnavailable if the store cannot be reached or its schema
// is newer than this binary knows.
Result<int> MigrateStore(const std::string& url);

// `url` fit for logs: a password in it (user:PASSWORD@ or password=...) is
// replaced by "***".
std::string RedactStoreUrl(const std::string& url);

}  // namespace acceptd
