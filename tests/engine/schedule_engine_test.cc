// The engine's scheduler (engine/schedule_runner.h) end to end on a real
// SQLite store, with a FakeClock that the tests move: each tick makes one
// job, several engines on one store make one job per tick between them, and
// a restart applies the schedule's on_missed policy to the ticks missed
// while no engine ran. Nothing sleeps: tests poll with a deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/faulty_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::FaultyStore;
using store_testing::Must;
using store_testing::TempDir;

// Half a second past a whole second: ticks of "* * * * * *" are 500 ms away.
constexpr UnixMillis kStart = 1'700'000'000'500;

ScheduleConfig EverySecond(std::string name, MissedPolicy on_missed = kDefaultMissedPolicy) {
  ScheduleConfig s;
  s.name = std::move(name);
  s.cron = Must(CronExpr::Parse("* * * * * *"), "cron");
  s.queue = "q";
  s.payload = R"({"kind":"tick"})";
  s.content_type = "application/json";
  s.on_missed = on_missed;
  return s;
}

// Polls `pred` until it holds or the deadline passes.
bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class ScheduleEngineTest : public ::testing::Test {
 protected:
  // `faulty`: set to the store's fault injector (the engine then runs on one).
  // `arm`: arms faults before the engine starts (and then the test waits
  // for nothing).
  std::unique_ptr<Engine> Node(std::vector<ScheduleConfig> schedules, std::string node_id,
                               FaultyStore** faulty = nullptr,
                               std::function<void(FaultyStore&)> arm = nullptr) {
    EngineOptions o = Options();
    o.node_id = std::move(node_id);
    QueueSpec q = Queue("q", nullptr);  // external: the jobs stay queued, countable
    q.config.handler = "external";
    std::unique_ptr<JobStore> store = Must(SqliteStore::Open(path_), "open store");
    if (faulty) {
      auto wrapped = std::make_unique<FaultyStore>(std::shared_ptr<JobStore>(std::move(store)));
      *faulty = wrapped.get();
      if (arm) arm(*wrapped);
      store = std::move(wrapped);
    }
    auto engine = std::make_unique<Engine>(o, std::move(store), std::vector<QueueSpec>{q}, clock_);
    const bool any = !schedules.empty();
    engine->SetSchedules(std::move(schedules));
    engine->Start();
    if (any && !arm) {
      EXPECT_TRUE(WaitUntil([&] { return engine->schedules_started(); }))
          << "the scheduler never read the schedules' states";
    }
    return engine;
  }

  static int64_t Queued(Engine& engine) {
    auto queues = Must(engine.Queues(), "Queues");
    return queues.at(0).counts[static_cast<int>(JobState::kQueued)];
  }
  static uint64_t Fires(const Engine& engine, const std::string& name = "s") {
    return engine.metrics().Schedule(name)->fires.Value();
  }
  static uint64_t Missed(const Engine& engine, const std::string& name = "s") {
    return engine.metrics().Schedule(name)->missed.Value();
  }
  static std::optional<ScheduleState> State(Engine& engine, const std::string& name = "s") {
    auto states =
        Await<std::vector<ScheduleState>>([&](auto done) { engine.ScheduleStates(done); });
    for (const ScheduleState& s : Must(std::move(states), "ScheduleStates")) {
      if (s.schedule == name) return s;
    }
    return std::nullopt;
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/data/jobs.db";
  FakeClock clock_{kStart};
};

TEST_F(ScheduleEngineTest, EachTickMakesOneJobWhenTheClockReachesIt) {
  auto engine = Node({EverySecond("s")}, "node-a");
  EXPECT_EQ(Fires(*engine), 0u) << "a schedule that never fired missed nothing";
  EXPECT_EQ(Queued(*engine), 0);
  clock_.Advance(500);  // kStart + 500: a whole second, the first tick
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 1; }));
  EXPECT_EQ(Queued(*engine), 1);
  auto state = State(*engine);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->last_fire_at, kStart + 500);
  clock_.Advance(1'000);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 2; }));
  EXPECT_EQ(Queued(*engine), 2);
  // Held up past three ticks: the latest fires, the two before are missed.
  clock_.Advance(3'200);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 3; }));
  EXPECT_EQ(Missed(*engine), 2u);
  EXPECT_EQ(Queued(*engine), 3);
  EXPECT_EQ(State(*engine)->last_fire_at, kStart + 500 + 4'000);
  auto job = Must(engine->Get(State(*engine)->last_job_id), "the last fire's job");
  EXPECT_EQ(job.queue, "q");
  EXPECT_EQ(job.content_type, "application/json");
  EXPECT_EQ(Must(engine->GetPayload(job.id), "payload").body, R"({"kind":"tick"})");
}

TEST_F(ScheduleEngineTest, ARestartRunsTheTicksMissedWhileDownOnceWithRunOnce) {
  auto engine = Node({EverySecond("s", MissedPolicy::kRunOnce)}, "node-a");
  clock_.Advance(500);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 1; }));
  engine.reset();         // down ...
  clock_.Advance(5'200);  // ... over five ticks
  engine = Node({EverySecond("s", MissedPolicy::kRunOnce)}, "node-a");
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 1; })) << "the catch-up fire";
  EXPECT_EQ(Missed(*engine), 4u);
  EXPECT_EQ(Queued(*engine), 2);
  EXPECT_EQ(State(*engine)->last_fire_at, kStart + 500 + 5'000) << "the latest missed tick";
  // Then on as usual.
  clock_.Advance(1'000);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 2; }));
  EXPECT_EQ(Queued(*engine), 3);
}

TEST_F(ScheduleEngineTest, ARestartSkipsTheTicksMissedWhileDownWithSkip) {
  auto engine = Node({EverySecond("s", MissedPolicy::kSkip)}, "node-a");
  clock_.Advance(500);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 1; }));
  engine.reset();
  clock_.Advance(5'200);
  engine = Node({EverySecond("s", MissedPolicy::kSkip)}, "node-a");
  EXPECT_EQ(Missed(*engine), 5u);
  EXPECT_EQ(Fires(*engine), 0u);
  EXPECT_EQ(Queued(*engine), 1);
  EXPECT_EQ(State(*engine)->last_fire_at, kStart + 500) << "skipping fires nothing";
  clock_.Advance(1'000);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 1; }));
  EXPECT_EQ(Queued(*engine), 2);
}

TEST_F(ScheduleEngineTest, TwoEnginesOnOneStoreMakeOneJobPerTick) {
  auto a = Node({EverySecond("s")}, "node-a");
  auto b = Node({EverySecond("s")}, "node-b");
  constexpr int kTicks = 5;
  for (int i = 1; i <= kTicks; ++i) {
    clock_.Advance(i == 1 ? 500 : 1'000);
    ASSERT_TRUE(WaitUntil([&] { return Fires(*a) + Fires(*b) == static_cast<uint64_t>(i); }))
        << "tick " << i;
  }
  a.reset();
  b.reset();
  auto c = Node({}, "node-c");
  EXPECT_EQ(Queued(*c), kTicks) << "one job per tick, whichever node fired it";
}

TEST_F(ScheduleEngineTest, ATickOfAFullQueueIsCountedAsMissed) {
  EngineOptions o = Options();
  QueueSpec q = Queue("q", nullptr);
  q.config.handler = "external";
  q.config.max_depth = 1;
  auto engine = std::make_unique<Engine>(o, Must(SqliteStore::Open(path_), "open store"),
                                         std::vector<QueueSpec>{q}, clock_);
  engine->SetSchedules({EverySecond("s")});
  engine->Start();
  ASSERT_TRUE(WaitUntil([&] { return engine->schedules_started(); }));
  clock_.Advance(500);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 1; }));
  clock_.Advance(1'000);
  ASSERT_TRUE(WaitUntil([&] { return Missed(*engine) == 1; })) << "the queue is full";
  EXPECT_EQ(Fires(*engine), 1u);
  EXPECT_EQ(Queued(*engine), 1);
}

