// The engine's side of completion callbacks: when a delivery is made, what
// counts as delivered, the retry schedule and giving up. A fake sender stands
// in for HTTP; a FakeClock decides when a retry is due.
#include <gtest/gtest.h>

#include <deque>
#include <mutex>

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

// Answers each Send() with the next scripted response (the last repeats).
class ScriptedSender final : public CallbackSender {
 public:
  explicit ScriptedSender(std::deque<CallbackResponse> script) : script_(std::move(script)) {}
  void Send(const Job& job, std::function<void(CallbackResponse)> done) override {
    CallbackResponse r;
    {
      std::lock_guard lock(mu_);
      sends_.emplace_back(job.id, job.callback->attempts + 1);
      r = script_.size() > 1 ? script_.front() : script_.back();
      if (script_.size() > 1) script_.pop_front();
    }
    done(r);
  }
  std::vector<std::pair<JobId, int>> sends() {
    std::lock_guard lock(mu_);
    return sends_;
  }

 private:
  std::mutex mu_;
  std::deque<CallbackResponse> script_;
  std::vector<std::pair<JobId, int>> sends_;
};

class CallbackDispatchTest : public ::testing::Test {
 protected:
  void Start(std::deque<CallbackResponse> script, int max_attempts = 3) {
    EngineOptions options = Options();
    options.callbacks.max_attempts = max_attempts;
    options.callbacks.backoff = BackoffPolicy{10'000, 10'000, 0};
    options.callbacks.poll_interval = 100;
    auto sqlite = std::shared_ptr<JobStore>(Must(SqliteStore::Open(dir_.path() + "/db"), "open"));
    auto store = std::make_unique<FaultyStore>(sqlite);  // fails nothing until told to
    faulty_ = store.get();
    engine_ = std::make_unique<Engine>(
        options, std::move(store),
        std::vector<QueueSpec>{
            Queue("q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
                    return HandlerSuccess{"{}", "application/json"};
                  }))},
        clock_);
    auto sender = std::make_unique<ScriptedSender>(std::move(script));
    sender_ = sender.get();
    engine_->SetCallbackSender(std::move(sender));
    engine_->AddObserver(recorder_.Observer());
    engine_->Start();
  }
  Job SubmitWithCallback() {
    SubmitRequest req = Request("q");
    req.callback_url = "http://hooks.example/x";
    return Must(SubmitSync(*engine_, req), "submit");
  }
  std::optional<Job> WaitAttempts(const JobId& id, int n) {
    return recorder_.WaitFor(id,
                             [n](const Job& j) { return j.callback && j.callback->attempts == n; });
  }

  TempDir dir_;
  FakeClock clock_;
  JobRecorder recorder_;
  ScriptedSender* sender_ = nullptr;
  FaultyStore* faulty_ = nullptr;  // owned by engine_
  std::unique_ptr<Engine> engine_;
};

TEST_F(CallbackDispatchTest, ATwoHundredDeliversOnceAtCompletion) {
  Start({CallbackResponse{204, ""}});
  Job job = SubmitWithCallback();
  auto after = WaitAttempts(job.id, 1);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->callback->last_status, 204);
  EXPECT_EQ(after->callback->delivered_at, clock_.Now());
  EXPECT_EQ(sender_->sends().size(), 1u);
  EXPECT_EQ(sender_->sends()[0].second, 1);
  clock_.Advance(60'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // housekeeping ticks
  EXPECT_EQ(sender_->sends().size(), 1u) << "a delivered callback is never sent again";
}

