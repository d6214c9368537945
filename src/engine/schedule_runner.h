// ScheduleRunner: when each configured schedule fires (`[[schedules]]`,
// docs/operations.md "Schedules"). Pure logic: no I/O, no threads and no
// clock of its own. The engine drives it with its Clock's time from one
// housekeeping task (the "scheduler", which sleeps until NextWake) and fires
// what it says through the store (WriteTx::FireSchedule), which makes each
// tick exactly one job however many nodes fire it.
//
// Ticks missed while no node ran (on_missed). At Start, the ticks of a
// schedule after its last fire (the store's ScheduleState, shared by every
// node) and at or before the start were missed:
//   run_once (the default): the latest of them fires at once, the others are
//            counted as missed: a restart over a nightly tick still makes
//            that night's job, and a long outage makes one job, not a burst;
//   skip:     none fires; all are counted as missed; the next tick fires as
//            usual.
// A schedule that never fired (no state) missed nothing: it starts with its
// next tick. While running, a tick the engine thread reaches late still
// fires; if several passed (the thread was held up), the latest fires and
// the others are counted as missed, whatever the policy.
//
// Not thread-safe: one thread (the engine's) drives it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/cron.h"
#include "core/time_zone.h"
#include "store/job_store.h"

namespace acceptd {

enum class MissedPolicy { kRunOnce, kSkip };
// Celery beat and Temporal catch up once, River and Sidekiq-cron skip; a
// tick that a restart or a deploy happened to overlap should not silently
// lose its job, so acceptd catches up once.
inline constexpr MissedPolicy kDefaultMissedPolicy = MissedPolicy::kRunOnce;
inline constexpr char kDefaultScheduleContentType[] = "application/octet-stream";
// Missed ticks are counted one by one up to this many per look (an
// every-second schedule after 3 hours down); beyond it the count stops
// there (the metric says "at least"), and the latest tick is still found.
inline constexpr int64_t kMaxCountedTicks = 10'000;

// "run_once" / "skip".
const char* ToString(MissedPolicy policy);

struct ScheduleConfig {
  std::string name;  // unique among schedules: the store keys the ticks by it
  // Always set once loaded (CronExpr has no empty value).
  std::optional<CronExpr> cron;
  TimeZone zone;  // UTC unless configured
  std::string queue;
  std::string payload;
  std::string content_type = kDefaultScheduleContentType;
  MissedPolicy on_missed = kDefaultMissedPolicy;
};

// The first tick of `s` strictly after `after`; nullopt if it never fires again.
std::optional<UnixMillis> NextTick(const ScheduleConfig& s, UnixMillis after);

// The ticks of `s` in (after, upto]: how many (at most kMaxCountedTicks,
// `capped` when there were more) and the latest one.
struct TickSpan {
  int64_t count = 0;
  bool capped = false;
  std::optional<UnixMillis> latest;
};
TickSpan TicksBetween(const ScheduleConfig& s, UnixMillis after, UnixMillis upto);

class ScheduleRunner {
 public:
  struct Fire {
    size_t schedule = 0;  // index into schedules()
    UnixMillis tick = 0;
    bool catch_up = false;  // a tick missed while no node ran (run_once)
  };
  struct Missed {
    size_t schedule = 0;
    int64_t ticks = 0;
  };
  // What to do now: fire these ticks, count those missed.
  struct Step {
    std::vector<Fire> fires;
    std::vector<Missed> missed;
  };

  explicit ScheduleRunner(std::vector<ScheduleConfig> schedules);

  const std::vector<ScheduleConfig>& schedules() const { return schedules_; }
  bool started() const { return started_; }

  // Once, with the store's states (see above) at `now`. Afterwards each
  // schedule's next tick is its first one after `now`.
  Step Start(UnixMillis now, const std::vector<ScheduleState>& stored);
  // The ticks due at `now` (see above). Before Start: nothing.
  Step Due(UnixMillis now);
  // When the next tick of any schedule is due; nullopt: never (before
  // Start, or no schedule fires again).
  std::optional<UnixMillis> NextWake() const;

 private:
  std::vector<ScheduleConfig> schedules_;
  std::vector<std::optional<UnixMillis>> next_;  // each schedule's next tick
  bool started_ = false;
};

}  // namespace acceptd
