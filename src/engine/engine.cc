#include "engine/engine.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <iterator>
#include <limits>
#include <mutex>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "engine/retry_after.h"
#include "engine/retry_policy.h"

namespace acceptd {

namespace asio = boost::asio;

namespace {
constexpr int kRescueBatch = 1000;
constexpr int kPurgeBatch = 10'000;
constexpr int kPromoteBatch = 10'000;
// The most status reads one GetMany coalesces (a statement's id array).
constexpr size_t kMaxReadBatch = 256;
constexpr Millis kMinHousekeepingTick = 5;
constexpr Millis kMaxHousekeepingTick = 250;
constexpr std::chrono::milliseconds kShutdownPoll{20};
constexpr char kSchedulerTask[] = "scheduler";
// How soon the scheduler reads the schedules' states again after a failed read.
constexpr Millis kScheduleStatesRetry = 1'000;
constexpr UnixMillis kNever = std::numeric_limits<UnixMillis>::max();
}  // namespace

struct Engine::QueueState {
  QueueSpec spec;
  int in_use = 0;  // slots taken by claimed or running jobs on this node
  // False only after a claim found fewer due jobs than it asked for; set again
  // by submits, freed slots and the delayed-job promoter.
  bool may_have_work = true;
  RunTimeAverage run_time;  // of this node's attempts
  // Queued jobs, for the Retry-After estimate: set from the store by the
  // promoter (which sees other nodes' work too) and kept current in between
  // by this node's own commits, so that a submit's 202 and the job's first
  // poll give the same estimate. Written on the engine thread only.
  std::atomic<int64_t> queued_count{0};
  // External queues: lease requests waiting for a job, oldest first.
  std::deque<std::shared_ptr<LeaseWaiter>> waiters;
  void AddQueued(int64_t n) { queued_count.store(std::max<int64_t>(0, queued_count.load() + n)); }
};

// A worker's lease request waiting for a job (engine thread only).
struct Engine::LeaseWaiter {
  Millis lease = 0;
  std::string owner;
  Callback<std::optional<Job>> done;
  std::optional<asio::steady_timer> timer;
  bool claiming = false;  // a claim for it is in the batch being committed
  bool answered = false;
};

namespace {

// The lock names of the group committer's order: a queue's depth lock (an
// insert) before any job's row.
std::string QueueLock(std::string_view queue) { return "0:" + std::string(queue); }
std::string JobLock(const JobId& id) { return "1:" + id.ToHex(); }

}  // namespace

// The JobContext of one attempt, shared by the engine thread and the worker
// thread running the handler.
class Engine::Context final : public JobContext {
 public:
  Context(Engine* engine, JobId id, int attempt, int64_t token)
      : engine_(engine), id_(id), attempt_(attempt), token_(token) {}

  const JobId& job_id() const override { return id_; }
  int attempt() const override { return attempt_; }
  bool cancelled() const override { return cancelled_.load(); }

  bool WaitFor(std::chrono::milliseconds d) override {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return cancelled_.load(); });
  }

  void ReportProgress(int percent, std::string message) override {
    {
      std::lock_guard lock(mu_);
      latest_ = Progress{std::clamp(percent, 0, 100), std::move(message)};
      if (write_pending_) return;  // coalesced into the write already queued
      write_pending_ = true;
    }
    Engine* engine = engine_;
    auto self = self_.lock();
    if (!self) return;
    engine->Write<bool>(
        [self](WriteTx& tx) -> Result<bool> {
          Progress p;
          {
            std::lock_guard lock(self->mu_);
            p = self->latest_;
            self->write_pending_ = false;
          }
          auto st = tx.SetProgress(self->id_, self->token_, p, self->engine_->clock_.Now());
          if (!st) return std::move(st).error();
          return true;
        },
        Callback<bool>([self](Result<bool> r) {
          if (r) {
            // Committed: wake event streams (not long-polls, not the observer:
            // progress is not a state change).
            self->engine_->status_cache_.Invalidate(self->id_);
            self->engine_->watchers_.OnProgress(self->id_);
            return;
          }
          // The batch failed, perhaps before our write ran: let the next report retry.
          std::lock_guard lock(self->mu_);
          self->write_pending_ = false;
        }),
        JobLock(self->id_));
  }

  void Cancel() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }

  std::weak_ptr<Context> self_;

 private:
  Engine* engine_;
  JobId id_;
  int attempt_;
  int64_t token_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  Progress latest_;
  bool write_pending_ = false;
};

struct Engine::RunningJob {
  Job job;  // as claimed, without payload
  QueueState* queue = nullptr;
  std::shared_ptr<Context> ctx;
  std::optional<asio::steady_timer> timer;
  std::chrono::steady_clock::time_point started;
  bool outcome_recorded = false;  // timeout or shutdown already decided it
  bool cancel_requested = false;  // by a client (not a timeout)
};

template <typename T, typename F>
void Engine::Write(F op, Callback<T> done, std::string order) {
  auto slot = std::make_shared<std::optional<Result<T>>>();
  committer_->Enqueue(
      [slot, op = std::move(op)](WriteTx& tx) mutable -> Status {
        Result<T> r = op(tx);
        if (!r && IsFatal(r.error())) return r.error();
        slot->emplace(std::move(r));
        return {};
      },
      [slot, done = std::move(done)](const Error* failure) {
        if (failure) {
          done(*failure);
        } else {
          done(std::move(**slot));
        }
      },
      std::move(order));
}

template <typename F>
void Engine::Read(F read) {
  if (reads_inline_) {
    read();
    return;
  }
  asio::post(*readers_, std::move(read));
}

template <typename F>
void Engine::ReadInBackground(F read) {
  asio::post(*readers_, std::move(read));
}

namespace {
std::vector<std::string> QueueNames(const std::vector<QueueSpec>& queues) {
  std::vector<std::string> names;
  for (const QueueSpec& q : queues) names.push_back(q.config.name);
  return names;
}
}  // namespace

Engine::Engine(EngineOptions options, std::unique_ptr<JobStore> store,
               std::vector<QueueSpec> queues, const Clock& clock)
    : options_(std::move(options)),
      store_(std::move(store)),
      clock_(clock),
      metrics_(acceptd::QueueNames(queues)),
      reads_inline_(!store_->RemoteCalls()),
      other_writers_(store_->RemoteCalls() || options_.watch_poll_interval.value_or(0) > 0),
      status_cache_(options_.status_cache_size) {
  // Trusted once a change feed is live (OnFeedState).
  if (other_writers_) status_cache_.SetTrusted(false);
  readers_.emplace(reads_inline_ ? 1 : static_cast<size_t>(std::max(options_.read_threads, 1)));
  for (QueueSpec& spec : queues) {
    auto q = std::make_unique<QueueState>();
    q->spec = std::move(spec);
    queues_.push_back(std::move(q));
  }
  committer_ = std::make_unique<GroupCommitter>(*store_, ctx_.get_executor());
  committer_->SetHooks([this](WriteTx& tx) { return ClaimDue(tx); },
                       [this](bool committed) { AfterCommit(committed); });
  committer_->SetMetrics(
      {&metrics_.commit_seconds, &metrics_.commit_operations, &metrics_.commit_failures});
}

Engine::~Engine() {
  Shutdown();
  // Reads under way finish (their callbacks may still post to callers).
  readers_->join();
}

void Engine::AddObserver(Observer observer) { observers_.push_back(std::move(observer)); }

void Engine::AddChangeObserver(ChangeObserver observer) {
  change_observers_.push_back(std::move(observer));
}

void Engine::ReportChange(const JobChange& change) {
  for (const ChangeObserver& observer : change_observers_) observer(change);
}

void Engine::SetCallbackSender(std::unique_ptr<CallbackSender> sender) {
  callback_sender_ = std::move(sender);
}

void Engine::SetSchedules(std::vector<ScheduleConfig> schedules) {
  for (const ScheduleConfig& s : schedules) metrics_.AddSchedule(s.name);
  schedules_ = std::move(schedules);
}

