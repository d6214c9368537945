// JobWatchers: one-shot watchers wake only on terminal or removal; listeners
// wake on every change (including progress) until unwatched.
#include "engine/job_watchers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace acceptd {
namespace {

Job JobIn(const JobId& id, JobState state) {
  Job j;
  j.id = id;
  j.state = state;
  return j;
}

// Another node's change is known by id and state only (OnState); the watch
// poll lists the watched jobs (Ids), each once however many watch it.
TEST(JobWatchersTest, OnStateWakesAsOnChangeAndIdsListsEachWatchedJobOnce) {
  JobWatchers w;
  const JobId a = JobId::Random();
  const JobId b = JobId::Random();
  int woken = 0;
  w.Watch(a, [&] { ++woken; });
  w.Watch(a, [&] { ++woken; });
  const uint64_t listener = w.Listen(b, [&] { ++woken; });
  std::vector<JobId> ids = w.Ids();
  std::sort(ids.begin(), ids.end());
  std::vector<JobId> want{a, b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);

  w.OnState(a, JobState::kRunning, false);
  EXPECT_EQ(woken, 0) << "one-shot watchers wait for the end";
  w.OnState(a, JobState::kFailed, false);
  EXPECT_EQ(woken, 2);
  w.OnState(b, JobState::kQueued, /*removed=*/true);
  EXPECT_EQ(woken, 3);
  EXPECT_EQ(w.Ids(), std::vector<JobId>{b});
  w.Unwatch(b, listener);
  EXPECT_TRUE(w.Ids().empty());
}

TEST(JobWatchersTest, WatchersWakeOnceOnTerminalListenersOnEveryChange) {
  JobWatchers w;
  const JobId id = JobId::Random();
  int watched = 0, listened = 0;
  const uint64_t once = w.Watch(id, [&] { ++watched; });
  const uint64_t every = w.Listen(id, [&] { ++listened; });
  EXPECT_EQ(w.size(), 2u);

  w.OnChange(JobIn(id, JobState::kRunning), false);
  w.OnProgress(id);
  EXPECT_EQ(watched, 0);
  EXPECT_EQ(listened, 2);

  w.OnChange(JobIn(id, JobState::kSucceeded), false);
  EXPECT_EQ(watched, 1);
  EXPECT_EQ(listened, 3);
  EXPECT_EQ(w.size(), 1u) << "the one-shot watcher is dropped, the listener stays";

  w.OnChange(JobIn(id, JobState::kSucceeded), /*removed=*/true);
  EXPECT_EQ(watched, 1);
  EXPECT_EQ(listened, 4);

  w.Unwatch(id, once);  // already gone: ignored
  w.Unwatch(id, every);
  EXPECT_EQ(w.size(), 0u);
  w.OnProgress(id);
  EXPECT_EQ(listened, 4);
}

TEST(JobWatchersTest, ProgressDoesNotWakeOneShotWatchersOrDropThem) {
  JobWatchers w;
  const JobId id = JobId::Random();
  int watched = 0, listened = 0;
  w.Watch(id, [&] { ++watched; });
  const uint64_t every = w.Listen(id, [&] { ++listened; });
  w.OnProgress(id);
  w.OnChange(JobIn(id, JobState::kQueued), false);
  EXPECT_EQ(watched, 0);
  EXPECT_EQ(w.size(), 2u);
  w.Unwatch(id, every);
  EXPECT_EQ(w.size(), 1u);
  w.OnChange(JobIn(id, JobState::kCanceled), false);
  EXPECT_EQ(watched, 1);
  EXPECT_EQ(listened, 2);
  EXPECT_EQ(w.size(), 0u);
}

TEST(JobWatchersTest, ListenersOfOtherJobsAreNotWoken) {
  JobWatchers w;
  const JobId a = JobId::Random(), b = JobId::Random();
  int woken = 0;
  const uint64_t t = w.Listen(a, [&] { ++woken; });
  w.OnProgress(b);
  w.OnChange(JobIn(b, JobState::kFailed), true);
  EXPECT_EQ(woken, 0);
  w.Unwatch(a, t);
}

}  // namespace
}  // namespace acceptd
