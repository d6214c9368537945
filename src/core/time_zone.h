// TimeZone: converts between UTC instants (UnixMillis) and local civil time.
//
// A TimeZone is built from the bytes of a TZif file (RFC 8536, versions 1-3:
// what /usr/share/zoneinfo holds) or is UTC. Core does no I/O: reading the file
// for a zone name is src/cli/time_zone_files.h's job.
//
// Model: the time line is cut into segments of constant UTC offset. Inside the
// TZif file's range the segments come from its transitions and local time
// types; past its last transition from the footer's POSIX TZ rule (e.g.
// "CET-1CEST,M3.5.0,M10.5.0/3"), so the zone is correct in 2040 as well;
// before the first transition from time type 0 (RFC 8536 section 3.2).
// Only offsets matter here: abbreviations and the isdst flag are read and
// checked but not kept. TZif files with leap-second records ("right/" zones)
// are refused: their transition times are not POSIX seconds.
//
// Thread safety: a TimeZone is immutable; copies share the parsed data; any
// number of threads may use one at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"

namespace acceptd {

// A proleptic Gregorian date and time of day, without an offset. Fields are
// not normalized by the type: the functions below produce and expect
// month 1-12, day 1-31 (valid for the month), hour 0-23, minute and second 0-59.
struct CivilTime {
  int64_t year = 1970;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;

  friend bool operator==(const CivilTime&, const CivilTime&) = default;
};

// Days from 1970-01-01 to the given date (negative before it).
int64_t DaysFromCivil(int64_t year, int month, int day);
// Seconds of "local epoch" time: the civil time read as if it were UTC. Local
// seconds minus the offset in effect is the instant in Unix seconds.
int64_t ToLocalSeconds(const CivilTime& civil);
CivilTime FromLocalSeconds(int64_t local_seconds);
// 0 = Sunday ... 6 = Saturday.
int DayOfWeek(int64_t year, int month, int day);
int DaysInMonth(int64_t year, int month);
bool IsLeapYear(int64_t year);

// How a local civil time maps to instants.
struct LocalLookup {
  enum class Kind {
    kUnique,     // exactly one instant: `first` (== `second`)
    kAmbiguous,  // repeated by a backward offset change: `first` < `second`
    kGap,        // skipped by a forward change: `first` == `second` == the
                 // instant of that change, the first instant after the gap
  };
  Kind kind = Kind::kUnique;
  UnixMillis first = 0;
  UnixMillis second = 0;
};

class TimeZone {
 public:
  // A default-constructed TimeZone is UTC (so config structs can hold one).
  TimeZone() : TimeZone(Utc()) {}

  // Offset 0 at every instant; its name is "UTC".
  static TimeZone Utc();

  // Parses a TZif file (versions 1, 2 and 3; for 2+ the 64-bit data block and
  // the footer). `name` is kept for display only. kInvalidArgument, naming what
  // is wrong, on a truncated or inconsistent file, a leap-second file, or a
  // footer rule that does not parse.
  static Result<TimeZone> FromTzif(std::string name, std::string_view bytes);

  // A zone from a POSIX TZ rule alone, as in a TZif footer: "UTC0",
  // "IST-5:30", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
  // "EST5EDT,M3.2.0,M11.1.0". Dates are Mm.w.d, Jn (1-365, Feb 29 never
  // counted) or n (0-365, Feb 29 counted); times /[+-]h[:mm[:ss]] with hours
  // -167..167 (RFC 8536's extension). A DST name needs its rule (no
  // implementation-defined default). kInvalidArgument if it does not parse.
  static Result<TimeZone> FromPosixTz(std::string name, std::string_view rule);

  const std::string& name() const;

  // Seconds east of UTC in effect at `t` (CET: 3600).
  int32_t OffsetAt(UnixMillis t) const;

  // Local civil time at `t` (milliseconds dropped: floor to the second).
  CivilTime ToLocal(UnixMillis t) const;

  // The instants a local civil time corresponds to (whole seconds).
  LocalLookup Lookup(const CivilTime& local) const;

  // The first instant strictly after `t` at which the offset changes, or
  // nullopt if it never changes again. Transitions that change only the
  // abbreviation or the isdst flag do not count. Always a whole second.
  std::optional<UnixMillis> NextTransition(UnixMillis t) const;
  // The last instant at or before `t` at which the offset changed, or nullopt.
  std::optional<UnixMillis> PrevTransition(UnixMillis t) const;

 private:
  struct Data;  // the parsed zone, shared by copies; defined in time_zone.cc
  explicit TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

}  // namespace acceptd