void Engine::Start() {
  started_at_ = clock_.Now();
  if (started_.exchange(true)) return;
  size_t slots = 0;
  for (auto& q : queues_) {
    if (q->spec.handler) slots += static_cast<size_t>(q->spec.config.concurrency);
  }
  workers_.emplace(std::max<size_t>(slots, 1));
  accepting_ = true;
  AddHousekeepingTasks();
  housekeeping_timer_.emplace(ctx_);
  asio::post(ctx_, [this] { ScheduleHousekeeping(); });
  committer_->Kick();  // claim whatever the store already holds
  // Other nodes' commits: hop to the engine thread (the feed's thread must
  // not wait on anything of ours).
  // A store with a feed has other writers: until the feed says it is live,
  // their changes go unannounced.
  const bool single_writer = !other_writers_.load();
  other_writers_ = true;
  status_cache_.SetTrusted(false);
  subscription_ = store_->Subscribe(
      ChangeListener{[this](const std::vector<JobChange>& changes) {
                       // Here, not after the hop: polls stop seeing the old state sooner.
                       for (const JobChange& c : changes) status_cache_.Invalidate(c.id);
                       asio::post(ctx_, [this, changes] { OnRemoteChanges(changes); });
                     },
                     [this](bool live) {
                       // Changes may go unannounced while the feed is down.
                       status_cache_.SetTrusted(live);
                       asio::post(ctx_, [this, live] { OnFeedState(live); });
                     }});
  // A feed is live only once it says so (on_state(true)): until then the
  // engine polls as without one.
  feed_live_ = false;
  if (!subscription_ && single_writer) {
    other_writers_ = false;
    status_cache_.SetTrusted(true);
  }
  if (!subscription_) {
    // Expected of an embedded store; a network database should have one.
    spdlog::log(reads_inline_ ? spdlog::level::info : spdlog::level::warn,
                "the store has no change feed: other nodes' changes are found by polling ({})",
                PollingSummary());
  }
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(ctx_);
    ctx_.run();
  });
  spdlog::info("engine started node={} queues={} worker_threads={}", options_.node_id,
               queues_.size(), slots);
}

void Engine::BeginShutdown() {
  if (accepting_.exchange(false)) spdlog::info("engine: no longer accepting submits");
}

void Engine::Shutdown() {
  if (!started_.load() || stopped_.exchange(true)) return;
  BeginShutdown();
  // Real time, not clock_: the grace period is about processes, and a test's
  // FakeClock must not make shutdown wait forever.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.shutdown_grace);
  std::promise<void> drained;
  // Polls for idle on the engine thread; after the grace period, cancels what
  // is left and hands its jobs back to the queue.
  std::function<void()> check;
  auto timer = std::make_shared<asio::steady_timer>(ctx_);
  check = [&, timer] {
    if (!running_.empty() && std::chrono::steady_clock::now() < deadline) {
      timer->expires_after(kShutdownPoll);
      timer->async_wait([&](boost::system::error_code) { check(); });
      return;
    }
    if (!running_.empty()) {
      spdlog::warn("shutdown grace period over: canceling {} running jobs", running_.size());
    }
    for (auto& [id, rj] : running_) {
      rj->outcome_recorded = true;
      rj->ctx->Cancel();
    }
    Write<int64_t>([this](WriteTx& tx) { return tx.ReleaseLeases(options_.node_id, clock_.Now()); },
                   Callback<int64_t>([&](Result<int64_t> r) {
                     status_cache_.InvalidateAll();  // those jobs are queued again
                     if (!r) {
                       spdlog::error("releasing leases failed: {}", r.error().message);
                     } else if (*r > 0) {
                       spdlog::info("released {} leases back to their queues", *r);
                     }
                     drained.set_value();
                   }));
  };
  asio::post(ctx_, [&] {
    // Workers' leases stay theirs: they may complete through another node or
    // after a restart. Only waiting lease requests are answered now.
    FailWaiters(Error::Unavailable("lease while shutting down", "the server is shutting down"));
    check();
  });
  drained.get_future().wait();
  workers_->join();
  subscription_.reset();  // no feed call after this
  // Reads stay valid after shutdown, but other nodes' changes are no longer heard of.
  if (other_writers_) status_cache_.SetTrusted(false);
  asio::post(ctx_, [this] {
    housekeeping_timer_->cancel();
    ctx_.stop();
  });
  thread_.join();
  // Sends still in flight are dropped; their store lease makes them due again.
  callback_sender_.reset();
  committer_->Close(Error::Unavailable("engine stopped", "the server is shutting down"));
  spdlog::info("engine stopped (batches={} operations={})", committer_->batches(),
               committer_->operations());
}

Engine::QueueState* Engine::FindQueueState(std::string_view name) {
  for (auto& q : queues_) {
    if (q->spec.config.name == name) return q.get();
  }
  return nullptr;
}

const Engine::QueueState* Engine::FindQueueState(std::string_view name) const {
  for (auto& q : queues_) {
    if (q->spec.config.name == name) return q.get();
  }
  return nullptr;
}

Millis Engine::RetryAfter(const Job& job) const {
  RetryAfterInputs in;
  in.state = job.state;
  in.now = clock_.Now();
  in.run_at = job.run_at;
  in.running_since = job.updated_at;  // the claim's time, unless progress moved it
  in.min = options_.retry_after;
  in.max = options_.retry_after_max;
  if (const QueueState* q = FindQueueState(job.queue)) {
    in.queued = q->queued_count.load();
    in.concurrency = q->spec.config.concurrency;
    in.avg_run = q->run_time.Get();
  }
  return EstimateRetryAfter(in);
}

std::vector<std::string> Engine::QueueNames() const {
  std::vector<std::string> names;
  for (auto& q : queues_) names.push_back(q->spec.config.name);
  return names;
}

const QueueConfig* Engine::FindQueue(std::string_view name) const {
  for (auto& q : queues_) {
    if (q->spec.config.name == name) return &q->spec.config;
  }
  return nullptr;
}

void Engine::Submit(SubmitRequest req, Callback<Job> done) {
  if (!accepting_.load()) {
    done(Error::Unavailable("submit while shutting down", "the server is shutting down"));
    return;
  }
  QueueState* q = FindQueueState(req.queue);
  if (!q) {
    done(Error::NotFound(fmt::format("no queue named '{}'", req.queue)));
    return;
  }
  const QueueConfig& c = q->spec.config;
  NewJob n;
  n.id = req.id ? *req.id : JobId::New(clock_.Now());
  n.queue = std::move(req.queue);
  n.tenant = std::move(req.tenant);
  n.payload = std::move(req.payload);
  n.content_type = std::move(req.content_type);
  n.priority = req.priority.value_or(0);
  n.max_attempts = req.max_attempts.value_or(c.max_attempts);
  n.timeout = req.timeout.value_or(c.timeout);
  n.retention = c.retention;
  n.max_depth = c.max_depth;
  n.now = clock_.Now();
  n.run_at = n.now + req.delay.value_or(0);
  n.idempotency_key = std::move(req.idempotency_key);
  n.request_digest = std::move(req.request_digest);
  n.callback_url = std::move(req.callback_url);
  if (!n.idempotency_key.empty()) {
    // The store sees the key only inside the transaction that commits it; a
    // second request racing the first would otherwise both miss and insert.
    std::string slot = n.tenant + '\0' + n.queue + '\0' + n.idempotency_key;
    {
      std::lock_guard lock(idempotency_mu_);
      if (!idempotency_in_flight_.insert(slot).second) {
        done(Error::Conflict("a request with this Idempotency-Key is still being processed"));
        return;
      }
    }
    done = [this, slot = std::move(slot), done = std::move(done)](Result<Job> r) {
      {
        std::lock_guard lock(idempotency_mu_);
        idempotency_in_flight_.erase(slot);
      }
      done(std::move(r));
    };
  }
  const JobId new_id = n.id;
  const bool due = n.run_at <= n.now;
  committer_->EnqueueInsert(
      std::move(n),
      [q, new_id, due](const Result<Job>& r) {
        // Read by ClaimDue in this same batch. Delayed jobs wait for the promoter.
        if (r && r->id == new_id && due) q->may_have_work = true;
      },
      [this, q, new_id, due, done = std::move(done)](Result<Job> r) {
        // Committed: counted before the caller's Retry-After (a replay is not new).
        if (r && r->id == new_id) {
          q->AddQueued(1);
          if (QueueMetrics* m = metrics_.Queue(r->queue)) m->submitted.Add();
          if (!change_observers_.empty()) {
            JobChange change;
            change.id = r->id;
            change.queue = r->queue;
            change.state = r->state;
            change.due = due;
            ReportChange(change);
          }
        }
        done(std::move(r));
      },
      QueueLock(c.name));
}

