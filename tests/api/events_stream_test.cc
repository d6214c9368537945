// StreamJobEvents against a real Engine (SqliteStore in a temp dir), writing
// into a recording StreamWriter: wake-ups on state and progress commits, the
// end after the terminal event, `deleted`, heartbeats, and a client that left.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "../engine/engine_test_util.h"
#include "api/events.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::api {
namespace {

namespace asio = boost::asio;
using engine_testing::Event;
using engine_testing::kWait;
using engine_testing::MakeHandler;
using store_testing::Must;
using store_testing::TempDir;

// Records what a stream writes; fails every write after `accept` writes.
class RecordingWriter final : public http::StreamWriter {
 public:
  explicit RecordingWriter(int accept = 1 << 30) : accept_(accept) {}

  asio::awaitable<bool> Write(std::string_view data) override {
    std::lock_guard lock(mu_);
    if (accept_ == 0) co_return false;
    --accept_;
    text_ += data;
    cv_.notify_all();
    co_return true;
  }
  void Finish() {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  // Waits until the text contains `needle` `times` times (or the stream ended).
  bool WaitFor(std::string_view needle, int times = 1) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return Count(needle) >= times; });
  }
  bool WaitDone() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return done_; });
  }
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }

 private:
  int Count(std::string_view needle) const {
    int n = 0;
    for (size_t p = text_.find(needle); p != std::string::npos; p = text_.find(needle, p + 1)) ++n;
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  int accept_;
  bool done_ = false;
};

class EventsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The handler reports progress 50, then waits for the gate (or a cancel).
    QueueSpec q = engine_testing::Queue("q", MakeHandler([this](std::string_view, std::string_view,
                                                                JobContext& ctx) -> HandlerOutcome {
                                          ctx.ReportProgress(50, "half");
                                          while (!gate_.IsSet()) {
                                            if (!ctx.WaitFor(std::chrono::milliseconds(5))) {
                                              return HandlerFailure{"canceled", false, "canceled"};
                                            }
                                          }
                                          return HandlerSuccess{"{}", "application/json"};
                                        }));
    auto store =
        std::unique_ptr<JobStore>(Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open"));
    engine_ = std::make_unique<Engine>(engine_testing::Options(), std::move(store),
                                       std::vector<QueueSpec>{q}, SystemClock::Instance());
    engine_->Start();
    io_thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    gate_.Notify();
    io_.stop();
    io_thread_.join();
    engine_.reset();
  }

  void Stream(const JobId& id, RecordingWriter& w, Millis heartbeat = 60'000) {
    asio::co_spawn(io_, StreamJobEvents(*engine_, id, EventCursor(), heartbeat, w),
                   [&w](std::exception_ptr) { w.Finish(); });
  }

  TempDir dir_;
  Event gate_;
  std::unique_ptr<Engine> engine_;
  asio::io_context io_;
  std::thread io_thread_;
};

TEST_F(EventsStreamTest, ProgressWakesTheStreamWhichEndsAfterTheTerminalEvent) {
  const Job job =
      Must(engine_testing::SubmitSync(*engine_, engine_testing::Request("q")), "submit");
  RecordingWriter w;
  Stream(job.id, w);
  ASSERT_TRUE(w.WaitFor("event: progress")) << w.text();
  EXPECT_NE(w.text().find(R"(data: {"percent":50,"message":"half"})"), std::string::npos);
  gate_.Notify();
  ASSERT_TRUE(w.WaitDone()) << w.text();
  const std::string text = w.text();
  const size_t last = text.rfind("event: ");
  ASSERT_NE(last, std::string::npos);
  EXPECT_EQ(text.substr(last, 13), "event: state\n");
  EXPECT_NE(text.find("\"state\":\"succeeded\"", last), std::string::npos) << text;
  EXPECT_EQ(engine_->watchers().size(), 0u) << "the listener was not removed";
}

TEST_F(EventsStreamTest, CancelEndsTheStreamWithCanceled) {
  const Job job =
      Must(engine_testing::SubmitSync(*engine_, engine_testing::Request("q")), "submit");
  RecordingWriter w;
  Stream(job.id, w);
  ASSERT_TRUE(w.WaitFor("event: progress")) << w.text();
  ASSERT_TRUE(engine_testing::CancelSync(*engine_, job.id));
  ASSERT_TRUE(w.WaitDone()) << w.text();
  EXPECT_NE(w.text().find("\"state\":\"canceled\""), std::string::npos) << w.text();
}

TEST_F(EventsStreamTest, DeletingTheJobSendsDeletedAndEnds) {
  SubmitRequest r = engine_testing::Request("q");
  r.delay = 3'600'000;  // stays queued
  const Job job = Must(engine_testing::SubmitSync(*engine_, std::move(r)), "submit");
  RecordingWriter w;
  Stream(job.id, w);
  ASSERT_TRUE(w.WaitFor("event: state")) << w.text();
  ASSERT_TRUE(engine_testing::DeleteSync(*engine_, job.id));
  ASSERT_TRUE(w.WaitDone()) << w.text();
  EXPECT_NE(w.text().find("event: deleted\ndata: {\"id\":\"" + job.id.ToHex() + "\"}\n\n"),
            std::string::npos)
      << w.text();
}

TEST_F(EventsStreamTest, HeartbeatsKeepAnIdleStreamAlive) {
  SubmitRequest r = engine_testing::Request("q");
  r.delay = 3'600'000;
  const Job job = Must(engine_testing::SubmitSync(*engine_, std::move(r)), "submit");
  RecordingWriter w;
  Stream(job.id, w, /*heartbeat=*/20);
  ASSERT_TRUE(w.WaitFor(std::string(kHeartbeatComment), 3)) << w.text();
  EXPECT_EQ(w.text().find("event: state"), 0u);
  ASSERT_TRUE(engine_testing::CancelSync(*engine_, job.id));
  ASSERT_TRUE(w.WaitDone()) << w.text();
}

TEST_F(EventsStreamTest, AClientThatLeftEndsTheStreamAtTheNextWrite) {
  SubmitRequest r = engine_testing::Request("q");
  r.delay = 3'600'000;
  const Job job = Must(engine_testing::SubmitSync(*engine_, std::move(r)), "submit");
  RecordingWriter w(/*accept=*/1);  // the first event, then the client is gone
  Stream(job.id, w, /*heartbeat=*/20);
  ASSERT_TRUE(w.WaitDone()) << w.text();
  EXPECT_EQ(engine_->watchers().size(), 0u);
}

}  // namespace
}  // namespace acceptd::api
