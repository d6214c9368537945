#include "core/cron.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/time_zone.h"
#include "time_zone_testing.h"

namespace acceptd {
namespace {

using tz_testing::At;
using tz_testing::ReadZone;

CronExpr MustParse(std::string_view text) {
  auto expr = CronExpr::Parse(text);
  EXPECT_TRUE(expr.ok()) << text << ": " << (expr.ok() ? "" : expr.error().detail);
  return expr.ok() ? *expr : *CronExpr::Parse("* * * * *");
}

// The values 0..63 a matcher accepts, for compact expectations.
template <typename F>
std::vector<int> Values(int from, int to, F matches) {
  std::vector<int> out;
  for (int v = from; v <= to; ++v) {
    if (matches(v)) out.push_back(v);
  }
  return out;
}

using V = std::vector<int>;

TEST(CronParseTest, FieldsListsRangesSteps) {
  CronExpr e = MustParse("*/15 9-17/2 1,15 JAN,jul MON-fri");
  EXPECT_FALSE(e.has_seconds());
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesSecond(v); }), V{0});
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesMinute(v); }), (V{0, 15, 30, 45}));
  EXPECT_EQ(Values(0, 23, [&](int v) { return e.MatchesHour(v); }), (V{9, 11, 13, 15, 17}));
  EXPECT_EQ(Values(1, 12, [&](int v) { return e.MatchesMonth(v); }), (V{1, 7}));
  EXPECT_TRUE(e.fixed_hour());

  e = MustParse("5/20 0-4,22-23 * * *");
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesMinute(v); }), (V{5, 25, 45}));
  EXPECT_EQ(Values(0, 23, [&](int v) { return e.MatchesHour(v); }), (V{0, 1, 2, 3, 4, 22, 23}));

  e = MustParse("0 */6 */10 */5 *");
  EXPECT_EQ(Values(0, 23, [&](int v) { return e.MatchesHour(v); }), (V{0, 6, 12, 18}));
  EXPECT_EQ(Values(1, 12, [&](int v) { return e.MatchesMonth(v); }), (V{1, 6, 11}));
  EXPECT_FALSE(e.fixed_hour());

  e = MustParse("1-10/3,30,59 * * * *");
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesMinute(v); }), (V{1, 4, 7, 10, 30, 59}));

  e = MustParse("00 05 * * *");  // leading zeros
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesMinute(v); }), V{0});
  EXPECT_EQ(Values(0, 23, [&](int v) { return e.MatchesHour(v); }), V{5});

  e = MustParse("0 0 * Mar-MAY/2 *");
  EXPECT_EQ(Values(1, 12, [&](int v) { return e.MatchesMonth(v); }), (V{3, 5}));
}

TEST(CronParseTest, SecondsField) {
  CronExpr e = MustParse("*/10 * * * * *");
  EXPECT_TRUE(e.has_seconds());
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesSecond(v); }), (V{0, 10, 20, 30, 40, 50}));
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesMinute(v); }).size(), 60u);
  e = MustParse("30 0 12 * * *");
  EXPECT_EQ(Values(0, 59, [&](int v) { return e.MatchesSecond(v); }), V{30});
  EXPECT_EQ(Values(0, 23, [&](int v) { return e.MatchesHour(v); }), V{12});
}