void Engine::Cancel(const JobId& id, Callback<CancelOutcome> done) {
  Write<CancelOutcome>([this, id](WriteTx& tx) { return tx.Cancel(id, clock_.Now()); },
                       Callback<CancelOutcome>([this, done](Result<CancelOutcome> r) {
                         if (r) {
                           if (r->kind == CancelOutcome::Kind::kSignalled) SignalCancel(r->job.id);
                           if (r->kind == CancelOutcome::Kind::kCanceled) {
                             LeftQueue(r->job);
                             metrics_.CountOutcome(r->job, /*attempt_ended=*/false);
                           }
                           Notify(r->job);
                         }
                         done(std::move(r));
                       }),
                       JobLock(id));
}

void Engine::Retry(const JobId& id, Callback<Job> done) {
  Write<Job>([this, id](WriteTx& tx) { return tx.RetryJob(id, clock_.Now()); },
             Callback<Job>([this, done](Result<Job> r) {
               if (r) {
                 spdlog::info("job={} queue={} retried by request (attempt {} next)", r->id.ToHex(),
                              r->queue, r->attempts + 1);
                 if (QueueState* q = FindQueueState(r->queue)) q->may_have_work = true;
                 Notify(*r);  // queued again: counted, and a waiting lease may take it
                 committer_->Kick();
               }
               done(std::move(r));
             }),
             JobLock(id));
}

void Engine::PurgeQueue(const std::string& queue, std::optional<JobState> state,
                        Callback<int64_t> done) {
  if (!FindQueueState(queue)) {
    done(Error::NotFound(fmt::format("no queue named '{}'", queue)));
    return;
  }
  PurgeBatch(queue, state, 0, std::move(done));
}

void Engine::PurgeBatch(const std::string& queue, std::optional<JobState> state, int64_t purged,
                        Callback<int64_t> done) {
  // One batch per transaction, so that a large purge does not hold up the
  // submits and outcomes committed between its batches.
  Write<std::vector<JobId>>(
      [queue, state](WriteTx& tx) { return tx.DeleteFinished(queue, state, kPurgeBatch); },
      Callback<std::vector<JobId>>(
          [this, queue, state, purged, done](Result<std::vector<JobId>> r) {
            if (!r) return done(std::move(r).error());
            for (const JobId& id : *r) {
              status_cache_.Invalidate(id);
              watchers_.OnState(id, JobState::kCanceled, /*removed=*/true);
              if (!change_observers_.empty()) {
                // The purged job's last state is not known here; `removed` says it all.
                JobChange change;
                change.id = id;
                change.queue = queue;
                change.state = state.value_or(JobState::kSucceeded);
                change.removed = true;
                ReportChange(change);
              }
            }
            const int64_t total = purged + static_cast<int64_t>(r->size());
            if (static_cast<int>(r->size()) == kPurgeBatch) {
              return PurgeBatch(queue, state, total, done);
            }
            spdlog::info("queue={} purged {} finished jobs by request", queue, total);
            done(total);
          }));
}

void Engine::SetPaused(const std::string& queue, bool paused, Callback<bool> done) {
  QueueState* q = FindQueueState(queue);
  if (!q) {
    done(Error::NotFound(fmt::format("no queue named '{}'", queue)));
    return;
  }
  Write<bool>(
      [this, queue, paused](WriteTx& tx) { return tx.SetQueuePaused(queue, paused, clock_.Now()); },
      Callback<bool>([this, q, paused, done](Result<bool> r) {
        if (r) {
          spdlog::info("queue={} {}", q->spec.config.name, paused ? "paused" : "resumed");
          if (!paused) {
            // Its due jobs may be claimed again: look now rather than at the
            // promoter's next turn.
            q->may_have_work = true;
            if (!q->spec.handler) WakeWaiters(q);
            committer_->Kick();
          }
        }
        done(std::move(r));
      }));
}

namespace {
// A finished job's document says when it expires: from that instant on it is
// gone, even while the retention purger has not removed it yet.
bool Expired(const std::optional<UnixMillis>& expires_at, UnixMillis now) {
  return expires_at && *expires_at <= now;
}
}  // namespace

void Engine::Delete(const JobId& id, Callback<CancelOutcome> done) {
  Write<CancelOutcome>([this, id](WriteTx& tx) { return tx.Delete(id, clock_.Now()); },
                       Callback<CancelOutcome>([this, done](Result<CancelOutcome> r) {
                         if (r) {
                           const bool signalled = r->kind == CancelOutcome::Kind::kSignalled;
                           if (signalled) SignalCancel(r->job.id);
                           if (r->kind == CancelOutcome::Kind::kCanceled) {
                             LeftQueue(r->job);
                             metrics_.CountOutcome(r->job, /*attempt_ended=*/false);
                           }
                           Notify(r->job, /*removed=*/!signalled);
                           // Removed, but it had expired already: gone, as
                           // Get says, whether the purger had come or not.
                           if (r->kind == CancelOutcome::Kind::kDeleted &&
                               Expired(r->job.expires_at, clock_.Now())) {
                             return done(JobExpired());
                           }
                         }
                         done(std::move(r));
                       }),
                       JobLock(id));
}

std::optional<Job> Engine::GetCached(const JobId& id) {
  StatusCache::Ticket ticket;
  auto hit = status_cache_.Lookup(id, ticket);
  if (!hit) return std::nullopt;
  if (Expired(hit->expires_at, clock_.Now())) {
    // The store says 410 or, once the tombstone is gone too, 404: ask it.
    status_cache_.Invalidate(id);
    return std::nullopt;
  }
  return *hit;
}

namespace {
// Whether the change feed announces every further change of `job` (see
// Engine::Get): it reports changes of state, of the cancel flag and deletes,
// not progress, leases or callback deliveries.
bool FeedAnnouncesChangesOf(const Job& job) {
  if (job.state == JobState::kQueued) return true;
  if (!IsTerminal(job.state)) return false;
  return !job.callback || job.callback->delivered_at || !job.callback->next_attempt_at;
}
}  // namespace

void Engine::Remember(const StatusCache::Ticket& ticket, const Job& job) {
  if (!ticket.valid || Expired(job.expires_at, clock_.Now())) return;
  if (other_writers_ && !FeedAnnouncesChangesOf(job)) return;
  status_cache_.Fill(ticket, job);
}

Result<Job> Engine::Get(const JobId& id) {
  StatusCache::Ticket ticket;
  if (auto hit = status_cache_.Lookup(id, ticket)) {
    if (!Expired(hit->expires_at, clock_.Now())) return *hit;
    status_cache_.Invalidate(id);  // the store says 410 or, once purged, 404
  }
  auto job = store_->Get(id);
  if (job && Expired(job->expires_at, clock_.Now())) return JobExpired();
  if (job) Remember(ticket, *job);
  return job;
}

Result<StoredPayload> Engine::GetPayload(const JobId& id) {
  auto payload = store_->GetPayload(id);
  if (payload && Expired(payload->expires_at, clock_.Now())) return JobExpired();
  return payload;
}

Result<StoredResult> Engine::GetResult(const JobId& id) {
  auto result = store_->GetResult(id);
  if (result && Expired(result->expires_at, clock_.Now())) return JobExpired();
  return result;
}

Result<JobPage> Engine::List(const ListParams& params) {
  auto page = store_->List(params);
  if (page) {
    // Expired jobs are not listed; the cursor (the last row read) stays valid.
    const UnixMillis now = clock_.Now();
    std::erase_if(page->jobs, [now](const Job& j) { return Expired(j.expires_at, now); });
  }
  return page;
}
Status Engine::Ready() { return store_->Ping(); }

Result<AttemptHistory> Engine::GetAttempts(const JobId& id) {
  auto history = store_->GetAttempts(id);
  if (history && Expired(history->job.expires_at, clock_.Now())) return JobExpired();
  return history;
}

void Engine::Get(const JobId& id, Callback<Job> done) {
  if (reads_inline_) {
    done(Get(id));
    return;
  }
  StatusCache::Ticket ticket;
  if (auto hit = status_cache_.Lookup(id, ticket)) {
    if (!Expired(hit->expires_at, clock_.Now())) {
      done(Job(*hit));
      return;
    }
    status_cache_.Invalidate(id);
  }
  bool post = false;
  {
    std::lock_guard lock(gets_mu_);
    gets_.push_back(PendingGet{id, ticket, std::move(done)});
    post = !std::exchange(gets_posted_, true);
  }
  if (post) asio::post(*readers_, [this] { ReadPendingGets(); });
}

