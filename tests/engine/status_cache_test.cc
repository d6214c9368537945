#include "engine/status_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace acceptd {
namespace {

Job MakeJob(const JobId& id, int attempts) {
  Job j;
  j.id = id;
  j.queue = "q";
  j.attempts = attempts;
  return j;
}

TEST(StatusCache, AnswersWhatWasFilledAndNothingElse) {
  StatusCache cache(1024);
  const JobId id = JobId::Random();
  StatusCache::Ticket t;
  EXPECT_EQ(cache.Lookup(id, t), nullptr);
  ASSERT_TRUE(t.valid);
  EXPECT_TRUE(cache.Fill(t, MakeJob(id, 3)));
  StatusCache::Ticket t2;
  auto hit = cache.Lookup(id, t2);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->attempts, 3);
  EXPECT_FALSE(t2.valid);  // a hit needs no read
  EXPECT_EQ(cache.Lookup(JobId::Random(), t2), nullptr);
}

TEST(StatusCache, FillIsRefusedWhenTheJobChangedAfterTheReadBegan) {
  StatusCache cache(1024);
  const JobId id = JobId::Random();
  StatusCache::Ticket before_change;
  ASSERT_EQ(cache.Lookup(id, before_change), nullptr);  // a read begins...
  cache.Invalidate(id);                                 // ...a change commits...
  // ...and the read, which may have returned the old row, comes back.
  EXPECT_FALSE(cache.Fill(before_change, MakeJob(id, 1)));
  StatusCache::Ticket t;
  EXPECT_EQ(cache.Lookup(id, t), nullptr);
  // A read begun after the change fills.
  EXPECT_TRUE(cache.Fill(t, MakeJob(id, 2)));
  EXPECT_EQ(cache.Lookup(id, t)->attempts, 2);
}

