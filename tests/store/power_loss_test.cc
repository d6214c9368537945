// Power loss: a SqliteStore on FaultVfs, an engine taking concurrent submits
// (and running their jobs), and at a random mutating I/O call the disk
// freezes; the writes not yet synced are then lost (all, some or none of
// them), and the store is reopened. Every job whose submit was acknowledged
// (a 202 would have been sent) must be there with its payload, every outcome
// the engine reported must be there, and PRAGMA integrity_check must say ok.
//
// One database lives through all the cuts, so each round also recovers from
// the previous one. A third of the cuts are placed on a write (or sync) of
// the main database file, which in WAL mode only a checkpoint does: the power
// fails mid-checkpoint. The seed is printed; ACCEPTD_POWER_LOSS_SEED replays a run.
//
// Commits are pipelined (batch N+1 is written while batch N is synced): the
// test counts the cuts that fell inside that window (two commits written and
// not yet synced) and expects some. A poller reads the states of recent jobs
// meanwhile: a terminal state it was told must survive too (reads never
// report what a crash could undo).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../engine/engine_test_util.h"
#include "engine/engine.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/fault_vfs.h"
#include "store/testing/store_test_util.h"

namespace acceptd {
namespace {

using engine_testing::MakeHandler;
using store_testing::FaultVfs;
using store_testing::Must;
using store_testing::TempDir;

constexpr int kCuts = 100;
constexpr int kSubmitters = 4;
// A round that has not reached its cut by then is cut where it stands.
constexpr int kMaxSubmitsPerRound = 1'500;

// Quiets the engine's and the store's logging of the failures a cut causes.
class QuietLogs {
 public:
  QuietLogs() : level_(spdlog::get_level()) { spdlog::set_level(spdlog::level::off); }
  ~QuietLogs() { spdlog::set_level(level_); }