void Engine::ReadPendingGets() {
  std::vector<PendingGet> batch;
  bool more = false;
  {
    std::lock_guard lock(gets_mu_);
    gets_posted_ = false;
    if (gets_.size() <= kMaxReadBatch) {
      batch.swap(gets_);
    } else {
      const auto end = gets_.begin() + static_cast<std::ptrdiff_t>(kMaxReadBatch);
      batch.assign(std::make_move_iterator(gets_.begin()), std::make_move_iterator(end));
      gets_.erase(gets_.begin(), end);
      more = gets_posted_ = true;
    }
  }
  // The rest go to the next free read thread, not after this batch's read.
  if (more) asio::post(*readers_, [this] { ReadPendingGets(); });
  if (batch.empty()) return;
  std::vector<JobId> ids;
  ids.reserve(batch.size());
  for (const PendingGet& g : batch) ids.push_back(g.id);
  std::vector<Result<Job>> jobs = store_->GetMany(ids);
  if (jobs.size() != batch.size()) {
    spdlog::error("the store answered {} jobs for {} ids", jobs.size(), batch.size());
    jobs.assign(batch.size(), Error::Internal("the store answered a batch read wrongly"));
  }
  const UnixMillis now = clock_.Now();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (jobs[i] && Expired(jobs[i]->expires_at, now)) jobs[i] = JobExpired();
    if (jobs[i]) Remember(batch[i].ticket, *jobs[i]);
    batch[i].done(std::move(jobs[i]));
  }
}

void Engine::GetResult(const JobId& id, Callback<StoredResult> done) {
  Read([this, id, done = std::move(done)] { done(GetResult(id)); });
}

void Engine::GetPayload(const JobId& id, Callback<StoredPayload> done) {
  Read([this, id, done = std::move(done)] { done(GetPayload(id)); });
}

void Engine::List(ListParams params, Callback<JobPage> done) {
  Read([this, params = std::move(params), done = std::move(done)] { done(List(params)); });
}

void Engine::GetAttempts(const JobId& id, Callback<AttemptHistory> done) {
  Read([this, id, done = std::move(done)] { done(GetAttempts(id)); });
}

void Engine::Search(ListParams params, Callback<JobPage> done) {
  ReadInBackground(
      [this, params = std::move(params), done = std::move(done)] { done(List(params)); });
}

void Engine::Throughput(UnixMillis since, Millis step, int buckets,
                        Callback<std::vector<QueueThroughput>> done) {
  ReadInBackground([this, since, step, buckets, done = std::move(done)] {
    done(store_->Throughput(since, step, buckets));
  });
}

void Engine::Queues(Callback<std::vector<QueueStatus>> done) {
  Read([this, done = std::move(done)] { done(Queues()); });
}

void Engine::Ready(Callback<void> done) {
  Read([this, done = std::move(done)] { done(Ready()); });
}

void Engine::ScheduleStates(Callback<std::vector<ScheduleState>> done) {
  Read([this, done = std::move(done)] { done(store_->ScheduleStates()); });
}

void Engine::QueueGauges(Callback<std::vector<QueueGauge>> done) {
  // OldestReady scans the ready jobs' index: never on the caller's event
  // loop, even for an embedded store.
  ReadInBackground([this, done = std::move(done)] {
    auto counts = store_->Counts();
    if (!counts) return done(std::move(counts).error());
    auto oldest = store_->OldestReady();
    if (!oldest) return done(std::move(oldest).error());
    auto paused = store_->PausedQueues();
    if (!paused) return done(std::move(paused).error());
    std::vector<QueueGauge> out;
    for (const auto& q : queues_) {
      QueueGauge g;
      g.queue = q->spec.config.name;
      for (const QueueCounts& c : *counts) {
        if (c.queue == g.queue) std::copy(std::begin(c.counts), std::end(c.counts), g.counts);
      }
      for (const QueueValue& o : *oldest) {
        if (o.queue == g.queue) g.oldest_ready_run_at = o.value;
      }
      g.paused = std::find(paused->begin(), paused->end(), g.queue) != paused->end();
      out.push_back(std::move(g));
    }
    done(std::move(out));
  });
}

void Engine::Nodes(Callback<NodeList> done) {
  Read([this, done = std::move(done)] { done(store_->Nodes()); });
}

Result<std::vector<QueueStatus>> Engine::Queues() {
  auto counts = store_->Counts();
  if (!counts) return std::move(counts).error();
  auto paused = store_->PausedQueues();
  if (!paused) return std::move(paused).error();
  std::vector<QueueStatus> out;
  for (auto& q : queues_) {
    QueueStatus s;
    s.config = q->spec.config;
    for (const QueueCounts& c : *counts) {
      if (c.queue == s.config.name) std::copy(std::begin(c.counts), std::end(c.counts), s.counts);
    }
    s.paused = std::find(paused->begin(), paused->end(), s.config.name) != paused->end();
    out.push_back(std::move(s));
  }
  return out;
}

Status Engine::ClaimDue(WriteTx& tx) {
  if (!accepting_.load()) return {};
  const UnixMillis now = clock_.Now();
  BatchClaims& claims = batch_claims_[committer_->current_batch()];
  for (auto& q : queues_) {
    if (!q->spec.handler) {
      // Leased to workers: one claim per waiting lease, oldest first, each
      // with its own lease duration.
      if (!q->may_have_work) continue;
      for (const auto& w : q->waiters) {
        if (w->claiming) continue;
        ClaimParams p{q->spec.config.name, 1, w->owner, now, now + w->lease};
        p.lease_within_timeout = true;
        auto jobs = tx.Claim(p);
        if (!jobs) return std::move(jobs).error();
        if (jobs->empty()) {
          q->may_have_work = false;
          break;
        }
        w->claiming = true;
        claims.leased.emplace_back(w, std::move(jobs->front()));
      }
      continue;
    }
    const int free = q->spec.config.concurrency - q->in_use;
    if (free <= 0 || !q->may_have_work) continue;
    auto jobs = tx.Claim(ClaimParams{q->spec.config.name, free, options_.node_id, now,
                                     now + options_.lease_duration});
    if (!jobs) return std::move(jobs).error();
    if (static_cast<int>(jobs->size()) < free) q->may_have_work = false;
    q->in_use += static_cast<int>(jobs->size());
    for (Job& j : *jobs) claims.claimed.push_back(std::move(j));
  }
  return {};
}

void Engine::AfterCommit(bool committed) {
  // A failed commit may still have reached the store (an fsync error after
  // the write): forget what the batch may have changed.
  if (!committed) status_cache_.InvalidateAll();
  auto node = batch_claims_.extract(committer_->current_batch());
  if (node.empty()) return;  // the batch claimed nothing
  std::vector<std::pair<std::shared_ptr<LeaseWaiter>, Job>> leased;
  leased.swap(node.mapped().leased);
  for (auto& [w, job] : leased) {
    w->claiming = false;
    QueueState* q = FindQueueState(job.queue);
    if (!committed) {
      q->may_have_work = true;  // the claim was rolled back: the job is still there
      continue;
    }
    LeftQueue(job);
    std::erase(q->waiters, w);
    w->answered = true;
    if (w->timer) w->timer->cancel();
    std::string payload = std::move(job.payload);
    job.payload.clear();
    metrics_.CountStart(job);
    Notify(job);  // running (without the payload)
    job.payload = std::move(payload);
    w->done(std::optional<Job>(std::move(job)));
  }
  std::vector<Job> claimed;
  claimed.swap(node.mapped().claimed);
  for (Job& job : claimed) {
    if (committed) {
      LeftQueue(job);
      StartJob(std::move(job));
    } else if (QueueState* q = FindQueueState(job.queue)) {
      --q->in_use;  // the claim was rolled back
      q->may_have_work = true;
    }
  }
}

