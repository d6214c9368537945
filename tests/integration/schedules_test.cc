// Schedules (`[[schedules]]`) against the real binary: GET /v1/schedules,
// an every-second (6-field) schedule making its jobs, and a restart after
// ticks were missed while the server was down (on_missed = "run_once", the
// default: the latest missed tick fires once at start). The policies' exact
// counts are unit-tested with a fake clock (tests/engine/schedule_*_test.cc).
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <chrono>
#include <thread>

#include "harness.h"

namespace acceptd::itest {
namespace {

const char* kConfig = R"(
[queues.ticks]
handler = "external"

[[schedules]]
name = "every-second"
cron = "* * * * * *"
queue = "ticks"
payload = '{"kind":"tick"}'
content_type = "application/json"

[[schedules]]
name = "nightly"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
queue = "ticks"
on_missed = "skip"
)";

json::array Schedules(const ServerProcess& s) {
  HttpResponse r = s.Get("/v1/schedules");
  if (r.status != 200) throw std::runtime_error("GET /v1/schedules: " + Describe(r));
  return json::parse(r.body).at("schedules").as_array();
}

// Polls GET /v1/schedules until the every-second schedule fired after
// `after` (ms); its entry.
json::object WaitFired(const ServerProcess& s, int64_t after = 0) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    json::object every = Schedules(s).at(0).as_object();
    if (!IsNull(every, "last_fire_at") && TimeField(every, "last_fire_at") > after) return every;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("the every-second schedule did not fire in 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The value of the sample "name{labels}" in a scrape.
double Metric(const ServerProcess& s, const std::string& series) {
  const std::string text = s.Get("/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) throw std::runtime_error("no sample " + series);
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(IntegrationSchedulesTest, ListsTheSchedulesAndEveryTickMakesAJob) {
  ServerProcess s(ServerOptions().WithQueues(kConfig));
  json::array list = Schedules(s);
  ASSERT_EQ(list.size(), 2u);
  const json::object& nightly = list[1].as_object();
  EXPECT_EQ(Str(nightly, "name"), "nightly");
  EXPECT_EQ(Str(nightly, "cron"), "30 2 * * *");
  EXPECT_EQ(Str(nightly, "timezone"), "Europe/Berlin");
  EXPECT_EQ(Str(nightly, "queue"), "ticks");
  EXPECT_EQ(Str(nightly, "content_type"), "application/octet-stream");
  EXPECT_EQ(Str(nightly, "on_missed"), "skip");
  EXPECT_TRUE(IsTimestamp(Str(nightly, "next_fire_at")));
  EXPECT_GT(TimeField(nightly, "next_fire_at"), NowMillis() - 1'000);
  EXPECT_TRUE(IsNull(nightly, "last_fire_at"));
  EXPECT_TRUE(IsNull(nightly, "last_job_id"));

  json::object every = WaitFired(s);
  EXPECT_EQ(Str(every, "on_missed"), "run_once");
  EXPECT_EQ(TimeField(every, "last_fire_at") % 1'000, 0) << "a tick is a whole second";
  EXPECT_GT(TimeField(every, "next_fire_at"), TimeField(every, "last_fire_at"));
  const std::string job_id = Str(every, "last_job_id");
  ASSERT_TRUE(IsJobId(job_id));
  json::object job = s.Job(job_id);
  EXPECT_EQ(Str(job, "queue"), "ticks");
  EXPECT_EQ(Str(job, "state"), "queued");
  // A tick's job as a worker leases it: the schedule's payload and type.
  HttpResponse lease = s.Post("/v1/queues/ticks/leases?wait=5", "", "");
  ASSERT_EQ(lease.status, 200) << Describe(lease);
  EXPECT_EQ(lease.body, R"({"kind":"tick"})");
  EXPECT_EQ(lease.Header("Content-Type"), "application/json");
  EXPECT_GE(Metric(s, "acceptd_schedule_fires_total{schedule=\"every-second\"}"), 1);
  EXPECT_EQ(Metric(s, "acceptd_schedule_fires_total{schedule=\"nightly\"}"), 0);
}

TEST(IntegrationSchedulesTest, ARestartRunsATickMissedWhileDownOnce) {
  ServerProcess s(ServerOptions().WithQueues(kConfig));
  const int64_t fired = TimeField(WaitFired(s), "last_fire_at");
  ASSERT_EQ(s.Terminate(), 0);
  // Down over at least two ticks: wait for the clock itself (what is tested
  // is the passing of time), polled with a deadline.
  const int64_t down_until = NowMillis() + 2'100;
  while (NowMillis() < down_until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  s.Restart();
  // The state survived: the restarted server starts from the last fire.
  json::object every = Schedules(s).at(0).as_object();
  ASSERT_FALSE(IsNull(every, "last_fire_at"));
  EXPECT_GE(TimeField(every, "last_fire_at"), fired);
  // At start: one catch-up job for the latest missed tick, the others counted.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Metric(s, "acceptd_schedule_fires_total{schedule=\"every-second\"}") < 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no fire after the restart";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(Metric(s, "acceptd_schedule_missed_total{schedule=\"every-second\"}"), 1);
  EXPECT_NE(s.Stderr().find("(missed while down: run_once)"), std::string::npos) << s.Stderr();
  EXPECT_EQ(Metric(s, "acceptd_schedule_missed_total{schedule=\"nightly\"}"), 0)
      << "a schedule that never fired missed nothing";
}

}  // namespace
}  // namespace acceptd::itest