TEST_F(ScheduleEngineTest, AFailedReadOfTheStatesIsRetriedASecondLater) {
  FaultyStore* faulty = nullptr;
  auto engine = Node({EverySecond("s")}, "node-a", &faulty, [](FaultyStore& f) {
    f.FailNext(FaultyStore::Op::kScheduleStates, ErrorCode::kUnavailable);
  });
  ASSERT_TRUE(WaitUntil([&] { return faulty->calls(FaultyStore::Op::kScheduleStates) == 1; }));
  EXPECT_FALSE(engine->schedules_started());
  clock_.Advance(1'000);  // the retry, by the engine's clock
  ASSERT_TRUE(WaitUntil([&] { return engine->schedules_started(); }));
  EXPECT_EQ(faulty->calls(FaultyStore::Op::kScheduleStates), 2);
}

TEST_F(ScheduleEngineTest, AStoreFaultOnAFireIsCountedAsMissedAndTheNextTickFires) {
  FaultyStore* faulty = nullptr;
  auto engine = Node({EverySecond("s")}, "node-a", &faulty);
  faulty->FailNext(FaultyStore::Op::kFireSchedule, ErrorCode::kUnavailable);
  clock_.Advance(500);
  ASSERT_TRUE(WaitUntil([&] { return Missed(*engine) == 1; }));
  EXPECT_EQ(Fires(*engine), 0u);
  EXPECT_FALSE(State(*engine)) << "nothing recorded";
  clock_.Advance(1'000);
  ASSERT_TRUE(WaitUntil([&] { return Fires(*engine) == 1; }));
  EXPECT_EQ(Queued(*engine), 1);
}

}  // namespace
}  // namespace acceptd::engine_testing
