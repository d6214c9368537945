// PeriodicExecutor: runs housekeeping tasks, each on its own interval.
//
// To add a housekeeping task: give it a name, an interval and a function of
// the current time, and Add() it before the engine starts. A task whose
// next run is not a fixed interval away (the scheduler: the next cron tick)
// is added with AddTimed and says itself when it runs next. Scheduling is pure
// logic driven by RunDue(now), so tests drive it with a FakeClock's time; the
// engine calls RunDue from a timer on its own thread. Not thread-safe: one
// thread drives it. A task's function reports what it did as a short string
// ("rescued 3 jobs"), logged when non-empty and kept as a test signal.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace acceptd {

class PeriodicExecutor {
 public:
  using TaskFn = std::function<std::string(UnixMillis now)>;

  struct TaskInfo {
    std::string name;
    Millis interval = 0;
    UnixMillis next_run = 0;
    int64_t runs = 0;
    std::string last_report;
  };

  // Returns when the task runs next (at least 1 ms after `now`).
  using TimedFn = std::function<UnixMillis(UnixMillis now)>;

  // The first run is due at `first_run` (typically now, or now + interval).
  void Add(std::string name, Millis interval, UnixMillis first_run, TaskFn fn);
  // A task that decides its next run each time it runs (interval 0 in tasks()).
  void AddTimed(std::string name, UnixMillis first_run, TimedFn fn);
  // Moves the next run of the task named `name` (e.g. once what it waited
  // for arrived); the caller's timer picks it up at its next look.
  void SetNextRun(std::string_view name, UnixMillis at);
  // Runs every task due at `now` (each at most once) and returns when the
  // next task is due.
  UnixMillis RunDue(UnixMillis now);
  const std::vector<TaskInfo>& tasks() const { return info_; }

 private:
  std::vector<TaskInfo> info_;
  std::vector<TaskFn> fns_;     // null for a timed task
  std::vector<TimedFn> timed_;  // null for an interval task
};

}  // namespace acceptd
