#include "engine/periodic_executor.h"

#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

namespace acceptd {

void PeriodicExecutor::Add(std::string name, Millis interval, UnixMillis first_run, TaskFn fn) {
  info_.push_back(TaskInfo{std::move(name), std::max<Millis>(interval, 1), first_run, 0, {}});
  fns_.push_back(std::move(fn));
  timed_.emplace_back();
}

void PeriodicExecutor::AddTimed(std::string name, UnixMillis first_run, TimedFn fn) {
  info_.push_back(TaskInfo{std::move(name), 0, first_run, 0, {}});
  fns_.emplace_back();
  timed_.push_back(std::move(fn));
}

void PeriodicExecutor::SetNextRun(std::string_view name, UnixMillis at) {
  for (TaskInfo& t : info_) {
    if (t.name == name) t.next_run = at;
  }
}

UnixMillis PeriodicExecutor::RunDue(UnixMillis now) {
  UnixMillis next = std::numeric_limits<UnixMillis>::max();
  for (size_t i = 0; i < info_.size(); ++i) {
    TaskInfo& t = info_[i];
    if (t.next_run <= now && timed_[i]) {
      ++t.runs;
      // Never again at `now`: a task that asks for it runs at the next look.
      t.next_run = std::max(timed_[i](now), now + 1);
    } else if (t.next_run <= now) {
      t.last_report = fns_[i](now);
      ++t.runs;
      if (!t.last_report.empty()) spdlog::info("housekeeping task={} {}", t.name, t.last_report);
      // Schedule from now, not from the missed slot: a stalled loop must not
      // make a task run back-to-back to catch up.
      t.next_run = now + t.interval;
    }
    next = std::min(next, t.next_run);
  }
  return next;
}

}  // namespace acceptd
