#include "engine/periodic_executor.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "core/clock.h"

namespace acceptd {
namespace {

class PeriodicExecutorTest : public ::testing::Test {
 protected:
  // Adds a task that records the times it ran at.
  void AddTask(std::string name, Millis interval, UnixMillis first_run, std::string report = "") {
    const size_t i = runs_.size();
    runs_.emplace_back();
    exec_.Add(std::move(name), interval, first_run, [this, i, report](UnixMillis now) {
      runs_[i].push_back(now);
      return report;
    });
  }
  UnixMillis RunDue() { return exec_.RunDue(clock_.Now()); }

  FakeClock clock_{1'000'000};
  PeriodicExecutor exec_;
  std::vector<std::vector<UnixMillis>> runs_;
};

TEST_F(PeriodicExecutorTest, RunsEachTaskOnItsInterval) {
  const UnixMillis t0 = clock_.Now();
  AddTask("fast", 100, t0);
  AddTask("slow", 250, t0);

  EXPECT_EQ(RunDue(), t0 + 100);  // both ran; "fast" is next
  EXPECT_EQ(runs_[0], (std::vector<UnixMillis>{t0}));
  EXPECT_EQ(runs_[1], (std::vector<UnixMillis>{t0}));

  clock_.Advance(50);
  EXPECT_EQ(RunDue(), t0 + 100);  // nothing due yet
  EXPECT_EQ(runs_[0].size(), 1u);

  clock_.Set(t0 + 100);
  EXPECT_EQ(RunDue(), t0 + 200);
  clock_.Set(t0 + 200);
  EXPECT_EQ(RunDue(), t0 + 250);
  clock_.Set(t0 + 250);
  EXPECT_EQ(RunDue(), t0 + 300);
  clock_.Set(t0 + 300);
  EXPECT_EQ(RunDue(), t0 + 400);

  EXPECT_EQ(runs_[0], (std::vector<UnixMillis>{t0, t0 + 100, t0 + 200, t0 + 300}));
  EXPECT_EQ(runs_[1], (std::vector<UnixMillis>{t0, t0 + 250}));
  EXPECT_EQ(exec_.tasks()[0].runs, 4);
  EXPECT_EQ(exec_.tasks()[1].runs, 2);
  EXPECT_EQ(exec_.tasks()[0].next_run, t0 + 400);
  EXPECT_EQ(exec_.tasks()[1].next_run, t0 + 500);
}

TEST_F(PeriodicExecutorTest, FirstRunCanBeInTheFuture) {
  const UnixMillis t0 = clock_.Now();
  AddTask("later", 100, t0 + 30);
  EXPECT_EQ(RunDue(), t0 + 30);
  EXPECT_TRUE(runs_[0].empty());
  clock_.Advance(30);
  EXPECT_EQ(RunDue(), t0 + 130);
  EXPECT_EQ(runs_[0], (std::vector<UnixMillis>{t0 + 30}));
}

TEST_F(PeriodicExecutorTest, EachTaskRunsAtMostOncePerRunDue) {
  const UnixMillis t0 = clock_.Now();
  AddTask("a", 10, t0);
  AddTask("b", 10, t0);
  RunDue();
  RunDue();  // same time: already ran
  EXPECT_EQ(runs_[0].size(), 1u);
  EXPECT_EQ(runs_[1].size(), 1u);
}

TEST_F(PeriodicExecutorTest, NoCatchUpBurstAfterAStall) {
  const UnixMillis t0 = clock_.Now();
  AddTask("tick", 100, t0);
  RunDue();
  // The loop stalls for 10 intervals: the task runs once, then resumes its
  // interval from now instead of running ten times back to back.
  clock_.Advance(1'000);
  EXPECT_EQ(RunDue(), t0 + 1'100);
  EXPECT_EQ(RunDue(), t0 + 1'100);
  clock_.Advance(99);
  EXPECT_EQ(RunDue(), t0 + 1'100);
  EXPECT_EQ(runs_[0], (std::vector<UnixMillis>{t0, t0 + 1'000}));
  clock_.Advance(1);
  RunDue();
  EXPECT_EQ(runs_[0].size(), 3u);
}

TEST_F(PeriodicExecutorTest, RecordsReportsAndClampsIntervals) {
  const UnixMillis t0 = clock_.Now();
  AddTask("reporter", 0, t0, "did 3 things");  // a zero interval still advances time
  EXPECT_EQ(RunDue(), t0 + 1);
  ASSERT_EQ(exec_.tasks().size(), 1u);
  EXPECT_EQ(exec_.tasks()[0].name, "reporter");
  EXPECT_EQ(exec_.tasks()[0].interval, 1);
  EXPECT_EQ(exec_.tasks()[0].last_report, "did 3 things");
  EXPECT_EQ(exec_.tasks()[0].runs, 1);
}

TEST_F(PeriodicExecutorTest, WithoutTasksNothingIsEverDue) {
  EXPECT_EQ(RunDue(), std::numeric_limits<UnixMillis>::max());
}

}  // namespace
}  // namespace acceptd

namespace acceptd {
namespace {

TEST(PeriodicExecutorTimedTest, ATimedTaskRunsWhenItSaysAndCanBeMoved) {
  PeriodicExecutor exec;
  std::vector<UnixMillis> runs;
  exec.AddTimed("scheduler", 1'000, [&](UnixMillis now) {
    runs.push_back(now);
    return now + 700;
  });
  exec.Add("other", 10'000, 1'000, [](UnixMillis) { return std::string(); });
  EXPECT_EQ(exec.RunDue(1'000), 1'700);
  EXPECT_EQ(exec.RunDue(1'500), 1'700) << "not due yet";
  EXPECT_EQ(exec.RunDue(1'700), 2'400);
  EXPECT_EQ(runs, (std::vector<UnixMillis>{1'000, 1'700}));
  exec.SetNextRun("scheduler", 2'000);
  EXPECT_EQ(exec.RunDue(1'800), 2'000);
  EXPECT_EQ(exec.RunDue(2'000), 2'700);
  EXPECT_EQ(exec.tasks()[0].runs, 3);
}

TEST(PeriodicExecutorTimedTest, ATimedTaskThatAsksForNowRunsAtTheNextLook) {
  PeriodicExecutor exec;
  int runs = 0;
  exec.AddTimed("eager", 0, [&](UnixMillis now) {
    ++runs;
    return now;
  });
  EXPECT_EQ(exec.RunDue(5), 6);
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace acceptd