void Engine::StartJob(Job job) {
  QueueState* q = FindQueueState(job.queue);
  auto rj = std::make_shared<RunningJob>();
  std::string payload = std::move(job.payload);
  job.payload.clear();
  rj->job = std::move(job);
  rj->queue = q;
  rj->ctx = std::make_shared<Context>(this, rj->job.id, rj->job.attempts, rj->job.lease_token);
  rj->ctx->self_ = rj->ctx;
  rj->started = std::chrono::steady_clock::now();
  running_[rj->job.id] = rj;
  metrics_.CountStart(rj->job);
  Notify(rj->job);
  if (rj->job.timeout > 0) {
    rj->timer.emplace(ctx_);
    rj->timer->expires_after(std::chrono::milliseconds(rj->job.timeout));
    rj->timer->async_wait([this, rj](boost::system::error_code ec) {
      if (!ec) OnTimeout(rj);
    });
  }
  asio::post(*workers_, [this, rj, payload = std::move(payload),
                         content_type = rj->job.content_type, handler = q->spec.handler] {
    HandlerOutcome outcome;
    try {
      outcome = handler->Run(payload, content_type, *rj->ctx);
    } catch (const std::exception& e) {
      // The exception's text may hold internals: log it, show a fixed message.
      spdlog::error("job={} handler threw: {}", rj->job.id.ToHex(), e.what());
      outcome = HandlerFailure{"the handler threw an exception", true, "handler_exception"};
    } catch (...) {
      outcome = HandlerFailure{"the handler threw an exception", true, "handler_exception"};
    }
    asio::post(ctx_, [this, rj, outcome = std::move(outcome)]() mutable {
      OnHandlerReturned(rj, std::move(outcome));
    });
  });
}

void Engine::OnHandlerReturned(const std::shared_ptr<RunningJob>& rj, HandlerOutcome outcome) {
  if (rj->timer) rj->timer->cancel();
  // After a timeout the job may already run again here under a new lease.
  if (auto it = running_.find(rj->job.id); it != running_.end() && it->second == rj) {
    running_.erase(it);
  }
  --rj->queue->in_use;
  rj->queue->may_have_work = true;
  rj->queue->run_time.Add(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - rj->started)
                              .count());
  if (rj->outcome_recorded) {
    committer_->Kick();  // the slot is free again
    return;
  }
  rj->outcome_recorded = true;
  const UnixMillis now = clock_.Now();
  const Job& job = rj->job;
  if (auto* ok = std::get_if<HandlerSuccess>(&outcome)) {
    RecordOutcome(rj, AttemptOutcome::Succeeded(job.id, job.lease_token, now, std::move(ok->body),
                                                std::move(ok->content_type)));
    return;
  }
  if (rj->cancel_requested) {
    RecordOutcome(rj, AttemptOutcome::Canceled(job.id, job.lease_token, now));
    return;
  }
  auto& failure = std::get<HandlerFailure>(outcome);
  JobError error{failure.type, failure.message};
  if (!failure.retryable) {
    RecordOutcome(rj, AttemptOutcome::Failed(job.id, job.lease_token, now, std::move(error)));
  } else {
    RecordOutcome(rj, FailureOutcome(job, std::move(error), failure.retry_after));
  }
}

void Engine::OnTimeout(const std::shared_ptr<RunningJob>& rj) {
  if (rj->outcome_recorded) return;
  rj->outcome_recorded = true;
  rj->ctx->Cancel();
  const Job& job = rj->job;
  spdlog::info("job={} queue={} attempt={} timed out after {} ms", job.id.ToHex(), job.queue,
               job.attempts, job.timeout);
  if (rj->cancel_requested) {
    RecordOutcome(rj, AttemptOutcome::Canceled(job.id, job.lease_token, clock_.Now()));
    return;
  }
  RecordOutcome(rj, FailureOutcome(
                        job, JobError{"timeout", fmt::format("attempt {} timed out after {} s",
                                                             job.attempts, job.timeout / 1000.0)}));
}

AttemptOutcome Engine::FailureOutcome(const Job& job, JobError error,
                                      std::optional<Millis> retry_after) {
  const UnixMillis now = clock_.Now();
  if (job.attempts >= job.max_attempts) {
    return AttemptOutcome::Failed(job.id, job.lease_token, now, std::move(error));
  }
  QueueState* q = FindQueueState(job.queue);
  const BackoffPolicy backoff = q ? q->spec.config.backoff : BackoffPolicy{};
  // The handler's word (a backend's Retry-After) wins over the backoff, but
  // never delays past the queue's longest backoff.
  const Millis delay = retry_after ? std::clamp<Millis>(*retry_after, 0, backoff.max)
                                   : BackoffDelay(backoff, job.attempts);
  return AttemptOutcome::Retry(job.id, job.lease_token, now, now + delay, std::move(error));
}

void Engine::RecordOutcome(const std::shared_ptr<RunningJob>& rj, AttemptOutcome outcome) {
  const JobId outcome_id = outcome.id;
  Write<Job>([outcome = std::move(outcome)](WriteTx& tx) { return tx.Finish(outcome); },
             Callback<Job>([this, id = rj->job.id](Result<Job> r) {
               if (r) {
                 spdlog::debug("job={} queue={} state={} attempts={}", id.ToHex(), r->queue,
                               ToString(r->state), r->attempts);
                 metrics_.CountOutcome(*r);
                 Notify(*r);
               } else if (r.error().code == ErrorCode::kStaleLease ||
                          r.error().code == ErrorCode::kNotFound) {
                 spdlog::info("job={} outcome discarded: {}", id.ToHex(), r.error().message);
               } else {
                 // The lease will expire and the rescuer will retry the job.
                 spdlog::error("job={} outcome not recorded: {}", id.ToHex(), r.error().message);
               }
             }),
             JobLock(outcome_id));
}

void Engine::SignalCancel(const JobId& id) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  it->second->cancel_requested = true;
  it->second->ctx->Cancel();
}

Millis Engine::LeaseDuration(const QueueConfig& queue) const {
  return queue.lease_duration > 0 ? queue.lease_duration : options_.lease_duration;
}

void Engine::Lease(LeaseRequest req, Callback<std::optional<Job>> done) {
  if (!accepting_.load()) {
    done(Error::Unavailable("lease while shutting down", "the server is shutting down"));
    return;
  }
  QueueState* q = FindQueueState(req.queue);
  if (!q) {
    done(Error::NotFound(fmt::format("no queue named '{}'", req.queue)));
    return;
  }
  if (q->spec.handler) {
    done(Error::Conflict(fmt::format(
        "queue '{}' runs its jobs in-process (handler \"{}\"); only queues with handler = "
        "\"external\" hand jobs out to workers",
        req.queue, q->spec.config.handler)));
    return;
  }
  auto w = std::make_shared<LeaseWaiter>();
  w->lease = req.lease > 0 ? req.lease : LeaseDuration(q->spec.config);
  w->owner = std::move(req.owner);
  w->done = std::move(done);
  asio::post(ctx_, [this, q, w, wait = req.wait] {
    if (!accepting_.load()) {
      w->answered = true;
      w->done(Error::Unavailable("lease while shutting down", "the server is shutting down"));
      return;
    }
    q->waiters.push_back(w);
    w->timer.emplace(ctx_);
    w->timer->expires_after(std::chrono::milliseconds(wait));
    w->timer->async_wait([this, q, w](boost::system::error_code) {
      // A claim in flight decides for itself (AfterCommit).
      if (w->answered || w->claiming) return;
      w->answered = true;
      std::erase(q->waiters, w);
      w->done(std::optional<Job>());
    });
    // One look at the store unless a claim already found the queue empty
    // since the last wake-up: waiting costs no reads.
    if (q->may_have_work) committer_->Kick();
  });
}

void Engine::WakeWaiters(QueueState* q) {
  q->may_have_work = true;
  if (!q->waiters.empty()) committer_->Kick();
}

void Engine::FailWaiters(const Error& error) {
  for (auto& q : queues_) {
    auto waiters = std::move(q->waiters);
    q->waiters.clear();
    for (auto& w : waiters) {
      if (w->answered || w->claiming) continue;
      w->answered = true;
      if (w->timer) w->timer->cancel();
      w->done(error);
    }
  }
}

void Engine::Heartbeat(const LeaseRef& lease, Millis duration, std::optional<Progress> progress,
                       Callback<HeartbeatResult> done) {
  const bool reports_progress = progress.has_value();
  Write<HeartbeatResult>(
      [this, lease, duration, progress = std::move(progress)](WriteTx& tx) {
        const UnixMillis now = clock_.Now();
        return tx.Heartbeat(lease, now + duration, now, progress);
      },
      Callback<HeartbeatResult>(
          [this, id = lease.id, reports_progress, done](Result<HeartbeatResult> r) {
            if (r) status_cache_.Invalidate(id);  // the lease, perhaps the progress
            if (r && reports_progress) watchers_.OnProgress(id);
            done(std::move(r));
          }),
      JobLock(lease.id));
}

