#include <gtest/gtest.h>

#include <set>

#include "core/job.h"

namespace acceptd {
namespace {

constexpr JobState kAll[] = {JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                             JobState::kFailed, JobState::kCanceled};

// Every pair of states, checked against the transitions docs/state_machine.md lists.
TEST(JobStateTest, TransitionTableIsExactlyTheDocumentedOne) {
  const std::set<std::pair<JobState, JobState>> legal = {
      {JobState::kQueued, JobState::kRunning},    {JobState::kQueued, JobState::kCanceled},
      {JobState::kRunning, JobState::kSucceeded}, {JobState::kRunning, JobState::kFailed},
      {JobState::kRunning, JobState::kQueued},    {JobState::kRunning, JobState::kCanceled},
      {JobState::kFailed, JobState::kQueued},     {JobState::kCanceled, JobState::kQueued},
  };
  for (JobState from : kAll) {
    for (JobState to : kAll) {
      EXPECT_EQ(IsLegalTransition(from, to), legal.count({from, to}) == 1)
          << ToString(from) << " -> " << ToString(to);
    }
  }
}

TEST(JobStateTest, TerminalStatesLeadOnlyBackToQueuedByAnOperatorsRetry) {
  for (JobState from : kAll) {
    if (!IsTerminal(from)) continue;
    for (JobState to : kAll) {
      const bool retry = to == JobState::kQueued && from != JobState::kSucceeded;
      EXPECT_EQ(IsLegalTransition(from, to), retry) << ToString(from) << " -> " << ToString(to);
    }
  }
  EXPECT_FALSE(IsTerminal(JobState::kQueued));
  EXPECT_FALSE(IsTerminal(JobState::kRunning));
}

TEST(JobStateTest, NamesRoundTrip) {
  for (JobState s : kAll) EXPECT_EQ(ParseJobState(ToString(s)), s);
  EXPECT_EQ(ParseJobState("Queued"), std::nullopt);
  EXPECT_EQ(ParseJobState(""), std::nullopt);
}

TEST(JobIdTest, RandomIdsAre32LowercaseHexAndRoundTrip) {
  JobId a = JobId::Random();
  JobId b = JobId::Random();
  EXPECT_NE(a, b);
  std::string hex = a.ToHex();
  ASSERT_EQ(hex.size(), 32u);
  for (char c : hex) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
  EXPECT_EQ(JobId::Parse(hex), a);
}

TEST(JobIdTest, ParseRejectsMalformedIds) {
  EXPECT_EQ(JobId::Parse(""), std::nullopt);
  EXPECT_EQ(JobId::Parse("0123456789abcdef0123456789abcde"), std::nullopt);    // 31
  EXPECT_EQ(JobId::Parse("0123456789abcdef0123456789abcdef0"), std::nullopt);  // 33
  EXPECT_EQ(JobId::Parse("0123456789ABCDEF0123456789abcdef"), std::nullopt);   // uppercase
  EXPECT_EQ(JobId::Parse("0123456789abcdef0123456789abcdeg"), std::nullopt);   // not hex
}

}  // namespace
}  // namespace acceptd