// 2026-06-01 is a Monday, 06-07 a Sunday.
TEST(CronParseTest, DayOfWeekNamesAndSeven) {
  auto days = [](const CronExpr& e) {
    return Values(1, 7, [&](int d) { return e.MatchesDay(2026, 6, d); });
  };
  EXPECT_EQ(days(MustParse("0 0 * * 0")), V{7});
  EXPECT_EQ(days(MustParse("0 0 * * 7")), V{7});
  EXPECT_EQ(days(MustParse("0 0 * * sun")), V{7});
  EXPECT_EQ(days(MustParse("0 0 * * 5-7")), (V{5, 6, 7}));
  EXPECT_EQ(days(MustParse("0 0 * * FRI-SAT,0")), (V{5, 6, 7}));
  EXPECT_EQ(days(MustParse("0 0 * * 0-7")), (V{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(days(MustParse("0 0 * * */2")), (V{2, 4, 6, 7}));  // 0,2,4,6: Sun, Tue, Thu, Sat
  EXPECT_EQ(days(MustParse("0 0 * * 1/2")), (V{1, 3, 5, 7}));  // 1,3,5,7: Mon, Wed, Fri, Sun
}

// Vixie cron's rule: both day fields restricted -> either matches; one of
// them starting with '*' -> both must.
TEST(CronParseTest, DayOfMonthOrDayOfWeek) {
  CronExpr either = MustParse("0 0 1 * MON");
  EXPECT_TRUE(either.MatchesDay(2026, 6, 1));   // Monday and the 1st
  EXPECT_TRUE(either.MatchesDay(2026, 6, 8));   // Monday
  EXPECT_TRUE(either.MatchesDay(2026, 7, 1));   // Wednesday, the 1st
  EXPECT_FALSE(either.MatchesDay(2026, 6, 2));  // Tuesday the 2nd
  CronExpr both = MustParse("0 0 */2 * MON");
  EXPECT_TRUE(both.MatchesDay(2026, 6, 1));   // Monday, odd
  EXPECT_FALSE(both.MatchesDay(2026, 6, 8));  // Monday, even
  EXPECT_FALSE(both.MatchesDay(2026, 6, 3));  // Wednesday, odd
  CronExpr dom_only = MustParse("0 0 13 * *");
  EXPECT_TRUE(dom_only.MatchesDay(2026, 6, 13));
  EXPECT_FALSE(dom_only.MatchesDay(2026, 6, 12));
  CronExpr dow_only = MustParse("0 0 * * FRI");
  EXPECT_TRUE(dow_only.MatchesDay(2026, 6, 12));
  EXPECT_FALSE(dow_only.MatchesDay(2026, 6, 13));
  CronExpr friday_13th_or = MustParse("0 0 13 * 5");  // the 13th OR any Friday
  EXPECT_TRUE(friday_13th_or.MatchesDay(2026, 6, 12));
  EXPECT_TRUE(friday_13th_or.MatchesDay(2026, 6, 13));
  EXPECT_FALSE(friday_13th_or.MatchesDay(2026, 6, 14));
}

TEST(CronParseTest, Macros) {
  struct Case {
    const char* macro;
    const char* same_as;
  };
  const Case cases[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},    {"  @Hourly ", "0 * * * *"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.macro);
    const CronExpr macro = MustParse(c.macro);
    const CronExpr plain = MustParse(c.same_as);
    // Same fire times over a year and a half.
    std::optional<UnixMillis> a = At("2026-01-01T00:00:00Z");
    std::optional<UnixMillis> b = a;
    for (int i = 0; i < 30 && a && b; ++i) {
      a = NextFireTime(macro, TimeZone::Utc(), *a);
      b = NextFireTime(plain, TimeZone::Utc(), *b);
      ASSERT_EQ(a, b);
    }
    EXPECT_FALSE(macro.has_seconds());
  }
  EXPECT_EQ(MustParse("  @Hourly ").ToString(), "@Hourly");
}

TEST(CronParseTest, KeepsTheTextAsGiven) {
  EXPECT_EQ(MustParse(" 30\t2 * *  * ").ToString(), "30\t2 * *  *");
  EXPECT_EQ(MustParse("*/10 * * * * *").ToString(), "*/10 * * * * *");
}

TEST(CronParseTest, RefusesWithAPreciseMessage) {
  struct Case {
    const char* expr;
    const char* detail;  // a substring of the error's detail
  };
  const Case cases[] = {
      {"", "expected 5 fields"},
      {"   ", "got 0"},
      {"* * * *", "got 4"},
      {"* * * * * * *", "got 7"},
      {"0 0 * * * foo", "day-of-week: unknown name \"foo\""},
      {"60 * * * *", "minute: 60 is out of range 0-59"},
      {"60 * * * * *", "second: 60 is out of range 0-59"},
      {"* 24 * * *", "hour: 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
      {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
      {"* * * 0 *", "month: 0 is out of range 1-12"},
      {"* * * 13 *", "month: 13 is out of range 1-12"},
      {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
      {"99999999999999999999 * * * *", "minute: 99999999999999999999 is out of range"},
      {"*/0 * * * *", "minute: a step of 0"},
      {"1-5/0 * * * *", "minute: a step of 0"},
      {"*/60 * * * *", "minute: step 60 is larger than the field's range 0-59"},
      {"* */24 * * *", "hour: step 24"},
      {"5-1 * * * *", "minute: reversed range \"5-1\""},
      {"* * * * FRI-MON", "day-of-week: reversed range"},
      {"* * * DEC-JAN *", "month: reversed range"},
      {"1,,2 * * * *", "minute: empty list item"},
      {",1 * * * *", "minute: empty list item"},
      {"1, * * * *", "minute: empty list item"},
      {"* * * JANUARY *", "month: unknown name \"JANUARY\""},
      {"* * * * MO", "day-of-week: unknown name \"MO\""},
      {"* JAN * * *", "hour: \"JAN\" is not a number"},
      {"* * * * */MON", "day-of-week: step \"MON\" is not a number"},
      {"? * * * *", "minute: \"?\" is not a number"},
      {"* * ? * *", "day-of-month"},
      {"* * L * *", "day-of-month"},
      {"* * 15W * *", "day-of-month: unexpected 'W'"},
      {"* * * * 1#2", "day-of-week"},
      {"* * * * 5L", "day-of-week"},
      {"1-2-3 * * * *", "minute: unexpected '-'"},
      {"*/2/3 * * * *", "minute: step \"2/3\" is not a number"},
      {"*/ * * * *", "minute: missing step"},
      {"/5 * * * *", "minute: missing value"},
      {"-1 * * * *", "minute: missing value"},
      {"1- * * * *", "minute: missing value"},
      {"1-* * * * *", "minute: \"*\" is not a number"},
      {"** * * * *", "minute"},
      {"*/x * * * *", "minute: step \"x\" is not a number"},
      {"+1 * * * *", "minute"},
      {"* * * * *\n", "day-of-week"},
      {"@reboot", "unknown macro \"@reboot\""},
      {"@daily 0", "unknown macro"},
      {"@", "unknown macro"},
  };
  for (const Case& c : cases) {
    auto e = CronExpr::Parse(c.expr);
    ASSERT_FALSE(e.ok()) << '"' << c.expr << "\" accepted";
    EXPECT_EQ(e.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(e.error().detail.find(c.detail), std::string::npos)
        << '"' << c.expr << "\": " << e.error().detail;
    EXPECT_EQ(e.error().detail.rfind("cron expression \"", 0), 0u) << e.error().detail;
  }
}

// "none" for nullopt, else RFC 3339: failures read like the tables.
std::string Next(const char* expr, const TimeZone& zone, const std::string& after) {
  auto t = NextFireTime(MustParse(expr), zone, At(after));
  return t ? FormatRfc3339(*t) : "none";
}

// The next `n` fire times after `after`.
std::vector<std::string> Fires(const char* expr, const TimeZone& zone, const std::string& after,
                               int n) {
  const CronExpr e = MustParse(expr);
  std::vector<std::string> out;
  std::optional<UnixMillis> t = At(after);
  for (int i = 0; i < n; ++i) {
    t = NextFireTime(e, zone, *t);
    if (!t) break;
    out.push_back(FormatRfc3339(*t));
  }
  return out;
}

using S = std::vector<std::string>;

TEST(NextFireTimeTest, UtcTable) {
  struct Case {
    const char* expr;
    const char* after;
    const char* next;
  };
  const Case cases[] = {
      // Strictly after, whole seconds.
      {"* * * * *", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00.000Z"},
      {"* * * * *", "2026-01-01T00:00:59.999Z", "2026-01-01T00:01:00.000Z"},
      {"* * * * *", "2026-01-01T00:00:00.001Z", "2026-01-01T00:01:00.000Z"},
      {"*/10 * * * * *", "2026-01-01T00:00:00Z", "2026-01-01T00:00:10.000Z"},
      {"*/10 * * * * *", "2026-01-01T00:00:09.999Z", "2026-01-01T00:00:10.000Z"},
      {"*/10 * * * * *", "2026-01-01T23:59:55Z", "2026-01-02T00:00:00.000Z"},
      {"15,45 30 12 * * *", "2026-01-01T12:30:15Z", "2026-01-01T12:30:45.000Z"},
      {"15,45 30 12 * * *", "2026-01-01T12:30:45Z", "2026-01-02T12:30:15.000Z"},
      {"30 2 * * *", "2026-01-01T02:30:00Z", "2026-01-02T02:30:00.000Z"},
      {"30 2 * * *", "2026-01-01T02:29:59.999Z", "2026-01-01T02:30:00.000Z"},
      {"0 0 1 1 *", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00.000Z"},
      {"@yearly", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00.000Z"},
      {"@monthly", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00.000Z"},
      {"@weekly", "2026-12-05T12:00:00Z", "2026-12-06T00:00:00.000Z"},  // Saturday -> Sunday
      {"@daily", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00.000Z"},
      {"@hourly", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00.000Z"},
      {"59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00.000Z"},
      {"0 12 * * MON-FRI", "2026-12-04T12:00:00Z", "2026-12-07T12:00:00.000Z"},
      {"0 0 31 * *", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00.000Z"},
      {"0 0 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00.000Z"},
      // February 29th: the next leap year, also across 2100 (not a leap year).
      {"0 0 29 2 *", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00.000Z"},
      {"0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00.000Z"},
      {"0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00.000Z"},
      // The 29th of February OR any Monday in February.
      {"0 0 29 2 1", "2026-03-01T00:00:00Z", "2027-02-01T00:00:00.000Z"},
      // Impossible dates: none, quickly.
      {"0 0 30 2 *", "2026-01-01T00:00:00Z", "none"},
      {"0 0 31 4,6,9,11 *", "2026-01-01T00:00:00Z", "none"},
      // Before the epoch.
      {"0 0 1 1 *", "1969-06-01T00:00:00Z", "1970-01-01T00:00:00.000Z"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Next(c.expr, TimeZone::Utc(), c.after), c.next) << c.expr << " after " << c.after;
  }
}

TEST(NextFireTimeTest, OutOfRangeInstants) {
  const CronExpr e = MustParse("* * * * *");
  EXPECT_FALSE(NextFireTime(e, TimeZone::Utc(), std::numeric_limits<int64_t>::max()));
  EXPECT_FALSE(NextFireTime(e, TimeZone::Utc(), std::numeric_limits<int64_t>::min()));
  EXPECT_TRUE(NextFireTime(e, TimeZone::Utc(), At("9999-01-01T00:00:00Z")));
}

TEST(NextFireTimeTest, SecondsExpressionSequence) {
  EXPECT_EQ(Fires("*/20 59 23 31 12 *", TimeZone::Utc(), "2026-12-31T23:58:59Z", 4),
            (S{"2026-12-31T23:59:00.000Z", "2026-12-31T23:59:20.000Z", "2026-12-31T23:59:40.000Z",
               "2027-12-31T23:59:00.000Z"}));
}

// Europe/Berlin, Sunday 2026-03-29: at 01:00Z clocks jump from 02:00 CET to
// 03:00 CEST; local 02:00-02:59 does not exist.
TEST(NextFireTimeTest, BerlinSpringForward) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  // A fixed time in the gap fires at the first instant after it, once.
  EXPECT_EQ(Fires("30 2 * * *", berlin, "2026-03-27T12:00:00Z", 4),
            (S{"2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z",
               "2026-03-31T00:30:00.000Z"}));
  EXPECT_EQ(
      Fires("0 2 * * *", berlin, "2026-03-27T12:00:00Z", 3),
      (S{"2026-03-28T01:00:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:00:00.000Z"}));
  // Every matching time in the gap fires together, once; 03:00 (which
  // exists) is the same instant and does not fire again.
  EXPECT_EQ(Fires("*/15 2,3 * * *", berlin, "2026-03-29T00:00:00Z", 5),
            (S{"2026-03-29T01:00:00.000Z", "2026-03-29T01:15:00.000Z", "2026-03-29T01:30:00.000Z",
               "2026-03-29T01:45:00.000Z", "2026-03-30T00:00:00.000Z"}));
  EXPECT_EQ(Next("0 3 * * *", berlin, "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00.000Z");
  EXPECT_EQ(Next("59 1 * * *", berlin, "2026-03-28T12:00:00Z"), "2026-03-29T00:59:00.000Z");
  // Real-time schedules skip the local times that do not exist: still one
  // fire per real hour.
  EXPECT_EQ(Fires("30 * * * *", berlin, "2026-03-28T23:00:00Z", 4),
            (S{"2026-03-28T23:30:00.000Z", "2026-03-29T00:30:00.000Z", "2026-03-29T01:30:00.000Z",
               "2026-03-29T02:30:00.000Z"}));
  EXPECT_EQ(Fires("0 */2 * * *", berlin, "2026-03-28T22:00:00Z", 3),
            (S{"2026-03-28T23:00:00.000Z",     // 00:00 CET
               "2026-03-29T02:00:00.000Z",     // 04:00 CEST (02:00 does not exist)
               "2026-03-29T04:00:00.000Z"}));  // 06:00 CEST
  // Starting right at the change.
  EXPECT_EQ(Next("30 2 * * *", berlin, "2026-03-29T00:59:59.999Z"), "2026-03-29T01:00:00.000Z");
  EXPECT_EQ(Next("30 2 * * *", berlin, "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00.000Z");
}

// Europe/Berlin, Sunday 2026-10-25: at 01:00Z clocks go back from 03:00 CEST
// to 02:00 CET; local 02:00-02:59 happens twice (00:00-00:59Z, 01:00-01:59Z).
TEST(NextFireTimeTest, BerlinFallBack) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  // A fixed time fires at its first occurrence only.
  EXPECT_EQ(Fires("30 2 * * *", berlin, "2026-10-23T12:00:00Z", 4),
            (S{"2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z",
               "2026-10-27T01:30:00.000Z"}));
  // Also when asked during the repetition.
  EXPECT_EQ(Next("30 2 * * *", berlin, "2026-10-25T01:10:00Z"), "2026-10-26T01:30:00.000Z");
  EXPECT_EQ(Next("45 2 * * *", berlin, "2026-10-25T01:10:00Z"), "2026-10-26T01:45:00.000Z");
  EXPECT_EQ(Fires("*/20 2 * * *", berlin, "2026-10-24T23:00:00Z", 4),
            (S{"2026-10-25T00:00:00.000Z", "2026-10-25T00:20:00.000Z", "2026-10-25T00:40:00.000Z",
               "2026-10-26T01:00:00.000Z"}));
  EXPECT_EQ(Next("0 3 * * *", berlin, "2026-10-24T12:00:00Z"), "2026-10-25T02:00:00.000Z");
  EXPECT_EQ(Next("0 1 * * *", berlin, "2026-10-24T12:00:00Z"), "2026-10-24T23:00:00.000Z");
  // Real-time schedules fire in both occurrences: one fire per real hour.
  EXPECT_EQ(Fires("30 * * * *", berlin, "2026-10-24T23:00:00Z", 4),
            (S{"2026-10-24T23:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-25T01:30:00.000Z",
               "2026-10-25T02:30:00.000Z"}));
  EXPECT_EQ(Fires("*/30 * * * * *", berlin, "2026-10-25T00:59:00Z", 4),
            (S{"2026-10-25T00:59:30.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T01:00:30.000Z",
               "2026-10-25T01:01:00.000Z"}));
}

// America/New_York 2026: 02:00 EST -> 03:00 EDT on March 8th (07:00Z), 02:00
// EDT -> 01:00 EST on November 1st (06:00Z).
TEST(NextFireTimeTest, NewYork) {
  const TimeZone ny = ReadZone("America/New_York");
  EXPECT_EQ(
      Fires("30 2 * * *", ny, "2026-03-07T12:00:00Z", 3),
      (S{"2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z", "2026-03-10T06:30:00.000Z"}));
  EXPECT_EQ(Fires("30 1 * * *", ny, "2026-10-31T12:00:00Z", 2),
            (S{"2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"}));
  EXPECT_EQ(Fires("0 9 * * MON-FRI", ny, "2026-03-06T15:00:00Z", 2),
            (S{"2026-03-09T13:00:00.000Z", "2026-03-10T13:00:00.000Z"}));
}

// Australia/Lord_Howe: +10:30 standard, +11 daylight. 2026-10-04 02:00 ->
// 02:30 (15:30Z on the 3rd); 2026-04-05 02:00 -> 01:30 (15:00Z on the 4th).
TEST(NextFireTimeTest, LordHoweHalfHourChanges) {
  const TimeZone lh = ReadZone("Australia/Lord_Howe");
  EXPECT_EQ(Next("15 2 * * *", lh, "2026-10-03T00:00:00Z"), "2026-10-03T15:30:00.000Z");
  EXPECT_EQ(Next("45 2 * * *", lh, "2026-10-03T00:00:00Z"), "2026-10-03T15:45:00.000Z");
  EXPECT_EQ(Fires("45 1 * * *", lh, "2026-04-04T00:00:00Z", 2),
            (S{"2026-04-04T14:45:00.000Z", "2026-04-05T15:15:00.000Z"}));
  EXPECT_EQ(Fires("*/30 * * * *", lh, "2026-04-04T13:50:00Z", 4),
            (S{"2026-04-04T14:00:00.000Z", "2026-04-04T14:30:00.000Z", "2026-04-04T15:00:00.000Z",
               "2026-04-04T15:30:00.000Z"}));
  EXPECT_EQ(Fires("0,30 * * * *", lh, "2026-10-03T14:50:00Z", 3),
            (S{"2026-10-03T15:00:00.000Z",     // 01:30 +10:30
               "2026-10-03T15:30:00.000Z",     // 02:30 +11 (02:00 does not exist)
               "2026-10-03T16:00:00.000Z"}));  // 03:00 +11
}

TEST(NextFireTimeTest, KolkataNoDst) {
  const TimeZone kolkata = ReadZone("Asia/Kolkata");
  EXPECT_EQ(Fires("30 2 * * *", kolkata, "2026-06-01T00:00:00Z", 2),
            (S{"2026-06-01T21:00:00.000Z", "2026-06-02T21:00:00.000Z"}));
  EXPECT_EQ(Next("0 0 1 1 *", kolkata, "2040-06-01T00:00:00Z"), "2040-12-31T18:30:00.000Z");
}

// 2040 is past the file's transitions: the footer rule decides.
TEST(NextFireTimeTest, BerlinFooterRuleIn2040) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  EXPECT_EQ(Fires("30 2 * * *", berlin, "2040-03-24T12:00:00Z", 2),
            (S{"2040-03-25T01:00:00.000Z", "2040-03-26T00:30:00.000Z"}));
  EXPECT_EQ(Fires("30 2 * * *", berlin, "2040-10-27T12:00:00Z", 2),
            (S{"2040-10-28T00:30:00.000Z", "2040-10-29T01:30:00.000Z"}));
}

TEST(NextFireTimeTest, FebruaryTwentyNinthInAZone) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  EXPECT_EQ(Fires("0 0 29 2 *", berlin, "2026-01-01T00:00:00Z", 2),
            (S{"2028-02-28T23:00:00.000Z", "2032-02-28T23:00:00.000Z"}));
}

// What NextFireTime should do, computed the slow way, minute by minute over
// real time, straight from the rules in cron.h.
std::vector<UnixMillis> SlowFires(const CronExpr& e, const TimeZone& zone, UnixMillis from,
                                  UnixMillis to) {
  std::vector<UnixMillis> out;
  int64_t seen = std::numeric_limits<int64_t>::min();  // highest local minute passed
  for (UnixMillis t = from; t < to; t += 60'000) {
    const int64_t local = ToLocalSeconds(zone.ToLocal(t));
    const int64_t local_before = ToLocalSeconds(zone.ToLocal(t - 60'000)) + 60;
    if (!e.fixed_hour()) {
      if (e.Matches(zone.ToLocal(t))) out.push_back(t);
      continue;
    }
    bool fire = false;
    // A jump forward between the previous minute and this one: a skipped
    // local minute that matches fires now.
    for (int64_t l = local_before; l < local; l += 60) {
      if (l >= seen && e.Matches(FromLocalSeconds(l))) fire = true;
    }
    if (local >= seen && e.Matches(zone.ToLocal(t))) fire = true;
    if (fire) out.push_back(t);
    seen = std::max(seen, local + 60);
  }
  return out;
}

TEST(NextFireTimeTest, AgreesWithMinuteByMinuteAroundChanges) {
  const char* exprs[] = {"0 0 * * *",  "30 0 * * *",   "0 12 * * *",     "30 2 * * *",
                         "0 2 * * *",  "*/15 2 * * *", "0,30 1-3 * * *", "* 2 * * *",
                         "45 1 * * *", "30 * * * *",   "*/7 * * * *",    "0 */2 * * *",
                         "0 23 * * *", "15 3 * * *",   "59 0-23/3 * * *"};
  struct Window {
    const char* zone;
    const char* from;
  };
  const Window windows[] = {
      {"Europe/Berlin", "2026-03-28T00:00:00Z"},
      {"Europe/Berlin", "2026-10-24T00:00:00Z"},
      {"Europe/Berlin", "2040-10-27T00:00:00Z"},
      {"America/New_York", "2026-03-07T00:00:00Z"},
      {"America/New_York", "2026-10-31T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-03T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-10-02T00:00:00Z"},
      {"Asia/Kolkata", "2026-06-01T00:00:00Z"},
      {"America/St_Johns", "2026-11-01T00:00:00Z"},
      // Changes at local midnight (the date changes too), and a whole day
      // skipped (Samoa, 2011-12-30).
      {"America/Santiago", "2026-04-03T12:00:00Z"},
      {"America/Santiago", "2026-09-05T00:00:00Z"},
      {"Pacific/Apia", "2011-12-28T00:00:00Z"},
  };
  for (const Window& w : windows) {
    const TimeZone zone = ReadZone(w.zone);
    const UnixMillis from = At(w.from);
    const UnixMillis to = from + 3 * 86'400'000;
    for (const char* text : exprs) {
      SCOPED_TRACE(std::string(text) + " in " + w.zone + " from " + w.from);
      const CronExpr e = MustParse(text);
      // Start the slow walk early so that its "seen" mark is warm.
      std::vector<UnixMillis> expected = SlowFires(e, zone, from - 6 * 3'600'000, to);
      expected.erase(expected.begin(), std::upper_bound(expected.begin(), expected.end(), from));
      std::vector<UnixMillis> actual;
      for (auto t = NextFireTime(e, zone, from); t && *t < to; t = NextFireTime(e, zone, *t)) {
        actual.push_back(*t);
      }
      std::vector<std::string> a, x;
      for (UnixMillis t : actual) a.push_back(FormatRfc3339(t));
      for (UnixMillis t : expected) x.push_back(FormatRfc3339(t));
      EXPECT_EQ(a, x);
      // Asking from any minute in between gives the next expected fire.
      for (UnixMillis t = from; t < to - 86'400'000; t += 60'000 * 47) {
        auto it = std::upper_bound(expected.begin(), expected.end(), t);
        if (it == expected.end()) break;
        ASSERT_EQ(NextFireTime(e, zone, t), *it) << FormatRfc3339(t);
      }
    }
  }
}

// The search steps by field: an impossible date over the whole horizon, and
// a busy seconds schedule, stay cheap.
TEST(NextFireTimeTest, IsFast) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  const CronExpr never = MustParse("0 0 30 2 *");
  const CronExpr leap = MustParse("59 59 23 29 2 *");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(NextFireTime(never, berlin, At("2026-01-01T00:00:00Z") + i));
    EXPECT_TRUE(NextFireTime(leap, berlin, At("2026-01-01T00:00:00Z") + i));
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // About 1 ms each here; generous for sanitizers and a busy machine.
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

}  // namespace
}  // namespace acceptd