void Engine::CompleteLease(const LeaseRef& lease, std::string body, std::string content_type,
                           Callback<Job> done) {
  RecordWorkerOutcome(AttemptOutcome::Succeeded(lease.id, lease.lease_token, clock_.Now(),
                                                std::move(body), std::move(content_type)),
                      std::move(done));
}

void Engine::FailLease(const LeaseRef& lease, WorkerFailure failure, Callback<Job> done) {
  // The attempt count decides between a retry and the end: read it (the
  // token fences the write, so the count cannot change in between). Called
  // on an event loop: the read goes where reads go.
  Read([this, lease, failure = std::move(failure), done = std::move(done)]() mutable {
    auto job = store_->Get(lease.id);
    if (!job) {
      done(std::move(job).error());
      return;
    }
    if (job->state != JobState::kRunning || job->lease_token != lease.lease_token) {
      done(Error::StaleLease(fmt::format("job {} is {} with lease token {}, not {}",
                                         lease.id.ToHex(), ToString(job->state), job->lease_token,
                                         lease.lease_token)));
      return;
    }
    const UnixMillis now = clock_.Now();
    AttemptOutcome outcome =
        failure.retryable
            ? FailureOutcome(*job, std::move(failure.error), failure.retry_after)
            : AttemptOutcome::Failed(lease.id, lease.lease_token, now, std::move(failure.error));
    RecordWorkerOutcome(std::move(outcome), std::move(done));
  });
}

void Engine::ReleaseLease(const LeaseRef& lease, Callback<Job> done) {
  Write<Job>([this, lease](WriteTx& tx) { return tx.ReleaseLease(lease, clock_.Now()); },
             Callback<Job>([this, done](Result<Job> r) {
               if (r) {
                 // Given back: not an outcome, unless a cancel was waiting for it.
                 if (r->state == JobState::kCanceled) metrics_.CountOutcome(*r, false);
                 Notify(*r);
               }
               done(std::move(r));
             }),
             JobLock(lease.id));
}

void Engine::RecordWorkerOutcome(AttemptOutcome outcome, Callback<Job> done) {
  const JobId outcome_id = outcome.id;
  Write<Job>([outcome = std::move(outcome)](WriteTx& tx) { return tx.Finish(outcome); },
             Callback<Job>([this, done](Result<Job> r) {
               if (r) {
                 metrics_.CountOutcome(*r);
                 Notify(*r);
               }
               done(std::move(r));
             }),
             JobLock(outcome_id));
}

void Engine::LeftQueue(const Job& job) {
  if (QueueState* q = FindQueueState(job.queue)) q->AddQueued(-1);
}

void Engine::Notify(const Job& job, bool removed) {
  // First: whoever hears of the change below must not poll the old state.
  status_cache_.Invalidate(job.id);
  // Retried or rescued: queued again (see QueueState::queued_count).
  if (job.state == JobState::kQueued) {
    if (QueueState* q = FindQueueState(job.queue)) {
      q->AddQueued(1);
      if (!q->spec.handler) WakeWaiters(q);
    }
  }
  watchers_.OnChange(job, removed);
  for (const Observer& observer : observers_) observer(job);
  if (!change_observers_.empty()) {
    JobChange change;
    change.id = job.id;
    change.queue = job.queue;
    change.state = job.state;
    change.cancel_requested = job.cancel_requested;
    change.removed = removed;
    ReportChange(change);
  }
  // Just turned terminal with a callback: its delivery became due in this commit.
  if (!removed && job.callback && job.callback->attempts == 0 && IsTerminal(job.state)) {
    DispatchCallbacks();
  }
}

void Engine::DispatchCallbacks() {
  if (!callback_sender_ || stopped_.load()) return;
  if (callback_claim_pending_) {
    callback_rerun_ = true;
    return;
  }
  const CallbackPolicy& policy = options_.callbacks;
  const int free = policy.concurrency - callbacks_in_flight_;
  if (free <= 0) return;  // OnCallbackSent dispatches again as slots free up
  callback_claim_pending_ = true;
  const UnixMillis now = clock_.Now();
  // The lease outlives the attempt: a delivery is re-sent only if this node
  // stopped before recording it.
  const UnixMillis lease_until = now + 2 * policy.timeout + options_.lease_duration;
  Write<std::vector<Job>>(
      [now, free, lease_until](WriteTx& tx) { return tx.ClaimCallbacks(now, free, lease_until); },
      Callback<std::vector<Job>>([this, free](Result<std::vector<Job>> r) {
        callback_claim_pending_ = false;
        if (!r) {
          spdlog::error("claiming due callbacks failed: {}", r.error().message);
          return;
        }
        for (Job& job : *r) {
          status_cache_.Invalidate(job.id);  // next_attempt_at: the delivery's lease
          ++callbacks_in_flight_;
          callback_sender_->Send(job, [this, job](CallbackResponse response) {
            asio::post(ctx_, [this, job, response = std::move(response)]() mutable {
              OnCallbackSent(job, std::move(response));
            });
          });
        }
        const bool more = static_cast<int>(r->size()) == free;
        if (std::exchange(callback_rerun_, false) || more) DispatchCallbacks();
      }));
}

void Engine::OnCallbackSent(const Job& job, CallbackResponse response) {
  --callbacks_in_flight_;
  const int attempt = job.callback->attempts + 1;
  const CallbackPolicy& policy = options_.callbacks;
  const UnixMillis now = clock_.Now();
  const std::string& url = job.callback->url;
  const auto status = response.http_status;
  // ClaimCallbacks returned the job with next_attempt_at = its lease.
  const UnixMillis lease = job.callback->next_attempt_at.value_or(0);
  CallbackAttempt record;
  if (status && *status >= 200 && *status < 300) {
    spdlog::info("job={} callback delivered to {} (attempt {}, status {})", job.id.ToHex(), url,
                 attempt, *status);
    record = CallbackAttempt::Delivered(job.id, lease, now, *status);
    metrics_.callbacks_delivered.Add();
  } else {
    const std::string why =
        status ? fmt::format("status {}", *status) : fmt::format("error: {}", response.error);
    if (attempt >= policy.max_attempts) {
      spdlog::error("job={} callback to {} failed (attempt {}, {}); giving up", job.id.ToHex(), url,
                    attempt, why);
      record = CallbackAttempt::GaveUp(job.id, lease, now, status, std::move(response.error));
      metrics_.callbacks_gave_up.Add();
    } else {
      const UnixMillis next = now + BackoffDelay(policy.backoff, attempt);
      spdlog::warn("job={} callback to {} failed (attempt {}, {}); next attempt in {} ms",
                   job.id.ToHex(), url, attempt, why, next - now);
      record = CallbackAttempt::Retry(job.id, lease, now, status, std::move(response.error), next);
      metrics_.callbacks_retrying.Add();
    }
  }
  const JobId record_id = record.id;
  Write<Job>([record = std::move(record)](WriteTx& tx) { return tx.RecordCallbackAttempt(record); },
             Callback<Job>([this](Result<Job> r) {
               if (r) {
                 Notify(*r);
               } else if (r.error().code == ErrorCode::kStaleLease) {
                 // This attempt outlived its lease and the delivery was claimed
                 // again (here or elsewhere); that claim records its own outcome.
                 spdlog::warn("callback attempt not recorded: {}", r.error().message);
               } else if (r.error().code != ErrorCode::kNotFound) {  // deleted meanwhile: fine
                 spdlog::error("recording a callback attempt failed: {}", r.error().message);
               }
             }),
             JobLock(record_id));
  DispatchCallbacks();  // a slot is free
}

void Engine::ScheduleHousekeeping() {
  const UnixMillis now = clock_.Now();
  const UnixMillis next = housekeeping_.RunDue(now);
  const Millis wait = std::clamp<Millis>(next - now, kMinHousekeepingTick, kMaxHousekeepingTick);
  housekeeping_timer_->expires_after(std::chrono::milliseconds(wait));
  housekeeping_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) ScheduleHousekeeping();
  });
}

