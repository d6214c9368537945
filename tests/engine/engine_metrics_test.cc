// What the engine counts for GET /metrics (engine_metrics.h): each outcome
// where it is recorded, the attempts' run and wait times, the store's
// gauges, and the text the scrape shows.
#include "engine/engine_metrics.h"

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine_test_util.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {
namespace {

using store_testing::IsOk;
using store_testing::Must;
using store_testing::TempDir;

class EngineMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    QueueSpec work = Queue("work",
                           MakeHandler([this](std::string_view payload, std::string_view,
                                              JobContext& ctx) -> HandlerOutcome {
                             if (payload == "ok") return HandlerSuccess{"done", "text/plain"};
                             if (payload == "fail") {
                               return HandlerFailure{"no", /*retryable=*/false};
                             }
                             if (payload == "retry") return HandlerFailure{"again", true};
                             started_slow_.Notify();
                             while (!ctx.cancelled()) ctx.WaitFor(std::chrono::milliseconds(5));
                             return HandlerFailure{"canceled", true};
                           }),
                           4);
    work.config.max_attempts = 2;
    work.config.backoff = BackoffPolicy{0, 0, 0};
    QueueSpec idle = Queue(
        "idle", MakeHandler([](std::string_view, std::string_view, JobContext&) -> HandlerOutcome {
          return HandlerSuccess{"", "text/plain"};
        }));
    engine_ = std::make_unique<Engine>(Options(),
                                       Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open"),
                                       std::vector<QueueSpec>{work, idle}, SystemClock::Instance());
    engine_->AddObserver(recorder_.Observer());
    engine_->Start();
  }

  Job Submit(std::string payload, std::optional<Millis> delay = {}) {
    SubmitRequest r = Request("work", std::move(payload));
    r.delay = delay;
    return Must(SubmitSync(*engine_, std::move(r)), "Submit");
  }

  TempDir dir_;
  Event started_slow_;
  JobRecorder recorder_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineMetricsTest, CountsEachOutcomeWhereTheEngineRecordsIt) {
  const Job ok = Submit("ok");
  const Job fail = Submit("fail");
  const Job retry = Submit("retry");
  const Job slow = Submit("slow");
  const Job delayed = Submit("ok", 3'600'000);
  ASSERT_TRUE(recorder_.WaitTerminal(ok.id));
  ASSERT_TRUE(recorder_.WaitTerminal(fail.id));
  ASSERT_TRUE(recorder_.WaitTerminal(retry.id));
  ASSERT_TRUE(started_slow_.Wait());
  ASSERT_TRUE(IsOk(CancelSync(*engine_, slow.id)));
  ASSERT_TRUE(IsOk(CancelSync(*engine_, delayed.id)));  // queued: canceled at once
  ASSERT_TRUE(recorder_.WaitTerminal(slow.id));

  const EngineMetrics& m = engine_->metrics();
  const QueueMetrics* q = m.Queue("work");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->submitted.Value(), 5u);
  EXPECT_EQ(q->started.Value(), 5u);  // ok, fail, retry twice, slow
  EXPECT_EQ(q->succeeded.Value(), 1u);
  EXPECT_EQ(q->failed.Value(), 2u);  // not retryable; retried once, then out of attempts
  EXPECT_EQ(q->retried.Value(), 1u);
  EXPECT_EQ(q->canceled.Value(), 2u);
  EXPECT_EQ(q->timed_out.Value(), 0u);
  EXPECT_EQ(q->run_seconds.Read().count, 5u) << "the canceled queued job never ran";
  EXPECT_EQ(q->wait_seconds.Read().count, 5u);
  EXPECT_GE(m.commit_operations.Read().count, 1u);
  EXPECT_GE(m.commit_operations.Read().sum, 10.0) << "5 submits, 5 outcomes, 2 cancels";
  EXPECT_EQ(m.commit_failures.Value(), 0u);
  EXPECT_EQ(m.Queue("idle")->submitted.Value(), 0u);
}

TEST_F(EngineMetricsTest, AnIdempotentReplayIsNotCountedAsASubmit) {
  SubmitRequest r = Request("work", "ok");
  r.idempotency_key = "k1";
  r.request_digest = "d1";
  const Job first = Must(SubmitSync(*engine_, r), "Submit");
  const Job again = Must(SubmitSync(*engine_, r), "Submit again");
  EXPECT_EQ(first.id, again.id);
  EXPECT_EQ(engine_->metrics().Queue("work")->submitted.Value(), 1u);
}

TEST_F(EngineMetricsTest, GaugesShowTheStoresCountsAndTheOldestReadyJob) {
  Submit("ok", 3'600'000);  // queued, but delayed: not ready
  auto gauges = Must(
      Await<std::vector<QueueGauge>>([&](auto done) { engine_->QueueGauges(std::move(done)); }),
      "QueueGauges");
  ASSERT_EQ(gauges.size(), 2u);
  EXPECT_EQ(gauges[0].queue, "work");
  EXPECT_EQ(gauges[0].counts[static_cast<int>(JobState::kQueued)], 1);
  EXPECT_FALSE(gauges[0].oldest_ready_run_at) << "a delayed job is not ready";
  EXPECT_EQ(gauges[1].queue, "idle");

  metrics::MetricsText out;
  WriteQueueGauges(gauges, 1'000'000, out);
  EXPECT_NE(out.text().find("acceptd_queue_jobs{queue=\"work\",state=\"queued\"} 1\n"),
            std::string::npos)
      << out.text();
  EXPECT_NE(out.text().find("acceptd_queue_oldest_ready_job_age_seconds{queue=\"work\"} 0\n"),
            std::string::npos);
  gauges[1].oldest_ready_run_at = 997'500;
  metrics::MetricsText aged;
  WriteQueueGauges(gauges, 1'000'000, aged);
  EXPECT_NE(aged.text().find("acceptd_queue_oldest_ready_job_age_seconds{queue=\"idle\"} 2.5\n"),
            std::string::npos);
}

TEST_F(EngineMetricsTest, TheTextNamesEveryQueue) {
  Submit("ok");
  metrics::MetricsText out;
  engine_->metrics().Write(out);
  for (const char* line : {"acceptd_jobs_submitted_total{queue=\"work\"} 1\n",
                           "acceptd_jobs_submitted_total{queue=\"idle\"} 0\n",
                           "# TYPE acceptd_job_run_duration_seconds histogram\n",
                           "acceptd_callback_attempts_total{outcome=\"gave_up\"} 0\n"}) {
    EXPECT_NE(out.text().find(line), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace acceptd::engine_testing
