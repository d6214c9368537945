// The honest Retry-After: when a pending job is likely to be done, from its
// place in its queue, the queue's concurrency and its recent run times.
// Pure logic; the engine feeds it a snapshot.
//
//   queued:  wait = max(run_at - now, 0) + (queued / concurrency + 1) * avg_run
//   running: wait = avg_run - running_for
// clamped to [min, max]. `queued` counts the queue's queued jobs (an upper
// bound on the jobs ahead: the exact position would cost a scan per poll).
// Without run-time history yet, `min` is the answer (plus any delay).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "core/clock.h"
#include "core/job.h"

namespace acceptd {

struct RetryAfterInputs {
  JobState state = JobState::kQueued;
  UnixMillis now = 0;
  UnixMillis run_at = 0;         // queued: not claimed before this
  UnixMillis running_since = 0;  // running: when the attempt started (about)
  int64_t queued = 0;            // queued jobs in the job's queue
  int concurrency = 1;
  std::optional<Millis> avg_run;  // recent mean attempt duration, if known
  Millis min = 1'000;
  Millis max = 60'000;
};

Millis EstimateRetryAfter(const RetryAfterInputs& in);

// A per-queue running mean of attempt durations (exponentially weighted, so
// it follows changes in the work). Thread-safe: written by the engine thread,
// read by I/O threads.
class RunTimeAverage {
 public:
  void Add(Millis duration);
  std::optional<Millis> Get() const;

 private:
  static constexpr double kWeight = 0.2;  // of the newest sample
  std::atomic<int64_t> micros_{-1};       // -1: no sample yet
};

}  // namespace acceptd
