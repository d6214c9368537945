#include "core/time_zone.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "time_zone_testing.h"

namespace acceptd {
namespace {

using tz_testing::At;
using tz_testing::ReadZone;
using tz_testing::ZoneFile;

TEST(TimeZoneTest, CivilTimeRoundTripsAndWeekdays) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
  EXPECT_EQ(DayOfWeek(1970, 1, 1), 4);   // Thursday
  EXPECT_EQ(DayOfWeek(2026, 12, 5), 6);  // Saturday
  EXPECT_EQ(DayOfWeek(2026, 3, 29), 0);  // Sunday
  EXPECT_EQ(DaysInMonth(2028, 2), 29);
  EXPECT_EQ(DaysInMonth(2100, 2), 28);
  EXPECT_EQ(DaysInMonth(2000, 2), 29);
  for (int64_t s = -5'000'000'000; s < 9'000'000'000; s += 86'400 * 37 + 3'671) {
    EXPECT_EQ(ToLocalSeconds(FromLocalSeconds(s)), s);
  }
  EXPECT_EQ(FromLocalSeconds(-1), (CivilTime{1969, 12, 31, 23, 59, 59}));
}

TEST(TimeZoneTest, UtcHasNoOffsetAndNoTransitions) {
  const TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.OffsetAt(At("2026-03-29T01:00:00Z")), 0);
  EXPECT_EQ(utc.ToLocal(At("2026-03-29T01:02:03.999Z")), (CivilTime{2026, 3, 29, 1, 2, 3}));
  EXPECT_EQ(utc.ToLocal(-1), (CivilTime{1969, 12, 31, 23, 59, 59}));
  EXPECT_FALSE(utc.NextTransition(0).has_value());
  EXPECT_FALSE(utc.PrevTransition(0).has_value());
  EXPECT_EQ(TimeZone().name(), "UTC");
  EXPECT_EQ(TimeZone().OffsetAt(0), 0);
  const LocalLookup l = utc.Lookup({2026, 3, 29, 2, 30, 0});
  EXPECT_EQ(l.kind, LocalLookup::Kind::kUnique);
  EXPECT_EQ(l.first, At("2026-03-29T02:30:00Z"));
}

TEST(TimeZoneTest, BerlinOffsetsAndTransitions2026) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  EXPECT_EQ(berlin.name(), "Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(At("2026-03-29T00:59:59.999Z")), 3600);
  EXPECT_EQ(berlin.OffsetAt(At("2026-03-29T01:00:00Z")), 7200);
  EXPECT_EQ(berlin.OffsetAt(At("2026-10-25T00:59:59Z")), 7200);
  EXPECT_EQ(berlin.OffsetAt(At("2026-10-25T01:00:00Z")), 3600);
  EXPECT_EQ(berlin.NextTransition(At("2026-01-01T00:00:00Z")), At("2026-03-29T01:00:00Z"));
  EXPECT_EQ(berlin.NextTransition(At("2026-03-29T01:00:00Z")), At("2026-10-25T01:00:00Z"));
  EXPECT_EQ(berlin.NextTransition(At("2026-03-29T00:59:59.999Z")), At("2026-03-29T01:00:00Z"));
  EXPECT_EQ(berlin.PrevTransition(At("2026-03-29T01:00:00Z")), At("2026-03-29T01:00:00Z"));
  EXPECT_EQ(berlin.PrevTransition(At("2026-03-29T00:59:59Z")), At("2025-10-26T01:00:00Z"));
  EXPECT_EQ(berlin.ToLocal(At("2026-10-25T00:30:00Z")), (CivilTime{2026, 10, 25, 2, 30, 0}));
  EXPECT_EQ(berlin.ToLocal(At("2026-10-25T01:30:00Z")), (CivilTime{2026, 10, 25, 2, 30, 0}));
}

