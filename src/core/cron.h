// CronExpr and NextFireTime: when a schedule fires.
//
// Syntax (Vixie cron / cronie, what users of Sidekiq-cron, Celery beat and
// River periodic jobs expect):
//
//   [second] minute hour day-of-month month day-of-week
//
//   5 fields, or 6 with seconds first ("*/10 * * * * *"); with 5 fields the
//   second is 0. Fields are separated by spaces or tabs; leading and trailing
//   blanks are ignored.
//
//   field          values
//   second         0-59
//   minute         0-59
//   hour           0-23
//   day-of-month   1-31
//   month          1-12 or JAN-DEC
//   day-of-week    0-7 or SUN-SAT (0 and 7 are both Sunday)
//
//   Each field is a comma-separated list of items; an item is
//     *        every value of the field
//     n        one value
//     a-b      a range, a <= b (no wrap-around: "FRI-MON" is refused)
//     */s      every s-th value from the field's first one ("*/15" minutes:
//              0,15,30,45)
//     a-b/s    every s-th value from a to b
//     a/s      every s-th value from a to the field's last value
//   Names (JAN-DEC, SUN-SAT) are case-insensitive, exactly three letters, and
//   allowed only in their field, also in ranges ("MON-FRI"); a step is always
//   a number. A step must be 1 to (last - first) of the field (so "*/60" for
//   minutes is refused rather than silently meaning "0").
//
//   Macros (the whole expression, case-insensitive):
//     @yearly, @annually  = "0 0 1 1 *"      @monthly = "0 0 1 * *"
//     @weekly             = "0 0 * * 0"      @daily, @midnight = "0 0 * * *"
//     @hourly             = "0 * * * *"
//   (@reboot and others are refused.)
//
//   Day matching: when both day-of-month and day-of-week are restricted
//   (neither field starts with '*'), a day matches if EITHER matches
//   ("0 0 1 * MON": the 1st of each month and every Monday); otherwise both
//   must ("0 0 */2 * MON": odd-numbered days that are Mondays).
//
//   Refused (kInvalidArgument, the detail names the field and the problem):
//   fewer than 5 or more than 6 fields, an empty field or list item, a value
//   out of the field's range, a step of 0 or too large, a reversed range,
//   unknown names, '?', 'L', 'W', '#' and any other character. An ambiguous
//   expression is refused, never guessed.
//
// Time zones and daylight saving time (the schedule's TimeZone decides what
// "local time" means; NextFireTime never fires twice at the same instant and
// returns whole seconds):
//
//   The hour field decides how a schedule behaves across an offset change.
//
//   * Hour field starting with '*' ("*", "*/2"; "every hour" schedules): the
//     schedule runs in real time. It fires at every instant whose local wall
//     time matches. Local times skipped by a spring-forward gap do not fire;
//     local times repeated by a fall-back fire in both occurrences. So
//     "30 * * * *" fires every 60 real minutes through both changes, and
//     "*/5 * * * *" every 5 real minutes, with no duplicates and no gaps.
//
//   * Any other hour field ("2", "1-3", "9,17"; fixed-time schedules): each
//     matching local wall time fires once.
//       - A time that occurs once fires then.
//       - A time repeated by a fall-back fires only at its first occurrence
//         (Europe/Berlin, 2026-10-25: "30 2 * * *" fires at 02:30 CEST =
//         00:30Z, not again at 02:30 CET).
//       - A time skipped by a spring-forward gap fires at the first instant
//         after the gap, i.e. the instant of the change (Europe/Berlin,
//         2026-03-29: "30 2 * * *" fires at 03:00 CEST = 01:00Z). All
//         matching times inside one gap fire together, once ("*/15 2 * * *"
//         fires once at 03:00 CEST that day). No fire of a fixed daily time
//         is lost.
//   This is what cronie does for changes of up to a few hours, except that
//   cronie decides "fixed" on the minute field too; here the minute and
//   second fields do not matter.
//
//   A schedule that matches no instant within kMaxFireSearchYears (e.g.
//   "0 0 30 2 *", February 30th) has no next fire time: nullopt.
//
// Thread safety: CronExpr is an immutable value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/time_zone.h"

namespace acceptd {

// How far ahead NextFireTime looks before it gives up: 8 years, the longest
// wait between two February 29ths (2096 -> 2104), so "0 0 29 2 *" always has
// a next fire time and an impossible date ("0 0 30 2 *") costs little.
inline constexpr int kMaxFireSearchYears = 8;

class CronExpr {
 public:
  // Parses an expression in the syntax above. kInvalidArgument with a detail
  // naming the field ("cron expression \"61 * * * *\": minute: 61 is out of
  // range 0-59") when it is not valid.
  static Result<CronExpr> Parse(std::string_view text);

  // The expression as given (macros stay macros), trimmed of outer blanks.
  const std::string& ToString() const { return text_; }

  // True when the expression has the seconds field (6 fields).
  bool has_seconds() const { return has_seconds_; }

  // True for fixed-time schedules (hour field not starting with '*'): see the
  // daylight saving time rules above.
  bool fixed_hour() const { return !hour_star_; }

  // Whether each part of a local civil time matches.
  bool MatchesMonth(int month) const { return (months_ >> month) & 1; }
  bool MatchesDay(int64_t year, int month, int day) const;  // dom/dow rule applied
  bool MatchesHour(int hour) const { return (hours_ >> hour) & 1; }
  bool MatchesMinute(int minute) const { return (minutes_ >> minute) & 1; }
  bool MatchesSecond(int second) const { return (seconds_ >> second) & 1; }
  bool Matches(const CivilTime& local) const;

 private:
  friend class CronParser;
  CronExpr() = default;

  std::string text_;
  bool has_seconds_ = false;
  uint64_t seconds_ = 0;  // bit n: second n
  uint64_t minutes_ = 0;
  uint32_t hours_ = 0;
  uint32_t days_of_month_ = 0;  // bits 1-31
  uint16_t months_ = 0;         // bits 1-12
  uint8_t days_of_week_ = 0;    // bits 0-6 (7 is folded into 0)
  bool dom_star_ = false;       // the field starts with '*'
  bool dow_star_ = false;
  bool hour_star_ = false;
};

// The first instant strictly after `after` at which `cron` fires in `zone`,
// following the rules above; a whole second. nullopt if there is none within
// kMaxFireSearchYears of `after`, or if `after` is outside years 1-9999.
// Cost: a few field-wise steps per matching month/day, never a scan of
// seconds; safe to call on every tick.
std::optional<UnixMillis> NextFireTime(const CronExpr& cron, const TimeZone& zone,
                                       UnixMillis after);

}  // namespace acceptd
