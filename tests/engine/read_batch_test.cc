// Status reads of a remote store are coalesced: the reads that pile up while
// the read threads are busy go to the store in one GetMany, each answered
// as Engine::Get(id) answers it alone (expiry checked by the engine).
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/gated_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::GatedStore;
using store_testing::IsError;
using store_testing::IsOk;
using store_testing::Must;
using store_testing::TempDir;
using SteadyClock = std::chrono::steady_clock;

class ReadBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gated = std::make_unique<GatedStore>(
        std::shared_ptr<JobStore>(Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open")));
    gate_ = gated.get();
    QueueSpec external = Queue("ext", nullptr);  // jobs stay queued until canceled
    external.config.handler = "external";
    EngineOptions options = Options();
    options.read_threads = 1;  // the reads below pile up behind the one that is held
    engine_ = std::make_unique<Engine>(options, std::move(gated), std::vector<QueueSpec>{external},
                                       clock_);
    engine_->Start();
  }
  void TearDown() override {
    gate_->Open();
    engine_.reset();
  }

  Job Submit() { return Must(SubmitSync(*engine_, Request("ext")), "submit"); }

  // Starts Engine::Get(id); its answer lands in answers_[slot].
  void StartGet(const JobId& id, int slot) {
    engine_->Get(id, [this, slot](Result<Job> job) {
      std::lock_guard lock(mu_);
      answers_.emplace(slot, std::move(job));
    });
  }
  size_t answered() {
    std::lock_guard lock(mu_);
    return answers_.size();
  }
  template <typename Pred>
  bool WaitUntil(Pred pred) {
    const auto deadline = SteadyClock::now() + kWait;
    while (!pred()) {
      if (SteadyClock::now() >= deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

  TempDir dir_;
  FakeClock clock_;
  GatedStore* gate_ = nullptr;
  std::unique_ptr<Engine> engine_;
  std::mutex mu_;
  std::map<int, Result<Job>> answers_;  // guarded by mu_
};

TEST_F(ReadBatchTest, StatusReadsWaitingForABusyReadThreadAreOneGetMany) {
  ASSERT_FALSE(engine_->ReadsInline());
  const Job held = Submit();
  std::vector<Job> queued;
  for (int i = 0; i < 8; ++i) queued.push_back(Submit());
  const Job expired = Submit();
  ASSERT_TRUE(IsOk(CancelSync(*engine_, expired.id)));
  clock_.Advance(3'600'000);  // the queue's retention: expired, not purged yet
  const JobId unknown = JobId::Random();

  // The only read thread is stuck on a read the database does not answer.
  gate_->Close(held.id);
  StartGet(held.id, 0);
  ASSERT_TRUE(WaitUntil([&] { return gate_->blocked() == 1; })) << "the read never started";

  int slot = 1;
  for (const Job& j : queued) StartGet(j.id, slot++);
  StartGet(expired.id, slot++);
  StartGet(unknown, slot++);
  StartGet(queued[0].id, slot++);  // the same job polled twice
  const int asked = slot;
  EXPECT_EQ(answered(), 0u);

  gate_->Open();
  ASSERT_TRUE(WaitUntil([&] { return answered() == static_cast<size_t>(asked); }));
  EXPECT_EQ(gate_->get_many_sizes(), (std::vector<size_t>{1, static_cast<size_t>(asked - 1)}))
      << "the reads that waited went to the store together";

  std::lock_guard lock(mu_);
  ASSERT_TRUE(answers_.at(0).ok());
  EXPECT_EQ(answers_.at(0)->id, held.id);
  for (int i = 0; i < 8; ++i) {
    const Result<Job>& got = answers_.at(1 + i);
    ASSERT_TRUE(got.ok()) << i;
    EXPECT_EQ(got->id, queued[static_cast<size_t>(i)].id);
    EXPECT_EQ(got->state, JobState::kQueued);
  }
  EXPECT_TRUE(IsError(answers_.at(9), ErrorCode::kGone)) << "past expires_at, before the purge";
  EXPECT_TRUE(IsError(answers_.at(10), ErrorCode::kNotFound));
  ASSERT_TRUE(answers_.at(11).ok());
  EXPECT_EQ(answers_.at(11)->id, queued[0].id);
}

TEST_F(ReadBatchTest, AReadAloneIsAnsweredAtOnce) {
  const Job job = Submit();
  StartGet(job.id, 0);
  ASSERT_TRUE(WaitUntil([&] { return answered() == 1; }));
  EXPECT_EQ(gate_->get_many_sizes(), std::vector<size_t>{1});
}

}  // namespace
}  // namespace acceptd::engine_testing
