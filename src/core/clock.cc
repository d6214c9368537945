#include "core/clock.h"

#include <chrono>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace acceptd {

UnixMillis SystemClock::Now() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

namespace {

// Howard Hinnant's civil_from_days: no locale, no time zone database, no
// allocation beyond the result (status documents format several per request).
void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
}

void PutDigits(char* out, int64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

std::string FormatRfc3339(UnixMillis t) {
  int64_t days = t / 86'400'000;
  int64_t ms_of_day = t % 86'400'000;
  if (ms_of_day < 0) {
    ms_of_day += 86'400'000;
    --days;
  }
  int64_t year;
  unsigned month, day;
  CivilFromDays(days, year, month, day);
  if (year < 0 || year > 9999) return fmt::format("{}", t);  // out of RFC 3339's range
  std::string out = "0000-00-00T00:00:00.000Z";
  PutDigits(&out[0], year, 4);
  PutDigits(&out[5], month, 2);
  PutDigits(&out[8], day, 2);
  PutDigits(&out[11], ms_of_day / 3'600'000, 2);
  PutDigits(&out[14], ms_of_day / 60'000 % 60, 2);
  PutDigits(&out[17], ms_of_day / 1000 % 60, 2);
  PutDigits(&out[20], ms_of_day % 1000, 3);
  return out;
}

std::optional<Millis> ParseSeconds(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  std::string copy(text);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(v) || v < 0 || v > 1e12) {
    return std::nullopt;
  }
  return static_cast<Millis>(std::llround(v * 1000.0));
}

}  // namespace acceptd
