#include "engine/retry_after.h"

#include <algorithm>

namespace acceptd {

Millis EstimateRetryAfter(const RetryAfterInputs& in) {
  Millis wait = 0;
  if (in.avg_run) {
    if (in.state == JobState::kRunning) {
      wait = *in.avg_run - std::max<Millis>(in.now - in.running_since, 0);
    } else {
      const int64_t rounds = in.queued / std::max(in.concurrency, 1) + 1;
      wait = rounds * *in.avg_run;
    }
  }
  if (in.state == JobState::kQueued) wait += std::max<Millis>(in.run_at - in.now, 0);
  return std::clamp(wait, in.min, std::max(in.min, in.max));
}

void RunTimeAverage::Add(Millis duration) {
  const int64_t sample = std::max<Millis>(duration, 0) * 1000;
  const int64_t old = micros_.load();
  const int64_t next =
      old < 0 ? sample : static_cast<int64_t>(old + kWeight * static_cast<double>(sample - old));
  micros_.store(next);  // one writer (the engine thread): no lost update
}

std::optional<Millis> RunTimeAverage::Get() const {
  const int64_t v = micros_.load();
  if (v < 0) return std::nullopt;
  return v / 1000;
}

}  // namespace acceptd