TEST_F(CallbackDispatchTest, FailuresAreRetriedOnTheBackoffScheduleThenDelivered) {
  Start({CallbackResponse{500, ""}, CallbackResponse{std::nullopt, "connection refused"},
         CallbackResponse{200, ""}});
  Job job = SubmitWithCallback();
  auto first = WaitAttempts(job.id, 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->callback->last_status, 500);
  EXPECT_EQ(first->callback->next_attempt_at, clock_.Now() + 10'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sender_->sends().size(), 1u) << "not before the backoff has passed";

  clock_.Advance(10'000);
  auto second = WaitAttempts(job.id, 2);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->callback->last_status.has_value());
  EXPECT_EQ(second->callback->last_error, "connection refused");

  clock_.Advance(10'000);
  auto third = WaitAttempts(job.id, 3);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->callback->last_status, 200);
  EXPECT_TRUE(third->callback->delivered_at.has_value());
  auto sends = sender_->sends();
  ASSERT_EQ(sends.size(), 3u);
  EXPECT_EQ(sends[1].second, 2);
  EXPECT_EQ(sends[2].second, 3);
}

TEST_F(CallbackDispatchTest, GivesUpAfterMaxAttempts) {
  Start({CallbackResponse{503, ""}}, /*max_attempts=*/2);
  Job job = SubmitWithCallback();
  ASSERT_TRUE(WaitAttempts(job.id, 1));
  clock_.Advance(10'000);
  auto last = WaitAttempts(job.id, 2);
  ASSERT_TRUE(last);
  EXPECT_FALSE(last->callback->delivered_at.has_value());
  EXPECT_FALSE(last->callback->next_attempt_at.has_value());
  clock_.Advance(1'000'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sender_->sends().size(), 2u);
}

TEST_F(CallbackDispatchTest, JobsWithoutACallbackAreNeverSent) {
  Start({CallbackResponse{200, ""}});
  Job job = Must(SubmitSync(*engine_, Request("q")), "submit");
  ASSERT_TRUE(recorder_.WaitTerminal(job.id));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(sender_->sends().empty());
}

// Store faults: a delivery whose claim fails is claimed again at the next
// poll; a delivery whose record fails stays leased, and is sent again once
// that lease has run out (at-least-once), then recorded.
class CallbackStoreFaultTest : public CallbackDispatchTest,
                               public ::testing::WithParamInterface<ErrorCode> {};

TEST_P(CallbackStoreFaultTest, AFailedClaimIsRetriedAtTheNextPoll) {
  Start({CallbackResponse{200, ""}});
  // Until healed: every batch with a claim of callbacks fails (a submit
  // batched with one too, which the client retries).
  faulty_->FailNext(FaultyStore::Op::kClaimCallbacks, GetParam(), 1'000'000);
  std::optional<Job> job;
  for (int i = 0; i < 10 && !job; ++i) {
    SubmitRequest req = Request("q");
    req.callback_url = "http://hooks.example/x";
    if (auto r = SubmitSync(*engine_, req)) job = *r;
  }
  ASSERT_TRUE(job);
  ASSERT_TRUE(recorder_.WaitTerminal(job->id));
  // A claim after the completion fails (the completion's own, or a poll's).
  const int64_t before = faulty_->injected();
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (faulty_->injected() == before && std::chrono::steady_clock::now() < deadline) {
    clock_.Advance(100);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polls, with a deadline
  }
  ASSERT_GT(faulty_->injected(), before);
  EXPECT_TRUE(sender_->sends().empty());
  faulty_->Heal();
  // The poll runs on the clock: move it until the delivery is made.
  std::optional<Job> after;
  for (int i = 0; i < 100 && !after; ++i) {
    clock_.Advance(100);
    after = recorder_.WaitFor(
        job->id, [](const Job& j) { return j.callback && j.callback->attempts == 1; },
        std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->callback->delivered_at.has_value());
  EXPECT_EQ(sender_->sends().size(), 1u);
}

TEST_P(CallbackStoreFaultTest, AnUnrecordedDeliveryIsSentAgainAfterItsLease) {
  Start({CallbackResponse{200, ""}});
  faulty_->FailNext(FaultyStore::Op::kRecordCallbackAttempt, GetParam());
  Job job = SubmitWithCallback();
  ASSERT_TRUE(recorder_.WaitTerminal(job.id));
  // Sent, but the record failed: nothing changes while the lease lasts.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (faulty_->injected() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polls, with a deadline
  }
  ASSERT_EQ(faulty_->injected(), 1);
  EXPECT_EQ(sender_->sends().size(), 1u);
  EXPECT_EQ(Must(engine_->Get(job.id), "Get").callback->attempts, 0);
  // The lease (2 x timeout + lease duration) runs out; the poll claims it again.
  const EngineOptions o = engine_testing::Options();
  clock_.Advance(2 * o.callbacks.timeout + o.lease_duration + 1);
  auto after = WaitAttempts(job.id, 1);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->callback->delivered_at.has_value());
  auto sends = sender_->sends();
  ASSERT_EQ(sends.size(), 2u) << "at-least-once: the unrecorded delivery is sent again";
  EXPECT_EQ(sends[1].second, 1) << "still the first recorded attempt";
}

INSTANTIATE_TEST_SUITE_P(EachErrorKind, CallbackStoreFaultTest,
                         ::testing::Values(ErrorCode::kUnavailable, ErrorCode::kInternal),
                         [](const ::testing::TestParamInfo<ErrorCode>& info) {
                           return std::string(info.param == ErrorCode::kInternal ? "Internal"
                                                                                 : "Unavailable");
                         });

}  // namespace
}  // namespace acceptd::engine_testing
