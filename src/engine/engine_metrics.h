// EngineMetrics: what the engine counts for GET /metrics (docs/operations.md
// lists every metric). Each event is counted where the engine handles it,
// on the engine thread, after the store committed it; scrapes read from any
// thread (core/metrics.h).
//
// Counters are this node's: with several nodes on one store, each counts
// the submits it accepted, the attempts it ran or leased out, the outcomes
// it recorded, the leases it rescued and the jobs it purged; Prometheus sums
// them across nodes. The depth gauges (jobs by state, oldest ready job) are
// the store's, the same on every node (see WriteQueueGauges).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/job.h"
#include "core/metrics.h"

namespace acceptd {

struct QueueMetrics {
  explicit QueueMetrics(std::string name);

  const std::string queue;
  metrics::Counter submitted;  // jobs accepted (202), idempotent replays not counted
  metrics::Counter started;    // attempts started here or leased to a worker through here
  metrics::Counter succeeded;
  metrics::Counter failed;     // ended failed: attempts spent, or not retryable
  metrics::Counter retried;    // an attempt failed and the job was queued again
  metrics::Counter canceled;   // ended canceled (queued, or its attempt stopped)
  metrics::Counter timed_out;  // attempts that ran into their timeout
  metrics::Counter expired;    // terminal jobs removed after their retention
  // From the attempt's start to its outcome's commit.
  metrics::Histogram run_seconds;
  // From when a job could run (run_at: its submit, delay or backoff) to its
  // attempt's start.
  metrics::Histogram wait_seconds;
};

// One schedule's ticks as this node saw them (ScheduleRunner): the ticks it
// fired (each made a job: a tick another node fired is not counted here),
// and the ticks that made no job when this node was to fire them (missed
// while no node ran, passed over while late, or refused by a full queue).
struct ScheduleMetrics {
  explicit ScheduleMetrics(std::string name) : schedule(std::move(name)) {}
  const std::string schedule;
  metrics::Counter fires;
  metrics::Counter missed;
};

class EngineMetrics {
 public:
  explicit EngineMetrics(const std::vector<std::string>& queues);

  // Null for a queue this engine was not configured with.
  QueueMetrics* Queue(std::string_view name);
  // Before the engine starts (scrapes read the list without a lock).
  void AddSchedule(std::string name);
  // Null for a schedule this engine was not configured with.
  ScheduleMetrics* Schedule(std::string_view name);
  const ScheduleMetrics* Schedule(std::string_view name) const;
  const QueueMetrics* Queue(std::string_view name) const;

  // An outcome the store recorded: `job` after the change (queued again:
  // retried). `attempt_ended`: the change ended an attempt that ran until
  // now (its run time is observed); false for a queued job canceled, or an
  // expired lease rescued (its attempt's end is unknown).
  void CountOutcome(const Job& job, bool attempt_ended = true);
  // An attempt began (claimed for a handler here, or leased to a worker).
  void CountStart(const Job& job);

  // Group commit: one observation per batch.
  metrics::Histogram commit_seconds;     // from applying the batch to its sync returning
  metrics::Histogram commit_operations;  // operations in the batch
  metrics::Counter commit_failures;      // batches that failed (rolled back or sync failed)

  metrics::Counter leases_expired;  // attempts whose lease ran out (found by the rescuer)
  metrics::Counter leases_rescued;  // of those, jobs queued again for another attempt

  // Completion callbacks, by outcome of each delivery attempt.
  metrics::Counter callbacks_delivered;  // a 2xx answer
  metrics::Counter callbacks_retrying;   // failed; another attempt is scheduled
  metrics::Counter callbacks_gave_up;    // failed; no attempts left

  // Every counter and histogram above, in the text format.
  void Write(metrics::MetricsText& out) const;

 private:
  std::vector<std::unique_ptr<QueueMetrics>> queues_;
  std::vector<std::unique_ptr<ScheduleMetrics>> schedules_;
};

// Job counts by queue and state, and the age of each queue's oldest ready
// job, as the store reports them (`oldest_ready_run_at`: unset when none).
struct QueueGauge {
  std::string queue;
  int64_t counts[kJobStateCount] = {};
  std::optional<UnixMillis> oldest_ready_run_at;
  bool paused = false;
};
void WriteQueueGauges(const std::vector<QueueGauge>& queues, UnixMillis now,
                      metrics::MetricsText& out);

}  // namespace acceptd