TEST(TimeZoneTest, BerlinLookupGapAmbiguousUnique) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  LocalLookup gap = berlin.Lookup({2026, 3, 29, 2, 30, 0});
  EXPECT_EQ(gap.kind, LocalLookup::Kind::kGap);
  EXPECT_EQ(gap.first, At("2026-03-29T01:00:00Z"));
  EXPECT_EQ(gap.second, At("2026-03-29T01:00:00Z"));
  LocalLookup twice = berlin.Lookup({2026, 10, 25, 2, 30, 0});
  EXPECT_EQ(twice.kind, LocalLookup::Kind::kAmbiguous);
  EXPECT_EQ(twice.first, At("2026-10-25T00:30:00Z"));
  EXPECT_EQ(twice.second, At("2026-10-25T01:30:00Z"));
  LocalLookup once = berlin.Lookup({2026, 6, 1, 12, 0, 0});
  EXPECT_EQ(once.kind, LocalLookup::Kind::kUnique);
  EXPECT_EQ(once.first, At("2026-06-01T10:00:00Z"));
  // The edges: in spring 02:00 is in the gap and 03:00 is not; in autumn
  // 02:00 is repeated and 03:00 is not.
  EXPECT_EQ(berlin.Lookup({2026, 3, 29, 2, 0, 0}).kind, LocalLookup::Kind::kGap);
  EXPECT_EQ(berlin.Lookup({2026, 3, 29, 3, 0, 0}).kind, LocalLookup::Kind::kUnique);
  EXPECT_EQ(berlin.Lookup({2026, 10, 25, 2, 0, 0}).kind, LocalLookup::Kind::kAmbiguous);
  EXPECT_EQ(berlin.Lookup({2026, 10, 25, 3, 0, 0}).kind, LocalLookup::Kind::kUnique);
}

// Past the file's last transition (2037 in Debian's "fat" files) the footer
// rule "CET-1CEST,M3.5.0,M10.5.0/3" decides.
TEST(TimeZoneTest, BerlinFooterRuleIn2040) {
  const TimeZone berlin = ReadZone("Europe/Berlin");
  EXPECT_EQ(berlin.NextTransition(At("2040-01-01T00:00:00Z")), At("2040-03-25T01:00:00Z"));
  EXPECT_EQ(berlin.NextTransition(At("2040-03-25T01:00:00Z")), At("2040-10-28T01:00:00Z"));
  EXPECT_EQ(berlin.PrevTransition(At("2040-06-01T00:00:00Z")), At("2040-03-25T01:00:00Z"));
  EXPECT_EQ(berlin.OffsetAt(At("2040-07-01T00:00:00Z")), 7200);
  EXPECT_EQ(berlin.OffsetAt(At("2040-12-01T00:00:00Z")), 3600);
  EXPECT_EQ(berlin.Lookup({2040, 3, 25, 2, 30, 0}).kind, LocalLookup::Kind::kGap);
}

TEST(TimeZoneTest, KolkataHasNoDst) {
  const TimeZone kolkata = ReadZone("Asia/Kolkata");
  EXPECT_EQ(kolkata.OffsetAt(At("2026-06-01T00:00:00Z")), 5 * 3600 + 1800);
  EXPECT_EQ(kolkata.OffsetAt(At("2046-01-01T00:00:00Z")), 5 * 3600 + 1800);
  EXPECT_FALSE(kolkata.NextTransition(At("2026-01-01T00:00:00Z")).has_value());
  // Its last change was in 1945.
  auto prev = kolkata.PrevTransition(At("2026-01-01T00:00:00Z"));
  ASSERT_TRUE(prev.has_value());
  EXPECT_LT(*prev, At("1946-01-01T00:00:00Z"));
}

// Lord Howe Island moves its clocks by 30 minutes.
TEST(TimeZoneTest, LordHoweHalfHourDst) {
  const TimeZone lh = ReadZone("Australia/Lord_Howe");
  EXPECT_EQ(lh.OffsetAt(At("2026-07-01T00:00:00Z")), 10 * 3600 + 1800);
  EXPECT_EQ(lh.OffsetAt(At("2026-12-01T00:00:00Z")), 11 * 3600);
  EXPECT_EQ(lh.NextTransition(At("2026-07-01T00:00:00Z")), At("2026-10-03T15:30:00Z"));
  EXPECT_EQ(lh.NextTransition(At("2026-01-01T00:00:00Z")), At("2026-04-04T15:00:00Z"));
  LocalLookup gap = lh.Lookup({2026, 10, 4, 2, 15, 0});
  EXPECT_EQ(gap.kind, LocalLookup::Kind::kGap);
  EXPECT_EQ(gap.first, At("2026-10-03T15:30:00Z"));
  LocalLookup twice = lh.Lookup({2026, 4, 5, 1, 45, 0});
  EXPECT_EQ(twice.kind, LocalLookup::Kind::kAmbiguous);
  EXPECT_EQ(twice.first, At("2026-04-04T14:45:00Z"));
  EXPECT_EQ(twice.second, At("2026-04-04T15:15:00Z"));
}