TEST(StatusCache, InvalidateDropsTheEntry) {
  StatusCache cache(1024);
  const JobId id = JobId::Random();
  StatusCache::Ticket t;
  cache.Lookup(id, t);
  ASSERT_TRUE(cache.Fill(t, MakeJob(id, 1)));
  cache.Invalidate(id);
  EXPECT_EQ(cache.Lookup(id, t), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(StatusCache, InvalidateAllRefusesReadsBegunBefore) {
  StatusCache cache(1024);
  const JobId a = JobId::Random();
  const JobId b = JobId::Random();
  StatusCache::Ticket ta, tb;
  cache.Lookup(a, ta);
  ASSERT_TRUE(cache.Fill(ta, MakeJob(a, 1)));
  cache.Lookup(b, tb);
  cache.InvalidateAll();
  EXPECT_FALSE(cache.Fill(tb, MakeJob(b, 1)));
  StatusCache::Ticket t;
  EXPECT_EQ(cache.Lookup(a, t), nullptr);
}

TEST(StatusCache, UntrustedAnswersNothingAndTrustRefusesOlderReads) {
  StatusCache cache(1024);
  const JobId id = JobId::Random();
  StatusCache::Ticket t;
  cache.Lookup(id, t);
  ASSERT_TRUE(cache.Fill(t, MakeJob(id, 1)));
  cache.SetTrusted(false);
  StatusCache::Ticket untrusted;
  EXPECT_EQ(cache.Lookup(id, untrusted), nullptr);
  EXPECT_FALSE(untrusted.valid);
  EXPECT_FALSE(cache.Fill(untrusted, MakeJob(id, 2)));
  // A read begun while trusted, before an interruption, must not fill after it.
  cache.SetTrusted(true);
  StatusCache::Ticket before;
  cache.Lookup(id, before);
  cache.SetTrusted(false);
  cache.SetTrusted(true);
  EXPECT_FALSE(cache.Fill(before, MakeJob(id, 3)));
}

TEST(StatusCache, HoldsAtMostItsCapacity) {
  StatusCache cache(64);
  for (int i = 0; i < 10'000; ++i) {
    const JobId id = JobId::Random();
    StatusCache::Ticket t;
    cache.Lookup(id, t);
    cache.Fill(t, MakeJob(id, i));
  }
  EXPECT_LE(cache.size(), 64u);
  EXPECT_GT(cache.size(), 32u);
}

TEST(StatusCache, SizeZeroIsOff) {
  StatusCache cache(0);
  const JobId id = JobId::Random();
  StatusCache::Ticket t;
  cache.Lookup(id, t);
  EXPECT_FALSE(t.valid);
  EXPECT_FALSE(cache.Fill(t, MakeJob(id, 1)));
}

// Writers change jobs (a version per job, "committed" before the
// invalidation) while readers poll through the cache as the engine does. A
// reader must never see a version older than one whose invalidation
// completed before its look-up began.
TEST(StatusCache, ConcurrentPollsNeverSeeAStateOlderThanTheLastInvalidation) {
  constexpr int kJobs = 64;
  StatusCache cache(kJobs * 4);
  std::vector<JobId> ids;
  for (int i = 0; i < kJobs; ++i) ids.push_back(JobId::New(1'780'000'000'000));
  std::vector<std::atomic<int>> store(kJobs);      // the committed version
  std::vector<std::atomic<int>> announced(kJobs);  // invalidated up to this version
  std::atomic<bool> stop{false};
  std::atomic<int64_t> stale{0}, polls{0};
  auto reader = [&](int seed) {
    unsigned x = static_cast<unsigned>(seed) * 2654435761u + 1;
    while (!stop.load()) {
      x = x * 1664525u + 1013904223u;
      const int j = static_cast<int>((x >> 8) % kJobs);
      const int floor = announced[j].load();
      StatusCache::Ticket t;
      auto hit = cache.Lookup(ids[j], t);
      int seen;
      if (hit) {
        seen = hit->attempts;
      } else {
        seen = store[j].load();                            // the store read
        if ((x >> 4) % 3 == 0) std::this_thread::yield();  // a slow read
        cache.Fill(t, MakeJob(ids[j], seen));
      }
      if (seen < floor) ++stale;
      ++polls;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back(reader, i);
  for (int round = 0; round < 20'000; ++round) {
    const int j = round % kJobs;
    const int v = store[j].load() + 1;
    store[j] = v;              // commit
    cache.Invalidate(ids[j]);  // then invalidate
    announced[j] = v;          // then report
    if (round % 1000 == 0) std::this_thread::yield();
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(stale.load(), 0) << "of " << polls.load() << " polls";
}

// Not a pass/fail figure: look-ups per second from one and from two threads
// on distinct jobs (the shards should keep two threads from slowing each
// other down).
TEST(StatusCache, LookupThroughputFigure) {
  StatusCache cache(65'536);
  std::vector<JobId> ids;
  for (int i = 0; i < 10'000; ++i) {
    ids.push_back(JobId::New(1'780'000'000'000));
    StatusCache::Ticket t;
    cache.Lookup(ids.back(), t);
    ASSERT_TRUE(cache.Fill(t, MakeJob(ids.back(), 1)));
  }
  auto run = [&](int threads) {
    std::atomic<int64_t> n{0};
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    std::vector<std::thread> ts;
    for (int k = 0; k < threads; ++k) {
      ts.emplace_back([&, k] {
        int64_t local = 0;
        size_t i = static_cast<size_t>(k) * 5000;
        while (std::chrono::steady_clock::now() < until) {
          for (int r = 0; r < 256; ++r) {
            StatusCache::Ticket t;
            auto hit = cache.Lookup(ids[i++ % ids.size()], t);
            Job copy = *hit;  // what Engine::Get returns
            local += copy.attempts;
          }
        }
        n += local;
      });
    }
    for (auto& t : ts) t.join();
    return static_cast<double>(n.load()) / 0.2;
  };
  const double one = run(1);
  const double two = run(2);
  std::printf("[ figure ] status cache hits (with the Job copy): %.0f/s on 1 thread, %.0f/s on 2\n",
              one, two);
  EXPECT_GT(one, 0);
}

}  // namespace
}  // namespace acceptd
