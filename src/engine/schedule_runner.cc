#include "engine/schedule_runner.h"

#include <algorithm>

namespace acceptd {

const char* ToString(MissedPolicy policy) {
  return policy == MissedPolicy::kSkip ? "skip" : "run_once";
}

std::optional<UnixMillis> NextTick(const ScheduleConfig& s, UnixMillis after) {
  if (!s.cron) return std::nullopt;
  return NextFireTime(*s.cron, s.zone, after);
}

TickSpan TicksBetween(const ScheduleConfig& s, UnixMillis after, UnixMillis upto) {
  TickSpan span;
  UnixMillis cursor = after;
  while (span.count < kMaxCountedTicks) {
    auto t = NextTick(s, cursor);
    if (!t || *t > upto) return span;
    span.latest = *t;
    ++span.count;
    cursor = *t;
  }
  span.capped = true;
  // Too many to walk one by one: look for the latest from a window just
  // before `upto`, the smallest that holds a tick, and walk that.
  constexpr Millis kDay = 24 * 3600 * 1000;
  for (Millis window : {Millis{1'000}, Millis{60'000}, Millis{3'600'000}, kDay, 32 * kDay,
                        367 * kDay, (kMaxFireSearchYears + 1) * 366 * kDay}) {
    auto t = NextTick(s, std::max(cursor, upto - window));
    if (!t || *t > upto) continue;
    for (;;) {
      span.latest = *t;
      t = NextTick(s, *t);
      if (!t || *t > upto) return span;
    }
  }
  return span;
}

ScheduleRunner::ScheduleRunner(std::vector<ScheduleConfig> schedules)
    : schedules_(std::move(schedules)), next_(schedules_.size()) {}

ScheduleRunner::Step ScheduleRunner::Start(UnixMillis now,
                                           const std::vector<ScheduleState>& stored) {
  Step step;
  for (size_t i = 0; i < schedules_.size(); ++i) {
    const ScheduleConfig& s = schedules_[i];
    next_[i] = NextTick(s, now);
    auto state = std::find_if(stored.begin(), stored.end(),
                              [&](const ScheduleState& st) { return st.schedule == s.name; });
    if (state == stored.end() || state->last_fire_at >= now) continue;
    const TickSpan missed = TicksBetween(s, state->last_fire_at, now);
    if (missed.count == 0) continue;
    int64_t not_fired = missed.count;
    if (s.on_missed == MissedPolicy::kRunOnce) {
      step.fires.push_back(Fire{i, *missed.latest, /*catch_up=*/true});
      --not_fired;
    }
    if (not_fired > 0) step.missed.push_back(Missed{i, not_fired});
  }
  started_ = true;
  return step;
}

ScheduleRunner::Step ScheduleRunner::Due(UnixMillis now) {
  Step step;
  if (!started_) return step;
  for (size_t i = 0; i < schedules_.size(); ++i) {
    if (!next_[i] || *next_[i] > now) continue;
    // The ticks in [next, now]: the latest fires, any before it were passed over.
    const TickSpan due = TicksBetween(schedules_[i], *next_[i] - 1, now);
    if (due.latest) step.fires.push_back(Fire{i, *due.latest, /*catch_up=*/false});
    if (due.count > 1) step.missed.push_back(Missed{i, due.count - 1});
    next_[i] = NextTick(schedules_[i], now);
  }
  return step;
}

std::optional<UnixMillis> ScheduleRunner::NextWake() const {
  std::optional<UnixMillis> wake;
  for (const auto& n : next_) {
    if (n && (!wake || *n < *wake)) wake = n;
  }
  return wake;
}

}  // namespace acceptd