// The C library reads the same files: every offset we compute, at a spread of
// instants and on both sides of every transition from 1901 to 2100, agrees.
TEST(TimeZoneTest, AgreesWithTheCLibrary) {
  const char* zones[] = {
      "Europe/Berlin",     "America/New_York",   "Australia/Lord_Howe", "Asia/Kolkata",
      "America/Sao_Paulo", "Pacific/Apia",       "Africa/Casablanca",   "America/Nuuk",
      "Asia/Jerusalem",    "America/Santiago",   "Pacific/Chatham",     "Antarctica/Troll",
      "Europe/Dublin",     "Pacific/Kiritimati", "America/St_Johns",    "Asia/Tehran",
  };
  const char* old_tz = std::getenv("TZ");
  const std::string saved = old_tz ? old_tz : "";
  auto libc_offset = [](int64_t seconds) {
    std::time_t tt = static_cast<std::time_t>(seconds);
    std::tm tm{};
    localtime_r(&tt, &tm);
    return static_cast<int32_t>(tm.tm_gmtoff);
  };
  for (const char* name : zones) {
    SCOPED_TRACE(name);
    if (!std::filesystem::exists(ZoneFile(name))) {
      ADD_FAILURE() << "missing " << ZoneFile(name) << " (install tzdata)";
      continue;
    }
    const TimeZone zone = ReadZone(name);
    setenv("TZ", (":" + ZoneFile(name)).c_str(), 1);
    tzset();
    const int64_t from = -2'100'000'000;  // 1903
    const int64_t to = At("2100-01-01T00:00:00Z") / 1000;
    int failures = 0;
    for (int64_t s = from; s < to && failures < 5; s += 86'400 * 5 + 3'607) {
      if (zone.OffsetAt(s * 1000) != libc_offset(s)) {
        ++failures;
        ADD_FAILURE() << "at " << FormatRfc3339(s * 1000) << ": " << zone.OffsetAt(s * 1000)
                      << " != " << libc_offset(s);
      }
    }
    int transitions = 0;
    for (auto t = zone.NextTransition(from * 1000); t && *t < to * 1000 && failures < 5;
         t = zone.NextTransition(*t)) {
      ++transitions;
      const int64_t s = *t / 1000;
      EXPECT_EQ(*t % 1000, 0);
      EXPECT_EQ(zone.PrevTransition(*t), *t);
      EXPECT_EQ(zone.PrevTransition(*t - 1), zone.PrevTransition(*t - 1));
      if (zone.OffsetAt(*t) != libc_offset(s) || zone.OffsetAt(*t - 1) != libc_offset(s - 1)) {
        ++failures;
        ADD_FAILURE() << "transition at " << FormatRfc3339(*t);
      }
      EXPECT_NE(zone.OffsetAt(*t), zone.OffsetAt(*t - 1)) << FormatRfc3339(*t);
    }
    if (std::string(name) != "Asia/Kolkata" && std::string(name) != "Pacific/Kiritimati") {
      EXPECT_GT(transitions, 10);
    }
  }
  if (old_tz) {
    setenv("TZ", saved.c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();
}

// Every file of the system's zoneinfo directory that is a TZif file loads,
// except the leap-second ("right/") zones, which are refused.
TEST(TimeZoneTest, LoadsEveryInstalledZone) {
  namespace fs = std::filesystem;
  int loaded = 0;
  for (const auto& entry : fs::recursive_directory_iterator(tz_testing::kZoneinfoDir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string data = bytes.str();
    if (data.compare(0, 4, "TZif") != 0) continue;
    const std::string path = entry.path().string();
    auto zone = TimeZone::FromTzif(path, data);
    if (path.find("/right/") != std::string::npos) {
      EXPECT_FALSE(zone.ok()) << path;
      continue;
    }
    EXPECT_TRUE(zone.ok()) << path << ": " << (zone.ok() ? "" : zone.error().detail);
    ++loaded;
  }
  EXPECT_GT(loaded, 300);
}

// Every truncation of a real file is refused, never read past its end.
TEST(TimeZoneTest, RefusesTruncatedAndCorruptFiles) {
  const std::string berlin = tz_testing::ReadFile(ZoneFile("Europe/Berlin"));
  ASSERT_GT(berlin.size(), 100u);
  for (size_t n = 0; n < berlin.size(); ++n) {
    auto zone = TimeZone::FromTzif("cut", std::string_view(berlin).substr(0, n));
    EXPECT_FALSE(zone.ok()) << "accepted the first " << n << " bytes";
  }
  std::string bad_magic = berlin;
  bad_magic[0] = 'X';
  auto r = TimeZone::FromTzif("x", bad_magic);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().detail.find("magic"), std::string::npos) << r.error().detail;
  std::string bad_version = berlin;
  bad_version[4] = '9';
  EXPECT_FALSE(TimeZone::FromTzif("x", bad_version).ok());
  std::string trailing = berlin + "junk\n";
  EXPECT_FALSE(TimeZone::FromTzif("x", trailing).ok());
}

// Hand-built files: version 1 (32-bit data, no footer), version 3 with a
// footer using v3's extended times, and broken ones.
TEST(TimeZoneTest, HandBuiltTzifFiles) {
  using tz_testing::TzifSpec;
  TzifSpec spec;
  spec.version = 0;
  spec.types = {{3600, 0}, {7200, 1}};
  spec.transitions = {{1'000'000'000, 1}, {1'010'000'000, 0}};
  auto v1 = TimeZone::FromTzif("v1", tz_testing::BuildTzif(spec));
  ASSERT_TRUE(v1.ok()) << v1.error().detail;
  EXPECT_EQ(v1->OffsetAt(0), 3600);  // before the first transition: type 0
  EXPECT_EQ(v1->OffsetAt(1'000'000'000'000), 7200);
  EXPECT_EQ(v1->OffsetAt(2'000'000'000'000), 3600);  // no footer: the last type stays
  EXPECT_EQ(v1->NextTransition(0), 1'000'000'000'000);
  EXPECT_FALSE(v1->NextTransition(1'010'000'000'000).has_value());

  spec.version = '3';
  spec.footer = "<-02>2<-01>,M3.5.0/-1,M10.5.0/0";  // America/Nuuk since 2023
  spec.types = {{-3 * 3600, 0}, {-2 * 3600, 0}};
  spec.transitions = {{1'600'000'000, 1}};
  auto v3 = TimeZone::FromTzif("v3", tz_testing::BuildTzif(spec));
  ASSERT_TRUE(v3.ok()) << v3.error().detail;
  // Saturday 2026-03-28 at 23:00 local -02 (= 01:00Z on the 29th) starts DST.
  EXPECT_EQ(v3->NextTransition(At("2026-01-01T00:00:00Z")), At("2026-03-29T01:00:00Z"));
  EXPECT_EQ(v3->OffsetAt(At("2026-07-01T00:00:00Z")), -3600);

  TzifSpec no_transitions;
  no_transitions.footer = "UTC0";
  no_transitions.types = {{0, 0}};
  EXPECT_TRUE(TimeZone::FromTzif("utc", tz_testing::BuildTzif(no_transitions)).ok());

  TzifSpec bad_index = spec;
  bad_index.transitions = {{1'600'000'000, 5}};
  EXPECT_FALSE(TimeZone::FromTzif("x", tz_testing::BuildTzif(bad_index)).ok());
  TzifSpec unordered = spec;
  unordered.transitions = {{1'600'000'000, 1}, {1'500'000'000, 0}};
  EXPECT_FALSE(TimeZone::FromTzif("x", tz_testing::BuildTzif(unordered)).ok());
  TzifSpec huge_offset = spec;
  huge_offset.types = {{100'000, 0}, {0, 0}};
  EXPECT_FALSE(TimeZone::FromTzif("x", tz_testing::BuildTzif(huge_offset)).ok());
  TzifSpec bad_footer = spec;
  bad_footer.footer = "CET-1CEST";
  auto r = TimeZone::FromTzif("x", tz_testing::BuildTzif(bad_footer));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().detail.find("CET-1CEST"), std::string::npos) << r.error().detail;
  TzifSpec leap = spec;
  leap.leap_seconds = 1;
  r = TimeZone::FromTzif("x", tz_testing::BuildTzif(leap));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().detail.find("leap"), std::string::npos) << r.error().detail;
}

TEST(TimeZoneTest, PosixRulesParse) {
  struct Case {
    const char* rule;
    const char* at;
    int32_t offset;
  };
  const Case cases[] = {
      {"UTC0", "2026-07-01T00:00:00Z", 0},
      {"IST-5:30", "2026-07-01T00:00:00Z", 19'800},
      {"<+0545>-5:45", "2026-07-01T00:00:00Z", 20'700},
      {"EST5EDT,M3.2.0,M11.1.0", "2026-03-08T06:59:59Z", -5 * 3600},
      {"EST5EDT,M3.2.0,M11.1.0", "2026-03-08T07:00:00Z", -4 * 3600},
      {"EST5EDT,M3.2.0,M11.1.0", "2026-11-01T05:59:59Z", -4 * 3600},
      {"EST5EDT,M3.2.0,M11.1.0", "2026-11-01T06:00:00Z", -5 * 3600},
      {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2026-10-03T15:30:00Z", 11 * 3600},
      {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2026-10-03T15:29:59Z", 37'800},
      // Jerusalem: the Friday before the last Sunday of March, at 26:00 of the Thursday.
      {"IST-2IDT,M3.4.4/26,M10.5.0", "2026-03-27T00:00:00Z", 3 * 3600},
      {"IST-2IDT,M3.4.4/26,M10.5.0", "2026-03-26T23:59:59Z", 2 * 3600},
      // Jn never counts Feb 29: J60 is March 1st, also in leap years.
      {"AAA0BBB,J60/0,J300/0", "2028-02-29T23:59:59Z", 0},
      {"AAA0BBB,J60/0,J300/0", "2028-03-01T00:00:00Z", 3600},
      // n counts it: day 59 is Feb 29 in a leap year, March 1st otherwise.
      {"AAA0BBB,59/0,300/0", "2028-02-29T00:00:00Z", 3600},
      {"AAA0BBB,59/0,300/0", "2027-02-28T23:59:59Z", 0},
      {"AAA0BBB,59/0,300/0", "2027-03-01T00:00:00Z", 3600},
      // Week 5 means the last such weekday, here Sunday March 29th, 2026.
      {"AAA0BBB,M3.5.0/0,M10.5.0/0", "2026-03-29T00:00:00Z", 3600},
      {"AAA0BBB,M3.5.0/0,M10.5.0/0", "2026-03-28T23:59:59Z", 0},
      // Times with minutes and seconds, and negative ones.
      {"AAA0BBB,M3.5.0/1:30:15,M10.5.0", "2026-03-29T01:30:15Z", 3600},
      {"AAA0BBB,M3.5.0/1:30:15,M10.5.0", "2026-03-29T01:30:14Z", 0},
      {"AAA0BBB,M3.5.0/-1,M10.5.0", "2026-03-28T23:00:00Z", 3600},
      {"AAA+1BBB+0:30,M3.5.0,M10.5.0", "2026-07-01T00:00:00Z", -1800},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.rule) + " at " + c.at);
    auto zone = TimeZone::FromPosixTz("rule", c.rule);
    ASSERT_TRUE(zone.ok()) << zone.error().detail;
    EXPECT_EQ(zone->OffsetAt(At(c.at)), c.offset);
  }
}

// RFC 8536's example of DST all year: no transitions, always daylight time.
TEST(TimeZoneTest, PosixRuleDstAllYear) {
  auto zone = TimeZone::FromPosixTz("x", "EST5EDT,0/0,J365/25");
  ASSERT_TRUE(zone.ok()) << zone.error().detail;
  for (const char* at : {"2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z", "2026-07-01T00:00:00Z",
                         "2026-12-31T23:59:59Z", "2027-01-01T04:30:00Z", "2028-02-29T12:00:00Z"}) {
    EXPECT_EQ(zone->OffsetAt(At(at)), -4 * 3600) << at;
  }
  EXPECT_FALSE(zone->NextTransition(At("2026-01-01T00:00:00Z")).has_value());
  EXPECT_FALSE(zone->PrevTransition(At("2026-06-01T00:00:00Z")).has_value());
}

TEST(TimeZoneTest, PosixRulesRefused) {
  const char* bad[] = {
      "",
      "C",
      "CET",                           // no offset
      "CE-1",                          // name shorter than 3
      "CET-1CEST",                     // DST without its rule
      "CET-1CEST,M3.5.0",              // only one rule
      "CET-25",                        // offset hours 0-24
      "CET-1:60",                      // minutes 0-59
      "CET-1CEST,M13.1.0,M10.5.0",     // month
      "CET-1CEST,M3.6.0,M10.5.0",      // week 1-5
      "CET-1CEST,M3.5.7,M10.5.0",      // weekday 0-6
      "CET-1CEST,J0,J365",             // Jn is 1-365
      "CET-1CEST,J366,J365",           //
      "CET-1CEST,366,1",               // n is 0-365
      "CET-1CEST,M3.5.0/168,M10.5.0",  // times -167..167 hours
      "CET-1CEST,M3.5.0,M10.5.0/3,",   // trailing garbage
      "CET-1 ",                        //
      "<AB>-1",                        // quoted name too short
      "<A B>-1",                       // character in a quoted name
      "<ABC-1",                        // unterminated
      "CET-1CEST,M3.5,M10.5.0",        // incomplete Mm.w.d
  };
  for (const char* rule : bad) {
    auto zone = TimeZone::FromPosixTz("x", rule);
    EXPECT_FALSE(zone.ok()) << '"' << rule << "\" accepted";
    if (!zone.ok()) {
      EXPECT_EQ(zone.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(zone.error().detail.find("time zone rule"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace acceptd