 private:
  spdlog::level::level_enum level_;
};

std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, "unix") != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  std::string out;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK) {
    while (sqlite3_step(s) == SQLITE_ROW) {
      if (!out.empty()) out += "; ";
      out += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
  } else {
    out = sqlite3_errmsg(db);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// Every job in the store, by id.
std::unordered_map<JobId, Job, JobIdHash> AllJobs(JobStore& store) {
  std::unordered_map<JobId, Job, JobIdHash> all;
  ListParams p;
  p.limit = 10'000;
  for (;;) {
    JobPage page = Must(store.List(p), "List");
    for (Job& j : page.jobs) all.emplace(j.id, std::move(j));
    if (!page.next_cursor) break;
    p.before_seq = page.next_cursor;
  }
  return all;
}

TEST(PowerLossTest, EveryAcknowledgedJobSurvivesCutsAtRandomPoints) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("ACCEPTD_POWER_LOSS_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::cout << "[ power loss ] seed " << seed << " (ACCEPTD_POWER_LOSS_SEED to replay)\n";
  SCOPED_TRACE("ACCEPTD_POWER_LOSS_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);

  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  FaultVfs& vfs = FaultVfs::Instance();
  vfs.Reset();
  QuietLogs quiet;

  std::mutex mu;
  std::unordered_map<JobId, std::string, JobIdHash> acked;  // id -> payload
  std::unordered_map<JobId, JobState, JobIdHash> reported;  // terminal states the engine reported
  std::unordered_map<JobId, JobState, JobIdHash> polled;    // terminal states a read reported
  std::vector<JobId> recent;                                // acked, newest last
  int mid_checkpoint_cuts = 0;
  std::atomic<int> pipelined_cuts{0};
  int64_t lost_writes = 0;

  for (int round = 0; round <= kCuts; ++round) {
    vfs.TrackDurability(true);
    // Half of the rounds with a disk whose WAL syncs take a while: the
    // engine then writes the next batch while one is being synced.
    vfs.SetWalSyncLatency(std::chrono::microseconds(round % 2 ? 300 : 0));
    auto store = Must(SqliteStore::Open(path, FaultVfs::kName), "open store");

    // What survived the previous cut.
    {
      auto all = AllJobs(*store);
      std::lock_guard lock(mu);
      for (const auto& [id, payload] : acked) {
        auto it = all.find(id);
        ASSERT_NE(it, all.end()) << "round " << round << ": acknowledged job " << id.ToHex()
                                 << " is lost";
        // The payload, for a sample (each read is a query of its own).
        if (id.bytes()[0] < 8) {
          EXPECT_EQ(Must(store->GetPayload(id), "GetPayload").body, payload) << id.ToHex();
        }
      }
      for (const auto& [id, state] : polled) {
        auto it = all.find(id);
        ASSERT_NE(it, all.end()) << "round " << round << ": polled job " << id.ToHex()
                                 << " is lost";
        EXPECT_EQ(it->second.state, state)
            << "round " << round << ": a read reported job " << id.ToHex() << " " << ToString(state)
            << ", and the power loss undid it";
      }
      for (const auto& [id, state] : reported) {
        auto it = all.find(id);
        ASSERT_NE(it, all.end()) << "round " << round << ": finished job " << id.ToHex()
                                 << " is lost";
        EXPECT_EQ(it->second.state, state) << "round " << round << ": job " << id.ToHex();
      }
    }
    if (round == kCuts) break;

    // Where the power fails this time.
    const int mode = round % 3;
    if (mode == 0) {
      vfs.ArmCut(std::uniform_int_distribution<int64_t>(1, 60)(rng), FaultVfs::Files::kMainDb);
    } else {
      vfs.ArmCut(std::uniform_int_distribution<int64_t>(1, 3'000)(rng), FaultVfs::Files::kAll);
    }
    const double keep = std::array<double, 3>{0.0, 0.5, 1.0}[rng() % 3];
    SqliteStore* sqlite = store.get();
    vfs.OnCut([&pipelined_cuts, sqlite] {
      if (sqlite->UnsyncedCommits() >= 2) ++pipelined_cuts;
    });

    auto engine = std::make_unique<Engine>(
        engine_testing::Options(), std::unique_ptr<JobStore>(std::move(store)),
        std::vector<QueueSpec>{engine_testing::Queue(
            "q", MakeHandler([](std::string_view payload, std::string_view, JobContext& ctx) {
              if (ctx.attempt() == 1 && payload.size() % 5 == 0) {
                return HandlerOutcome(HandlerFailure{"again", true});  // a retry: more writes
              }
              return HandlerOutcome(HandlerSuccess{std::string(payload), "text/plain"});
            }),
            4)},
        SystemClock::Instance());
    engine->AddObserver([&](const Job& job) {
      if (!IsTerminal(job.state)) return;
      std::lock_guard lock(mu);
      reported[job.id] = job.state;
    });
    engine->Start();

    std::atomic<int> submits{0};
    std::vector<std::thread> submitters;
    for (int t = 0; t < kSubmitters; ++t) {
      submitters.emplace_back([&, t] {
        std::mt19937_64 local(seed + static_cast<uint64_t>(round * kSubmitters + t));
        while (!vfs.frozen() && submits.fetch_add(1) < kMaxSubmitsPerRound) {
          SubmitRequest req = engine_testing::Request(
              "q", std::string(1 + local() % 300, static_cast<char>('a' + local() % 26)));
          req.id = JobId::Random();
          const std::string payload = req.payload;
          auto r = engine_testing::SubmitSync(*engine, std::move(req));
          if (r) {
            std::lock_guard lock(mu);
            acked.emplace(r->id, payload);
            recent.push_back(r->id);
          }
        }
      });
    }
    // Polls the newest jobs (those finishing now) while the power may fail.
    std::atomic<bool> stop_polling{false};
    std::thread poller([&] {
      std::mt19937_64 local(seed + static_cast<uint64_t>(round));
      while (!stop_polling.load() && !vfs.frozen()) {
        JobId id;
        {
          std::lock_guard lock(mu);
          if (recent.empty()) {
            std::this_thread::yield();
            continue;
          }
          id = recent[recent.size() - 1 - local() % std::min<size_t>(recent.size(), 8)];
        }
        auto job = engine->Get(id);
        if (job && IsTerminal(job->state)) {
          std::lock_guard lock(mu);
          polled[id] = job->state;
        }
      }
    });
    for (auto& t : submitters) t.join();
    stop_polling = true;
    poller.join();
    if (vfs.frozen() && mode == 0) ++mid_checkpoint_cuts;
    vfs.Freeze();  // if the round ended before its cut
    engine->Shutdown();
    engine.reset();  // closes every connection: nothing more can change the files

    vfs.OnCut(nullptr);
    lost_writes += vfs.Crash(keep, rng);
    const std::string integrity = IntegrityCheck(path);
    ASSERT_EQ(integrity, "ok") << "round " << round;
  }
  vfs.Reset();
  std::cout << "[ power loss ] " << kCuts << " cuts (" << mid_checkpoint_cuts << " mid-checkpoint, "
            << pipelined_cuts.load()
            << " with a commit written while the one before it was not synced), " << acked.size()
            << " acknowledged jobs, " << polled.size() << " terminal states polled, " << lost_writes
            << " unsynced writes lost\n";
  EXPECT_GT(pipelined_cuts.load(), 0) << "no cut fell into the pipelined window";
  EXPECT_GT(mid_checkpoint_cuts, 0) << "no cut fell on a checkpoint";
  EXPECT_GT(lost_writes, 0) << "no cut lost anything: the test proves nothing";
}

// A failed fsync of the WAL in the middle of concurrent submits: the store
// stops writing (fail-stop), and when the power then fails too, losing every
// write that was not synced, every acknowledged job is still there.
TEST(PowerLossTest, AfterAFailedFsyncNoAcknowledgedJobIsLost) {
  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  FaultVfs& vfs = FaultVfs::Instance();
  vfs.Reset();
  vfs.TrackDurability(true);
  QuietLogs quiet;
  auto engine = std::make_unique<Engine>(
      engine_testing::Options(),
      std::unique_ptr<JobStore>(Must(SqliteStore::Open(path, FaultVfs::kName), "open store")),
      std::vector<QueueSpec>{engine_testing::Queue(
          "q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
            return HandlerSuccess{"{}", "application/json"};
          }))},
      SystemClock::Instance());
  engine->Start();

  std::mutex mu;
  std::vector<JobId> acked;
  std::atomic<bool> failed_once{false};
  std::atomic<int> refused_after{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < kSubmitters; ++t) {
    submitters.emplace_back([&] {
      // Until the fsync failed and this thread saw 20 refusals after it.
      int refusals = 0;
      for (int i = 0; refusals < 20 && i < 5'000; ++i) {
        auto r = engine_testing::SubmitSync(*engine, engine_testing::Request("q"));
        if (r) {
          std::lock_guard lock(mu);
          acked.push_back(r->id);
          if (acked.size() == 200) vfs.SetSyncFailure(true, FaultVfs::Files::kWal);
        } else if (vfs.sync_failures() > 0) {
          if (!failed_once.exchange(true)) vfs.SetSyncFailure(false);  // the disk "recovers"
          ++refusals;
          ++refused_after;
        }
      }
    });
  }
  for (auto& t : submitters) t.join();
  EXPECT_GT(vfs.sync_failures(), 0);
  EXPECT_TRUE(store_testing::IsError(engine->Ready(), ErrorCode::kUnavailable));
  const size_t acked_at_stop = acked.size();
  auto late = engine_testing::SubmitSync(*engine, engine_testing::Request("q"));
  EXPECT_TRUE(store_testing::IsError(late, ErrorCode::kUnavailable))
      << "fail-stop: no write after a failed fsync, even once fsync works again";
  vfs.Freeze();
  engine->Shutdown();
  engine.reset();
  std::mt19937_64 rng(1);
  vfs.Crash(/*keep=*/0.0, rng);
  vfs.Reset();
  ASSERT_EQ(IntegrityCheck(path), "ok");

  auto store = Must(SqliteStore::Open(path), "reopen");
  auto all = AllJobs(*store);
  EXPECT_EQ(acked.size(), acked_at_stop);
  for (const JobId& id : acked)
    EXPECT_TRUE(all.count(id)) << "acknowledged job lost: " << id.ToHex();
  EXPECT_TRUE(store_testing::IsOk(store->Ping())) << "a restart recovers";
}

}  // namespace
}  // namespace acceptd
