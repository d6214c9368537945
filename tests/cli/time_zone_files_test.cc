#include "cli/time_zone_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace acceptd {
namespace {

TEST(TimeZoneFilesTest, LoadsAZoneByName) {
  auto berlin = LoadTimeZone("Europe/Berlin");
  ASSERT_TRUE(berlin.ok()) << berlin.error().detail;
  EXPECT_EQ(berlin->name(), "Europe/Berlin");
  EXPECT_EQ(berlin->OffsetAt(1'780'000'000'000), 7200);  // June 2026: CEST
  auto ny = LoadTimeZone("America/New_York");
  ASSERT_TRUE(ny.ok()) << ny.error().detail;
  EXPECT_EQ(ny->OffsetAt(1'780'000'000'000), -4 * 3600);
}

// UTC needs no tzdata: it works with an empty zoneinfo directory.
TEST(TimeZoneFilesTest, UtcWithoutTzdata) {
  for (const char* name : {"UTC", "Etc/UTC"}) {
    auto utc = LoadTimeZone(name, "/nonexistent-zoneinfo");
    ASSERT_TRUE(utc.ok()) << name;
    EXPECT_EQ(utc->OffsetAt(1'780'000'000'000), 0);
  }
  auto berlin = LoadTimeZone("Europe/Berlin", "/nonexistent-zoneinfo");
  ASSERT_FALSE(berlin.ok());
  EXPECT_EQ(berlin.error().detail, "unknown time zone \"Europe/Berlin\"");
  // The path stays in the log message only.
  EXPECT_NE(berlin.error().message.find("/nonexistent-zoneinfo/Europe/Berlin"), std::string::npos);
}

TEST(TimeZoneFilesTest, RefusesNamesThatAreNotZoneNames) {
  const char* bad[] = {"",
                       "/etc/passwd",
                       "../../etc/passwd",
                       "Europe/../../../etc/passwd",
                       "Europe/..",
                       "./UTC",
                       "Europe//Berlin",
                       "Europe/Berlin/",
                       "Europe/Berlin ",
                       "Europe\\Berlin",
                       "Europe/Berl\xc3\xafn",
                       "Europe/Berlin\n",
                       "UTC;rm"};
  for (const char* name : bad) {
    auto zone = LoadTimeZone(name);
    ASSERT_FALSE(zone.ok()) << '"' << name << "\" accepted";
    EXPECT_EQ(zone.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(zone.error().detail.find("not a zone name"), std::string::npos)
        << zone.error().detail;
  }
  EXPECT_FALSE(LoadTimeZone(std::string(300, 'a')).ok());
}

TEST(TimeZoneFilesTest, RefusesUnknownZonesDirectoriesAndNonTzifFiles) {
  for (const char* name : {"Mars/Olympus_Mons", "Europe", "zone.tab", "right/Europe/Berlin"}) {
    auto zone = LoadTimeZone(name);
    EXPECT_FALSE(zone.ok()) << name;
  }
  // A zoneinfo directory of our own: a valid name whose file is garbage.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("acceptd-tz-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "Test");
  std::ofstream(dir / "Test" / "Garbage") << "not a TZif file";
  auto zone = LoadTimeZone("Test/Garbage", dir.string());
  ASSERT_FALSE(zone.ok());
  EXPECT_NE(zone.error().detail.find("Test/Garbage"), std::string::npos) << zone.error().detail;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace acceptd