void Engine::AddHousekeepingTasks() {
  const UnixMillis now = clock_.Now();
  const Millis lease = options_.lease_duration;

  // Jobs whose node died mid-attempt: their lease ran out without renewal.
  // Workers choose leases down to a second (and a timeout ends theirs), so
  // with external queues the rescuer looks every second at most.
  Millis rescue_interval = std::max<Millis>(lease / 2, 100);
  for (const auto& q : queues_) {
    if (!q->spec.handler) rescue_interval = std::min<Millis>(rescue_interval, 1'000);
  }
  housekeeping_.Add("lease_rescuer", rescue_interval, now, [this](UnixMillis t) {
    Write<std::vector<Job>>([t](WriteTx& tx) { return tx.RescueExpiredLeases(t, kRescueBatch); },
                            Callback<std::vector<Job>>([this](Result<std::vector<Job>> r) {
                              if (!r) {
                                spdlog::error("lease rescue failed: {}", r.error().message);
                                return;
                              }
                              metrics_.leases_expired.Add(r->size());
                              for (const Job& j : *r) {
                                spdlog::warn("job={} queue={} lease expired; now {}", j.id.ToHex(),
                                             j.queue, ToString(j.state));
                                if (j.state == JobState::kQueued) metrics_.leases_rescued.Add();
                                metrics_.CountOutcome(j, /*attempt_ended=*/false);
                                if (QueueState* q = FindQueueState(j.queue))
                                  q->may_have_work = true;
                                Notify(j);
                              }
                              if (!r->empty()) committer_->Kick();
                            }));
    return std::string();
  });

  // Renews the leases of the attempts running here, well before they expire,
  // and picks up cancel requests for them that reached the store through
  // another node. Only attempts still running here are renewed: a job whose
  // outcome could not be written keeps its old lease, so it expires and the
  // rescuer retries it (at-least-once) instead of staying running forever.
  housekeeping_.Add(
      "lease_renewer", std::max<Millis>(lease / 3, 50), now + lease / 3,
      [this, lease](UnixMillis t) {
        std::vector<LeaseRef> leases;
        for (const auto& [id, rj] : running_) {
          if (!rj->outcome_recorded) leases.push_back(LeaseRef{id, rj->job.lease_token});
        }
        if (leases.empty()) return std::string();
        std::vector<JobId> ids;
        ids.reserve(leases.size());
        for (const LeaseRef& l : leases) ids.push_back(l.id);
        Write<LeaseRenewal>(
            [leases = std::move(leases), t, lease](WriteTx& tx) {
              return tx.ExtendLeases(leases, t + lease, t);
            },
            Callback<LeaseRenewal>([this, ids = std::move(ids)](Result<LeaseRenewal> r) {
              // Their leases (Job::lease_expires_at) moved.
              if (r) {
                for (const JobId& id : ids) status_cache_.Invalidate(id);
              }
              if (!r) {
                spdlog::error("lease renewal failed: {}", r.error().message);
                return;
              }
              for (const JobId& id : r->cancel_requested) {
                auto it = running_.find(id);
                if (it != running_.end() && !it->second->cancel_requested) SignalCancel(id);
              }
              for (const JobId& id : r->lost) {
                auto it = running_.find(id);
                if (it == running_.end() || it->second->outcome_recorded) continue;
                // Another node may already run it again: this attempt's
                // outcome would be fenced off anyway, so stop the handler.
                spdlog::warn("job={} lost its lease; stopping the local attempt", id.ToHex());
                it->second->outcome_recorded = true;
                it->second->ctx->Cancel();
              }
            }));
        return std::string();
      });

  // This node in the store's node list (GET /v1/nodes): a heartbeat, which
  // also forgets nodes gone for a day. A failed beat is logged; the next
  // one tries again.
  housekeeping_.Add("node_heartbeat", options_.node_heartbeat_interval, now, [this](UnixMillis t) {
    Write<bool>(
        [this, t](WriteTx& tx) -> Result<bool> {
          if (auto st = tx.TouchNode(options_.node_id, started_at_, t, t - kNodeForgetAfter); !st) {
            return st.error();
          }
          return true;
        },
        Callback<bool>([](Result<bool> r) {
          if (!r) spdlog::warn("node heartbeat failed: {}", r.error().message);
        }));
    return std::string();
  });

  // Delayed and backed-off jobs become due with no event to announce it, and
  // other nodes' submits are invisible here: make due jobs claimable, and let
  // every queue with free slots look for work.
  housekeeping_.Add("delayed_promoter", options_.promote_interval, now, [this](UnixMillis t) {
    if (!accepting_.load()) return std::string();
    Write<std::vector<std::string>>(
        [t](WriteTx& tx) { return tx.PromoteDueJobs(t, kPromoteBatch); },
        Callback<std::vector<std::string>>([](Result<std::vector<std::string>> r) {
          if (!r) spdlog::error("delayed-job promotion failed: {}", r.error().message);
        }));
    for (auto& q : queues_) {
      if (q->spec.handler ? q->in_use < q->spec.config.concurrency : !q->waiters.empty()) {
        q->may_have_work = true;
      }
    }
    committer_->Kick();
    // Queue lengths for the Retry-After estimate (a read of a few rows), off
    // the engine thread, one at a time.
    if (!counts_pending_) {
      counts_pending_ = true;
      ReadInBackground([this] {
        auto counts = store_->Counts();
        asio::post(ctx_, [this, counts = std::move(counts)] {
          counts_pending_ = false;
          if (!counts) return;
          for (const QueueCounts& c : *counts) {
            if (QueueState* q = FindQueueState(c.queue)) {
              q->queued_count = c.counts[static_cast<int>(JobState::kQueued)];
            }
          }
        });
      });
    }
    return std::string();
  });

  // Without a live change feed, long-polls and event streams waiting here
  // would not hear of other nodes' changes to their jobs.
  if (WatchPollInterval() > 0) {
    housekeeping_.Add("watch_poller", WatchPollInterval(), now, [this](UnixMillis) {
      if (!feed_live_.load()) PollWatched();
      return std::string();
    });
  }

  // Callback deliveries that no local commit announced: retries whose backoff
  // ran out, jobs finished by other nodes, deliveries pending at start-up.
  housekeeping_.Add("callback_dispatcher", options_.callbacks.poll_interval, now,
                    [this](UnixMillis) {
                      DispatchCallbacks();
                      return std::string();
                    });

  // Schedules: a timed task, woken at each schedule's next tick.
  if (!schedules_.empty()) {
    schedule_runner_.emplace(schedules_);
    housekeeping_.AddTimed(kSchedulerTask, now, [this](UnixMillis t) { return RunScheduler(t); });
  }

  // Terminal jobs past their retention, with their results.
  housekeeping_.Add("retention_purger", options_.purge_interval, now, [this](UnixMillis t) {
    Write<std::vector<QueueValue>>(
        [this, t](WriteTx& tx) {
          return tx.PurgeExpired(t, kPurgeBatch, options_.tombstone_retention);
        },
        Callback<std::vector<QueueValue>>([this](Result<std::vector<QueueValue>> r) {
          if (!r) {
            spdlog::error("retention purge failed: {}", r.error().message);
            return;
          }
          int64_t total = 0;
          for (const QueueValue& q : *r) {
            total += q.value;
            if (QueueMetrics* m = metrics_.Queue(q.queue)) m->expired.Add(q.value);
          }
          if (total > 0) spdlog::info("housekeeping task=retention_purger purged {} jobs", total);
        }));
    return std::string();
  });
}

UnixMillis Engine::RunScheduler(UnixMillis now) {
  // Shutting down: no new jobs.
  if (!accepting_.load()) return now + kScheduleStatesRetry;
  if (!schedule_runner_->started()) {
    // Where each schedule stopped (shared by every node): read once, off
    // the engine thread; OnScheduleStates then moves this task's next run.
    if (!schedule_states_pending_) {
      schedule_states_pending_ = true;
      ReadInBackground([this] {
        auto states = store_->ScheduleStates();
        asio::post(ctx_, [this, states = std::move(states)]() mutable {
          OnScheduleStates(std::move(states));
        });
      });
    }
    return now + kScheduleStatesRetry;  // the retry, should the read fail
  }
  ApplyScheduleStep(schedule_runner_->Due(now));
  return schedule_runner_->NextWake().value_or(kNever);
}

void Engine::OnScheduleStates(Result<std::vector<ScheduleState>> states) {
  schedule_states_pending_ = false;
  if (!states) {
    spdlog::error("schedules: reading their last fires failed (retrying): {}",
                  states.error().message);
    return;
  }
  if (!accepting_.load() || schedule_runner_->started()) return;
  const UnixMillis now = clock_.Now();
  ScheduleRunner::Step step = schedule_runner_->Start(now, *states);
  for (const ScheduleConfig& s : schedules_) {
    auto next = NextTick(s, now);
    spdlog::info("schedule={} cron=\"{}\" timezone={} queue={} on_missed={} next fire {}", s.name,
                 s.cron->ToString(), s.zone.name(), s.queue, ToString(s.on_missed),
                 next ? FormatRfc3339(*next) : std::string("never"));
  }
  ApplyScheduleStep(step);
  housekeeping_.SetNextRun(kSchedulerTask, schedule_runner_->NextWake().value_or(kNever));
  schedules_started_ = true;
}

void Engine::ApplyScheduleStep(const ScheduleRunner::Step& step) {
  for (const ScheduleRunner::Missed& m : step.missed) {
    const ScheduleConfig& s = schedules_[m.schedule];
    if (ScheduleMetrics* sm = metrics_.Schedule(s.name))
      sm->missed.Add(static_cast<uint64_t>(m.ticks));
    spdlog::warn("schedule={} missed {} tick(s) (on_missed={})", s.name, m.ticks,
                 ToString(s.on_missed));
  }
  for (const ScheduleRunner::Fire& f : step.fires) FireTick(f);
}

void Engine::FireTick(const ScheduleRunner::Fire& fire) {
  const ScheduleConfig& s = schedules_[fire.schedule];
  ScheduleMetrics* sm = metrics_.Schedule(s.name);
  QueueState* q = FindQueueState(s.queue);
  if (!q) {
    spdlog::error("schedule={}: no queue named '{}' here; tick {} made no job", s.name, s.queue,
                  FormatRfc3339(fire.tick));
    if (sm) sm->missed.Add();
    return;
  }
  const QueueConfig& c = q->spec.config;
  const UnixMillis now = clock_.Now();
  ScheduleFire f;
  f.schedule = s.name;
  f.tick = fire.tick;
  NewJob& n = f.job;
  n.id = JobId::New(now);
  n.queue = c.name;
  n.payload = s.payload;
  n.content_type = s.content_type;
  n.max_attempts = c.max_attempts;
  n.timeout = c.timeout;
  n.retention = c.retention;
  n.max_depth = c.max_depth;
  n.now = now;
  n.run_at = now;
  // Ordered after the queue's inserts (see FireSchedule): the job's insert
  // takes the queue's lock, then the fire record's.
  std::string order = QueueLock(c.name) + '\x01' + s.name;
  Write<Job>(
      [f = std::move(f)](WriteTx& tx) { return tx.FireSchedule(f); },
      Callback<Job>([this, q, sm, name = s.name, tick = fire.tick,
                     catch_up = fire.catch_up](Result<Job> r) {
        if (r) {
          if (sm) sm->fires.Add();
          q->AddQueued(1);
          q->may_have_work = true;
          if (!q->spec.handler) WakeWaiters(q);
          committer_->Kick();
          spdlog::info("schedule={} fired tick {}{}: job={} queue={}", name, FormatRfc3339(tick),
                       catch_up ? " (missed while down: run_once)" : "", r->id.ToHex(), r->queue);
          return;
        }
        if (r.error().code == ErrorCode::kConflict) {
          spdlog::debug("schedule={} tick {}: {}", name, FormatRfc3339(tick), r.error().message);
          return;
        }
        if (sm) sm->missed.Add();
        spdlog::log(
            r.error().code == ErrorCode::kQueueFull ? spdlog::level::warn : spdlog::level::err,
            "schedule={} tick {} made no job: {}", name, FormatRfc3339(tick), r.error().message);
      }),
      std::move(order));
}

Millis Engine::WatchPollInterval() const {
  return options_.watch_poll_interval.value_or(store_->RemoteCalls() ? kDefaultWatchPollInterval
                                                                     : 0);
}

std::string Engine::PollingSummary() const {
  return fmt::format(
      "claims look every {} ms, cancels of attempts running here are seen every {} ms, jobs "
      "watched by long-polls and event streams are re-read every {}",
      options_.promote_interval, std::max<Millis>(options_.lease_duration / 3, 50),
      WatchPollInterval() > 0 ? fmt::format("{} ms", WatchPollInterval())
                              : std::string("never (watch_poll_interval is 0 or unset)"));
}

void Engine::OnRemoteChanges(const std::vector<JobChange>& changes) {
  bool kick = false;
  for (const JobChange& c : changes) {
    if (c.due && !c.removed) {
      // Work for this node's idle capacity: look now, not at the next promotion.
      if (QueueState* q = FindQueueState(c.queue)) {
        q->may_have_work = true;
        if (q->spec.handler ? q->in_use < q->spec.config.concurrency : !q->waiters.empty()) {
          kick = true;
        }
      }
    }
    if (c.cancel_requested) {
      // Requested through another node for an attempt running here.
      auto it = running_.find(c.id);
      if (it != running_.end() && !it->second->cancel_requested) SignalCancel(c.id);
    }
    // Watchers re-read the job themselves: the change is only a wake-up.
    watchers_.OnState(c.id, c.state, c.removed);
    ReportChange(c);
  }
  if (kick && accepting_.load()) committer_->Kick();
}

void Engine::OnFeedState(bool live) {
  if (live == feed_live_.load()) {
    // A feed that does not come up at all (NOTIFY does not reach us).
    if (!live && !feed_down_logged_) {
      spdlog::warn("change feed unavailable: polling the store until it is live ({})",
                   PollingSummary());
      feed_down_logged_ = true;
    }
    return;
  }
  feed_live_ = live;
  if (!live) {
    spdlog::warn("change feed interrupted: polling the store until it is back ({})",
                 PollingSummary());
    feed_down_logged_ = true;
    return;
  }
  spdlog::info(feed_down_logged_ ? "change feed live again" : "change feed live");
  feed_down_logged_ = false;
  // Changes may have been missed meanwhile: look for work and at watched jobs now.
  for (auto& q : queues_) q->may_have_work = true;
  if (accepting_.load()) committer_->Kick();
  PollWatched();
}

void Engine::PollWatched() {
  if (watch_poll_pending_) return;
  std::vector<JobId> ids = watchers_.Ids();
  if (ids.empty()) {
    watch_seen_.clear();
    return;
  }
  watch_poll_pending_ = true;
  ReadInBackground([this, ids = std::move(ids)] {
    std::vector<std::pair<JobId, Result<Job>>> jobs;
    jobs.reserve(ids.size());
    for (size_t from = 0; from < ids.size(); from += kMaxReadBatch) {
      const size_t to = std::min(ids.size(), from + kMaxReadBatch);
      const std::vector<JobId> chunk(ids.begin() + static_cast<std::ptrdiff_t>(from),
                                     ids.begin() + static_cast<std::ptrdiff_t>(to));
      std::vector<Result<Job>> got = store_->GetMany(chunk);
      const UnixMillis now = clock_.Now();
      for (size_t i = 0; i < chunk.size(); ++i) {
        Result<Job> job =
            i < got.size() ? std::move(got[i]) : Result<Job>(Error::Internal("short batch read"));
        if (job && Expired(job->expires_at, now)) job = JobExpired();
        jobs.emplace_back(chunk[i], std::move(job));
      }
    }
    asio::post(ctx_, [this, jobs = std::move(jobs)]() mutable { OnWatchPoll(std::move(jobs)); });
  });
}

void Engine::OnWatchPoll(std::vector<std::pair<JobId, Result<Job>>> jobs) {
  watch_poll_pending_ = false;
  std::unordered_map<JobId, JobVersion, JobIdHash> seen;
  for (auto& [id, job] : jobs) {
    auto last = watch_seen_.find(id);
    if (!job) {
      const ErrorCode code = job.error().code;
      if (code == ErrorCode::kNotFound || code == ErrorCode::kGone) {
        watchers_.OnState(id, JobState::kCanceled, /*removed=*/true);
      } else if (last != watch_seen_.end()) {
        seen.emplace(id, last->second);  // the store failed: look again next time
      }
      continue;
    }
    const JobVersion version{job->state, job->attempts, job->updated_at, job->cancel_requested};
    // A job seen for the first time may have changed since its watcher read
    // it: wake (a listener re-reads once for nothing at worst).
    if (last == watch_seen_.end() || !(last->second == version)) {
      watchers_.OnState(id, job->state, /*removed=*/false);
    }
    seen.emplace(id, version);
  }
  watch_seen_ = std::move(seen);
}

}  // namespace acceptd
