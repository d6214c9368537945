// Helpers for the time zone and cron tests: instants from RFC 3339 text, zones
// read from the system's zoneinfo directory, and TZif files built by hand.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/time_zone.h"

namespace acceptd::tz_testing {

inline constexpr char kZoneinfoDir[] = "/usr/share/zoneinfo";

// "2026-03-29T01:00:00Z" or "2026-03-29T01:00:00.500Z" -> Unix milliseconds.
inline UnixMillis At(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  const int n = std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &y, &mo, &d, &h, &mi, &s, &ms);
  EXPECT_GE(n, 6) << "bad instant in test: " << text;
  return ToLocalSeconds({y, mo, d, h, mi, s}) * 1000 + ms;
}

inline std::string ZoneFile(const std::string& name) {
  return std::string(kZoneinfoDir) + "/" + name;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path << " (is tzdata installed?)";
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The zone from the system's tzdata; a test failure (and UTC) if it cannot be read.
inline TimeZone ReadZone(const std::string& name) {
  auto zone = TimeZone::FromTzif(name, ReadFile(ZoneFile(name)));
  EXPECT_TRUE(zone.ok()) << name << ": " << (zone.ok() ? "" : zone.error().detail);
  return zone.ok() ? *zone : TimeZone::Utc();
}

// A TZif file to build: version 0 ('\0', version 1), '2', '3' or '4'.
struct TzifSpec {
  char version = '2';
  std::vector<std::pair<int32_t, int>> types;        // (UT offset, isdst)
  std::vector<std::pair<int64_t, int>> transitions;  // (time, type index)
  std::string footer;
  int leap_seconds = 0;  // this many leap-second records
};

inline void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
inline void PutI64(std::string& out, int64_t v) {
  PutU32(out, static_cast<uint32_t>(static_cast<uint64_t>(v) >> 32));
  PutU32(out, static_cast<uint32_t>(static_cast<uint64_t>(v)));
}

inline std::string BuildTzif(const TzifSpec& spec) {
  const std::string abbrevs = "ABC";  // one abbreviation shared by every type
  auto block = [&](std::string& out, int time_size) {
    out += "TZif";
    out.push_back(spec.version);
    out.append(15, '\0');
    PutU32(out, 0);  // isutcnt
    PutU32(out, 0);  // isstdcnt
    PutU32(out, static_cast<uint32_t>(spec.leap_seconds));
    PutU32(out, static_cast<uint32_t>(spec.transitions.size()));
    PutU32(out, static_cast<uint32_t>(spec.types.size()));
    PutU32(out, static_cast<uint32_t>(abbrevs.size() + 1));
    for (const auto& [time, type] : spec.transitions) {
      if (time_size == 8) {
        PutI64(out, time);
      } else {
        PutU32(out, static_cast<uint32_t>(static_cast<int32_t>(time)));
      }
    }
    for (const auto& [time, type] : spec.transitions) out.push_back(static_cast<char>(type));
    for (const auto& [offset, isdst] : spec.types) {
      PutU32(out, static_cast<uint32_t>(offset));
      out.push_back(static_cast<char>(isdst));
      out.push_back('\0');
    }
    out += abbrevs;
    out.push_back('\0');
    for (int i = 0; i < spec.leap_seconds; ++i) {
      if (time_size == 8) {
        PutI64(out, 78'796'800);
      } else {
        PutU32(out, 78'796'800);
      }
      PutU32(out, 1);
    }
  };
  std::string out;
  block(out, 4);
  if (spec.version != 0) {
    block(out, 8);
    out += "\n" + spec.footer + "\n";
  }
  return out;
}

}  // namespace acceptd::tz_testing
