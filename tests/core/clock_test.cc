#include <gtest/gtest.h>

#include <ctime>

#include "core/clock.h"

namespace acceptd {
namespace {

TEST(FormatRfc3339Test, KnownInstants) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatRfc3339(951'782'400'000), "2000-02-29T00:00:00.000Z");  // leap day
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
}

// The hand-written calendar arithmetic agrees with the C library for a
// spread of instants across four centuries.
TEST(FormatRfc3339Test, AgreesWithGmtime) {
  for (int64_t secs = -2'000'000'000; secs < 8'000'000'000; secs += 7'777'777) {
    std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.042Z", &tm);
    EXPECT_EQ(FormatRfc3339(secs * 1000 + 42), buf);
  }
}

TEST(ParseSecondsTest, AcceptsNonNegativeNumbers) {
  EXPECT_EQ(ParseSeconds("0"), 0);
  EXPECT_EQ(ParseSeconds("1.5"), 1500);
  EXPECT_EQ(ParseSeconds("30"), 30'000);
  EXPECT_EQ(ParseSeconds("-1"), std::nullopt);
  EXPECT_EQ(ParseSeconds("abc"), std::nullopt);
  EXPECT_EQ(ParseSeconds("1s"), std::nullopt);
  EXPECT_EQ(ParseSeconds(""), std::nullopt);
  EXPECT_EQ(ParseSeconds("nan"), std::nullopt);
  EXPECT_EQ(ParseSeconds("inf"), std::nullopt);
}

}  // namespace
}  // namespace acceptd
