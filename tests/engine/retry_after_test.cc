#include <gtest/gtest.h>

#include "engine/retry_after.h"

namespace acceptd {
namespace {

RetryAfterInputs Queued(int64_t queued, int concurrency, std::optional<Millis> avg) {
  RetryAfterInputs in;
  in.state = JobState::kQueued;
  in.now = 10'000;
  in.run_at = 10'000;
  in.queued = queued;
  in.concurrency = concurrency;
  in.avg_run = avg;
  return in;
}

TEST(RetryAfterTest, WithoutHistoryTheMinimumIsAdvised) {
  EXPECT_EQ(EstimateRetryAfter(Queued(100, 1, std::nullopt)), 1'000);
}

TEST(RetryAfterTest, QueuedJobWaitsForTheRoundsAheadOfIt) {
  // 8 queued on 4 slots: 2 rounds ahead + its own = 3 x 5 s.
  EXPECT_EQ(EstimateRetryAfter(Queued(8, 4, 5'000)), 15'000);
  EXPECT_EQ(EstimateRetryAfter(Queued(0, 4, 5'000)), 5'000);
}

TEST(RetryAfterTest, DelayIsAddedAndBoundsApply) {
  RetryAfterInputs in = Queued(0, 1, 2'000);
  in.run_at = in.now + 3'000;
  EXPECT_EQ(EstimateRetryAfter(in), 5'000);
  in.max = 4'000;
  EXPECT_EQ(EstimateRetryAfter(in), 4'000);
  EXPECT_EQ(EstimateRetryAfter(Queued(0, 1, 10)), 1'000) << "never below the minimum";
}

TEST(RetryAfterTest, RunningJobWaitsForTheRestOfAnAverageRun) {
  RetryAfterInputs in;
  in.state = JobState::kRunning;
  in.now = 10'000;
  in.running_since = 7'000;
  in.avg_run = 8'000;
  EXPECT_EQ(EstimateRetryAfter(in), 5'000);
  in.running_since = 0;  // running longer than usual
  EXPECT_EQ(EstimateRetryAfter(in), 1'000);
}

TEST(RunTimeAverageTest, FollowsTheSamplesWithMoreWeightOnHistory) {
  RunTimeAverage avg;
  EXPECT_EQ(avg.Get(), std::nullopt);
  avg.Add(1'000);
  EXPECT_EQ(avg.Get(), 1'000);
  avg.Add(2'000);
  EXPECT_EQ(avg.Get(), 1'200);
  for (int i = 0; i < 50; ++i) avg.Add(2'000);
  EXPECT_NEAR(static_cast<double>(*avg.Get()), 2'000, 5);
}

}  // namespace
}  // namespace acceptd
