#include "engine/engine_metrics.h"

#include <algorithm>

namespace acceptd {

using metrics::MetricsText;

QueueMetrics::QueueMetrics(std::string name)
    : queue(std::move(name)),
      run_seconds(metrics::DurationBuckets()),
      wait_seconds(metrics::DurationBuckets()) {}

EngineMetrics::EngineMetrics(const std::vector<std::string>& queues)
    : commit_seconds(metrics::DurationBuckets()), commit_operations(metrics::BatchSizeBuckets()) {
  for (const std::string& q : queues) queues_.push_back(std::make_unique<QueueMetrics>(q));
}

QueueMetrics* EngineMetrics::Queue(std::string_view name) {
  for (auto& q : queues_) {
    if (q->queue == name) return q.get();
  }
  return nullptr;
}

const QueueMetrics* EngineMetrics::Queue(std::string_view name) const {
  for (const auto& q : queues_) {
    if (q->queue == name) return q.get();
  }
  return nullptr;
}

void EngineMetrics::AddSchedule(std::string name) {
  schedules_.push_back(std::make_unique<ScheduleMetrics>(std::move(name)));
}

ScheduleMetrics* EngineMetrics::Schedule(std::string_view name) {
  for (auto& s : schedules_) {
    if (s->schedule == name) return s.get();
  }
  return nullptr;
}

const ScheduleMetrics* EngineMetrics::Schedule(std::string_view name) const {
  for (const auto& s : schedules_) {
    if (s->schedule == name) return s.get();
  }
  return nullptr;
}

namespace {
double Seconds(Millis ms) { return static_cast<double>(std::max<Millis>(ms, 0)) / 1000.0; }
}  // namespace

void EngineMetrics::CountStart(const Job& job) {
  QueueMetrics* q = Queue(job.queue);
  if (!q) return;
  q->started.Add();
  const UnixMillis started = job.attempt_started_at.value_or(job.updated_at);
  q->wait_seconds.Observe(Seconds(started - job.run_at));
}

void EngineMetrics::CountOutcome(const Job& job, bool attempt_ended) {
  QueueMetrics* q = Queue(job.queue);
  if (!q) return;
  switch (job.state) {
    case JobState::kSucceeded:
      q->succeeded.Add();
      break;
    case JobState::kFailed:
      q->failed.Add();
      break;
    case JobState::kCanceled:
      q->canceled.Add();
      break;
    case JobState::kQueued:
      q->retried.Add();
      break;
    case JobState::kRunning:
      return;  // not an outcome
  }
  if (job.error && job.error->type == "timeout" && job.state != JobState::kSucceeded) {
    q->timed_out.Add();
  }
  if (attempt_ended && job.attempt_started_at) {
    q->run_seconds.Observe(Seconds(job.updated_at - *job.attempt_started_at));
  }
}

void EngineMetrics::Write(MetricsText& out) const {
  struct CounterFamily {
    const char* name;
    const char* help;
    metrics::Counter QueueMetrics::*member;
  };
  static constexpr CounterFamily kCounters[] = {
      {"acceptd_jobs_submitted_total",
       "Jobs accepted by this node (202; idempotent replays not "
       "counted).",
       &QueueMetrics::submitted},
      {"acceptd_jobs_started_total",
       "Attempts started by this node's handlers or leased to workers through it.",
       &QueueMetrics::started},
      {"acceptd_jobs_succeeded_total", "Jobs that succeeded, as recorded by this node.",
       &QueueMetrics::succeeded},
      {"acceptd_jobs_failed_total",
       "Jobs that failed for good (attempts spent or not retryable), as recorded by this node.",
       &QueueMetrics::failed},
      {"acceptd_jobs_retried_total",
       "Failed attempts after which the job was queued again, as recorded by this node.",
       &QueueMetrics::retried},
      {"acceptd_jobs_canceled_total", "Jobs that ended canceled, as recorded by this node.",
       &QueueMetrics::canceled},
      {"acceptd_attempts_timed_out_total", "Attempts that ran into their timeout.",
       &QueueMetrics::timed_out},
      {"acceptd_jobs_expired_total",
       "Terminal jobs removed after their retention by this node's purger.",
       &QueueMetrics::expired},
  };
  for (const auto& family : kCounters) {
    out.Family(family.name, "counter", family.help);
    for (const auto& q : queues_) {
      out.Sample(family.name, {{"queue", q->queue}}, ((*q).*(family.member)).Value());
    }
  }
  out.Family("acceptd_job_run_duration_seconds", "histogram",
             "Attempt run time: from the attempt's start to its outcome's commit.");
  for (const auto& q : queues_) {
    out.Histogram("acceptd_job_run_duration_seconds", {{"queue", q->queue}}, q->run_seconds.Read());
  }
  out.Family("acceptd_job_queue_wait_seconds", "histogram",
             "Time a job was ready to run (submitted, delay or backoff over) before its attempt "
             "started.");
  for (const auto& q : queues_) {
    out.Histogram("acceptd_job_queue_wait_seconds", {{"queue", q->queue}}, q->wait_seconds.Read());
  }

  out.Family("acceptd_store_commit_duration_seconds", "histogram",
             "Group commits: from applying a batch to the sync that makes it durable.");
  out.Histogram("acceptd_store_commit_duration_seconds", {}, commit_seconds.Read());
  out.Family("acceptd_store_commit_operations", "histogram",
             "Operations (submits, claims, outcomes, ...) per group commit.");
  out.Histogram("acceptd_store_commit_operations", {}, commit_operations.Read());
  out.Family("acceptd_store_commit_failures_total", "counter",
             "Group commits that failed (rolled back, or their sync failed).");
  out.Sample("acceptd_store_commit_failures_total", {}, commit_failures.Value());

  out.Family("acceptd_leases_expired_total", "counter",
             "Running attempts whose lease ran out without renewal (found by this node).");
  out.Sample("acceptd_leases_expired_total", {}, leases_expired.Value());
  out.Family("acceptd_leases_rescued_total", "counter",
             "Jobs of expired leases queued again for another attempt.");
  out.Sample("acceptd_leases_rescued_total", {}, leases_rescued.Value());

  out.Family("acceptd_callback_attempts_total", "counter",
             "Completion callback delivery attempts by outcome: delivered (2xx), retrying (failed, "
             "another attempt scheduled), gave_up (failed, no attempts left).");
  out.Sample("acceptd_callback_attempts_total", {{"outcome", "delivered"}},
             callbacks_delivered.Value());
  out.Sample("acceptd_callback_attempts_total", {{"outcome", "retrying"}},
             callbacks_retrying.Value());
  out.Sample("acceptd_callback_attempts_total", {{"outcome", "gave_up"}},
             callbacks_gave_up.Value());

  out.Family("acceptd_schedule_fires_total", "counter",
             "Schedule ticks this node fired (each made one job; a tick fired by another node is "
             "counted there).");
  for (const auto& s : schedules_) {
    out.Sample("acceptd_schedule_fires_total", {{"schedule", s->schedule}}, s->fires.Value());
  }
  out.Family("acceptd_schedule_missed_total", "counter",
             "Schedule ticks that made no job when this node was to fire them: missed while no "
             "node ran (on_missed), passed over while late, or refused by a full queue.");
  for (const auto& s : schedules_) {
    out.Sample("acceptd_schedule_missed_total", {{"schedule", s->schedule}}, s->missed.Value());
  }
}

void WriteQueueGauges(const std::vector<QueueGauge>& queues, UnixMillis now, MetricsText& out) {
  out.Family("acceptd_queue_jobs", "gauge", "Jobs in the store by queue and state.");
  for (const QueueGauge& q : queues) {
    for (int s = 0; s < kJobStateCount; ++s) {
      out.Sample("acceptd_queue_jobs",
                 {{"queue", q.queue}, {"state", ToString(static_cast<JobState>(s))}}, q.counts[s]);
    }
  }
  out.Family("acceptd_queue_oldest_ready_job_age_seconds", "gauge",
             "How long the queue's oldest job ready to run has been waiting (0: none waiting).");
  for (const QueueGauge& q : queues) {
    const double age = q.oldest_ready_run_at ? Seconds(now - *q.oldest_ready_run_at) : 0.0;
    out.Sample("acceptd_queue_oldest_ready_job_age_seconds", {{"queue", q.queue}}, age);
  }
  out.Family("acceptd_queue_paused", "gauge", "1 while the queue is paused (no claims), else 0.");
  for (const QueueGauge& q : queues) {
    out.Sample("acceptd_queue_paused", {{"queue", q.queue}}, static_cast<uint64_t>(q.paused));
  }
}

}  // namespace acceptd
