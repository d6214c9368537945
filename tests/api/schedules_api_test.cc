#include "api/schedules_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "store/testing/store_test_util.h"

namespace acceptd::api {
namespace {

using store_testing::Must;
namespace json = boost::json;

constexpr UnixMillis kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z

ScheduleConfig Schedule(std::string name, std::string cron) {
  ScheduleConfig s;
  s.name = std::move(name);
  s.cron = Must(CronExpr::Parse(cron), "cron");
  s.queue = "reports";
  s.content_type = "application/json";
  return s;
}

TEST(SchedulesDocumentTest, ListsEachScheduleWithItsNextAndLastFire) {
  ScheduleConfig nightly = Schedule("nightly", "30 2 * * *");
  nightly.zone = Must(TimeZone::FromPosixTz("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"), "tz");
  nightly.on_missed = MissedPolicy::kSkip;
  ScheduleConfig fast = Schedule("fast", "*/10 * * * * *");
  const JobId job = JobId::Random();
  json::value doc =
      SchedulesDocument({nightly, fast}, {ScheduleState{"fast", kT0 - 10'000, job}}, kT0 + 1);
  const json::array& list = doc.at("schedules").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0], json::parse(R"({"name":"nightly","cron":"30 2 * * *",
      "timezone":"Europe/Berlin","queue":"reports","content_type":"application/json",
      "on_missed":"skip","next_fire_at":"2023-11-15T01:30:00.000Z","last_fire_at":null,
      "last_job_id":null})"));
  EXPECT_EQ(list[1].at("next_fire_at"), "2023-11-14T22:13:30.000Z");
  EXPECT_EQ(list[1].at("last_fire_at"), "2023-11-14T22:13:10.000Z");
  EXPECT_EQ(list[1].at("last_job_id"), json::value(job.ToHex()));
  EXPECT_EQ(list[1].at("on_missed"), "run_once");
  EXPECT_EQ(list[1].at("timezone"), "UTC");
}

TEST(SchedulesDocumentTest, NoSchedulesIsAnEmptyList) {
  EXPECT_EQ(SchedulesDocument({}, {}, kT0), json::parse(R"({"schedules":[]})"));
}

}  // namespace
}  // namespace acceptd::api
