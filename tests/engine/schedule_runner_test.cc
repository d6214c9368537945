#include "engine/schedule_runner.h"

#include <gtest/gtest.h>

#include "store/testing/store_test_util.h"

namespace acceptd {
namespace {

using store_testing::Must;

// 2023-11-14T22:13:20Z, a whole second.
constexpr UnixMillis kT0 = 1'700'000'000'000;
constexpr Millis kMinute = 60'000;

ScheduleConfig Schedule(std::string name, std::string cron, MissedPolicy on_missed) {
  ScheduleConfig s;
  s.name = std::move(name);
  s.cron = Must(CronExpr::Parse(cron), "cron");
  s.queue = "q";
  s.on_missed = on_missed;
  return s;
}

TEST(ScheduleRunnerTest, TheDefaultIsToRunAMissedTickOnce) {
  EXPECT_EQ(kDefaultMissedPolicy, MissedPolicy::kRunOnce);
  EXPECT_STREQ(ToString(MissedPolicy::kRunOnce), "run_once");
  EXPECT_STREQ(ToString(MissedPolicy::kSkip), "skip");
}

TEST(ScheduleRunnerTest, TicksBetweenCountsAndFindsTheLatest) {
  ScheduleConfig s = Schedule("s", "* * * * *", MissedPolicy::kSkip);
  TickSpan one = TicksBetween(s, kT0, kT0 + 59'000);  // kT0 + 40 s is the next minute
  EXPECT_EQ(one.count, 1);
  const UnixMillis minute = kT0 + 40'000;
  EXPECT_EQ(one.latest, minute);
  TickSpan three = TicksBetween(s, minute, minute + 3 * kMinute);
  EXPECT_EQ(three.count, 3);
  EXPECT_FALSE(three.capped);
  EXPECT_EQ(three.latest, minute + 3 * kMinute) << "the end is included";
  EXPECT_EQ(TicksBetween(s, minute, minute + kMinute - 1).count, 0) << "the start is not";
}

TEST(ScheduleRunnerTest, TicksBetweenStopsCountingAtTheCapButFindsTheLatest) {
  ScheduleConfig s = Schedule("s", "* * * * * *", MissedPolicy::kSkip);
  const UnixMillis upto = kT0 + 30 * 24 * 3'600'000LL + 7'250;  // a month of seconds later
  TickSpan span = TicksBetween(s, kT0, upto);
  EXPECT_TRUE(span.capped);
  EXPECT_EQ(span.count, kMaxCountedTicks);
  EXPECT_EQ(span.latest, upto - 250);
  // A sparse schedule past the cap: yearly ticks are few, nothing to cap.
  ScheduleConfig yearly = Schedule("y", "@yearly", MissedPolicy::kSkip);
  TickSpan years = TicksBetween(yearly, kT0, kT0 + 3 * 366 * 24 * 3'600'000LL);
  EXPECT_EQ(years.count, 3);
  EXPECT_FALSE(years.capped);
}

TEST(ScheduleRunnerTest, ANeverFiredScheduleStartsWithItsNextTick) {
  ScheduleRunner runner({Schedule("s", "*/5 * * * * *", MissedPolicy::kRunOnce)});
  EXPECT_FALSE(runner.started());
  EXPECT_TRUE(runner.Due(kT0 + 10'000).fires.empty()) << "nothing before Start";
  auto step = runner.Start(kT0 + 1'000, {});
  EXPECT_TRUE(step.fires.empty());
  EXPECT_TRUE(step.missed.empty());
  EXPECT_EQ(runner.NextWake(), kT0 + 5'000);
  EXPECT_TRUE(runner.Due(kT0 + 4'999).fires.empty());
  auto due = runner.Due(kT0 + 5'003);
  ASSERT_EQ(due.fires.size(), 1u);
  EXPECT_EQ(due.fires[0].tick, kT0 + 5'000);
  EXPECT_FALSE(due.fires[0].catch_up);
  EXPECT_TRUE(due.missed.empty());
  EXPECT_EQ(runner.NextWake(), kT0 + 10'000);
}

TEST(ScheduleRunnerTest, RunOnceFiresTheLatestMissedTickAndCountsTheOthers) {
  ScheduleRunner runner({Schedule("s", "* * * * * *", MissedPolicy::kRunOnce)});
  auto step = runner.Start(kT0 + 10'500, {ScheduleState{"s", kT0, JobId::Random()}});
  ASSERT_EQ(step.fires.size(), 1u);
  EXPECT_EQ(step.fires[0].tick, kT0 + 10'000);
  EXPECT_TRUE(step.fires[0].catch_up);
  ASSERT_EQ(step.missed.size(), 1u);
  EXPECT_EQ(step.missed[0].ticks, 9);
  EXPECT_EQ(runner.NextWake(), kT0 + 11'000);
}

TEST(ScheduleRunnerTest, SkipFiresNoMissedTick) {
  ScheduleRunner runner({Schedule("s", "* * * * * *", MissedPolicy::kSkip)});
  auto step = runner.Start(kT0 + 10'500, {ScheduleState{"s", kT0, JobId::Random()}});
  EXPECT_TRUE(step.fires.empty());
  ASSERT_EQ(step.missed.size(), 1u);
  EXPECT_EQ(step.missed[0].ticks, 10);
  EXPECT_EQ(runner.NextWake(), kT0 + 11'000);
}

TEST(ScheduleRunnerTest, NoTickMissedSinceTheLastFireMeansNothingToCatchUp) {
  ScheduleRunner runner({Schedule("s", "*/10 * * * * *", MissedPolicy::kRunOnce),
                         Schedule("other", "* * * * * *", MissedPolicy::kRunOnce)});
  // "s" fired at kT0 (another node, or just before a restart); its next tick
  // is still ahead. "other" fired later than this node's clock says is now.
  auto step = runner.Start(kT0 + 9'000, {ScheduleState{"s", kT0, JobId::Random()},
                                         ScheduleState{"other", kT0 + 20'000, JobId::Random()}});
  EXPECT_TRUE(step.fires.empty());
  EXPECT_TRUE(step.missed.empty());
  EXPECT_EQ(runner.NextWake(), kT0 + 10'000);
}

TEST(ScheduleRunnerTest, ALateLookFiresTheLatestDueTickAndCountsThePassedOver) {
  ScheduleRunner runner({Schedule("a", "* * * * * *", MissedPolicy::kSkip),
                         Schedule("b", "*/10 * * * * *", MissedPolicy::kSkip)});
  runner.Start(kT0, {});
  auto step = runner.Due(kT0 + 3'400);
  ASSERT_EQ(step.fires.size(), 1u) << "only a's ticks are due";
  EXPECT_EQ(step.fires[0].schedule, 0u);
  EXPECT_EQ(step.fires[0].tick, kT0 + 3'000);
  ASSERT_EQ(step.missed.size(), 1u);
  EXPECT_EQ(step.missed[0].ticks, 2);
  EXPECT_EQ(runner.NextWake(), kT0 + 4'000);
  auto both = runner.Due(kT0 + 10'000);
  EXPECT_EQ(both.fires.size(), 2u);
}

TEST(ScheduleRunnerTest, ATickFollowsTheScheduleTimeZone) {
  ScheduleConfig s = Schedule("s", "30 2 * * *", MissedPolicy::kSkip);
  s.zone = Must(TimeZone::FromPosixTz("CET", "CET-1CEST,M3.5.0,M10.5.0/3"), "zone");
  // 2026-07-01T00:00:00Z is 02:00 CEST: the tick is at 02:30 CEST = 00:30Z.
  const UnixMillis midnight_utc = 1'782'864'000'000;
  EXPECT_EQ(NextTick(s, midnight_utc), midnight_utc + 30 * kMinute);
}

}  // namespace
}  // namespace acceptd
