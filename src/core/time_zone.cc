#include "core/time_zone.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace acceptd {

namespace {

constexpr int64_t kSecondsPerDay = 86'400;
// RFC 8536 section 3.2: a time type's UT offset SHOULD be in [-89999, 93599].
constexpr int32_t kMinUtcOffset = -89'999;
constexpr int32_t kMaxUtcOffset = 93'599;
// Transition times in a footer rule: RFC 8536 section 3.3.1 widens POSIX's
// 0-24 hours to -167..167.
constexpr int kMaxRuleHours = 167;
// Any instant whose local time is L lies within this many seconds of L.
constexpr int64_t kLookupWindow = 2 * kSecondsPerDay;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t MillisToSeconds(UnixMillis t) { return FloorDiv(t, 1000); }

// ---------------------------------------------------------------------------
// The POSIX TZ rule of a TZif footer.

struct RuleDate {
  enum class Kind { kJulian1, kJulian0, kMonthWeekDay };
  Kind kind = Kind::kJulian0;
  int a = 0;  // Jn / n: the day; Mm.w.d: the month
  int week = 0;
  int weekday = 0;
  int32_t time = 2 * 3600;  // seconds after local midnight, may be < 0 or > 24 h

  // The day of `year` this rule names, as days since the epoch.
  int64_t Day(int64_t year) const {
    switch (kind) {
      case Kind::kJulian1: {  // 1-365, Feb 29 is never counted
        int64_t day = DaysFromCivil(year, 1, 1) + a - 1;
        if (IsLeapYear(year) && a >= 60) ++day;
        return day;
      }
      case Kind::kJulian0:  // 0-365, Feb 29 is counted
        return DaysFromCivil(year, 1, 1) + a;
      case Kind::kMonthWeekDay: {
        const int first_weekday = DayOfWeek(year, a, 1);
        int day = 1 + (weekday - first_weekday + 7) % 7 + 7 * (week - 1);
        // Week 5 is "the last": step back while past the month's end.
        while (day > DaysInMonth(year, a)) day -= 7;
        return DaysFromCivil(year, a, day);
      }
    }
    return 0;
  }
};

struct PosixRule {
  int32_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  int32_t dst_offset = 0;
  RuleDate start;  // DST begins; its time is in standard local time
  RuleDate end;    // DST ends; its time is in daylight local time

  struct Event {
    int64_t at;
    bool dst_after;
  };

  // The two changes of `year`, computed from that year's dates.
  std::array<Event, 2> Events(int64_t year) const {
    return {Event{start.Day(year) * kSecondsPerDay + start.time - std_offset, true},
            Event{end.Day(year) * kSecondsPerDay + end.time - dst_offset, false}};
  }

  // The events of the years first..last, in time order. At equal instants
  // the end of DST sorts first, so that a rule such as "EST5EDT,0/0,J365/25"
  // (DST all year: one year's end is the next year's start) stays in DST.
  std::vector<Event> EventsOf(int64_t first, int64_t last) const {
    std::vector<Event> events;
    for (int64_t y = first; y <= last; ++y) {
      for (const Event& e : Events(y)) events.push_back(e);
    }
    std::sort(events.begin(), events.end(), [](const Event& x, const Event& y) {
      return x.at != y.at ? x.at < y.at : (!x.dst_after && y.dst_after);
    });
    return events;
  }

  int64_t YearOf(int64_t t) const { return FromLocalSeconds(t + std_offset).year; }

  int32_t OffsetAt(int64_t t) const {
    if (!has_dst) return std_offset;
    // Event times move at most 167 h from their year, so two years back
    // always holds an event at or before t.
    const int64_t year = YearOf(t);
    bool dst = false;
    for (const Event& e : EventsOf(year - 2, year + 1)) {
      if (e.at > t) break;
      dst = e.dst_after;
    }
    return dst ? dst_offset : std_offset;
  }

  std::optional<int64_t> Next(int64_t t) const {
    if (!has_dst) return std::nullopt;
    const int64_t year = YearOf(t);
    for (const Event& e : EventsOf(year - 1, year + 2)) {
      if (e.at > t && OffsetAt(e.at) != OffsetAt(e.at - 1)) return e.at;
    }
    return std::nullopt;  // DST all year (or never): no change
  }

  std::optional<int64_t> Prev(int64_t t) const {
    if (!has_dst) return std::nullopt;
    const int64_t year = YearOf(t);
    const std::vector<Event> events = EventsOf(year - 2, year + 1);
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->at <= t && OffsetAt(it->at) != OffsetAt(it->at - 1)) return it->at;
    }
    return std::nullopt;
  }
};

// A cursor over the rule text; every parse step says what it expected.
class RuleParser {
 public:
  explicit RuleParser(std::string_view text) : text_(text) {}

  Result<PosixRule> Parse() {
    PosixRule rule;
    if (auto s = Name("standard time name"); !s) return std::move(s).error();
    auto std_offset = Offset("standard time offset");
    if (!std_offset) return std::move(std_offset).error();
    rule.std_offset = *std_offset;
    if (AtEnd()) return rule;
    rule.has_dst = true;
    if (auto s = Name("daylight time name"); !s) return std::move(s).error();
    rule.dst_offset = rule.std_offset + 3600;
    if (!AtEnd() && Peek() != ',') {
      auto dst_offset = Offset("daylight time offset");
      if (!dst_offset) return std::move(dst_offset).error();
      rule.dst_offset = *dst_offset;
    }
    if (AtEnd()) {
      // POSIX leaves the default rule to the implementation: refuse rather
      // than guess (TZif footers always spell the rule out).
      return Fail("a daylight time name without its start and end rules");
    }
    for (RuleDate* date : {&rule.start, &rule.end}) {
      if (!Consume(',')) return Fail("',' before a daylight time rule");
      if (auto s = Date(*date); !s) return std::move(s).error();
    }
    if (!AtEnd()) return Fail("the end of the rule");
    return rule;
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  static bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

  Error Fail(std::string_view expected) const {
    return Error::InvalidArgument(
        fmt::format("time zone rule \"{}\": expected {} at offset {}", text_, expected, pos_));
  }

  Status Name(std::string_view what) {
    size_t length = 0;
    if (Consume('<')) {
      while (!AtEnd() && Peek() != '>') {
        const char c = Peek();
        if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '-') return Fail(what);
        ++pos_;
        ++length;
      }
      if (!Consume('>')) return Fail(what);
    } else {
      while (IsAlpha(Peek())) {
        ++pos_;
        ++length;
      }
    }
    if (length < 3) return Fail(what);
    return {};
  }

  // A number of at most `max_digits` digits.
  std::optional<int> Number(int max_digits) {
    int value = 0;
    int digits = 0;
    while (IsDigit(Peek()) && digits < max_digits) {
      value = value * 10 + (Peek() - '0');
      ++pos_;
      ++digits;
    }
    if (digits == 0 || IsDigit(Peek())) return std::nullopt;
    return value;
  }

  // [+-]h[h[h]][:mm[:ss]], in seconds.
  std::optional<int32_t> Duration(int max_hours) {
    int sign = 1;
    if (Consume('-')) {
      sign = -1;
    } else {
      Consume('+');
    }
    auto hours = Number(3);
    if (!hours || *hours > max_hours) return std::nullopt;
    int32_t seconds = *hours * 3600;
    if (Consume(':')) {
      auto minutes = Number(2);
      if (!minutes || *minutes > 59) return std::nullopt;
      seconds += *minutes * 60;
      if (Consume(':')) {
        auto secs = Number(2);
        if (!secs || *secs > 59) return std::nullopt;
        seconds += *secs;
      }
    }
    return sign * seconds;
  }

  // POSIX offsets count west of UTC ("CET-1" is one hour east): negated here.
  Result<int32_t> Offset(std::string_view what) {
    auto d = Duration(24);
    if (!d) return Fail(what);
    return -*d;
  }

  Status Date(RuleDate& date) {
    if (Consume('J')) {
      date.kind = RuleDate::Kind::kJulian1;
      auto n = Number(3);
      if (!n || *n < 1 || *n > 365) return Fail("a day 1-365 after 'J'");
      date.a = *n;
    } else if (Consume('M')) {
      date.kind = RuleDate::Kind::kMonthWeekDay;
      auto m = Number(2);
      if (!m || *m < 1 || *m > 12) return Fail("a month 1-12 after 'M'");
      if (!Consume('.')) return Fail("'.' after the month");
      auto w = Number(1);
      if (!w || *w < 1 || *w > 5) return Fail("a week 1-5");
      if (!Consume('.')) return Fail("'.' after the week");
      auto d = Number(1);
      if (!d || *d > 6) return Fail("a weekday 0-6");
      date.a = *m;
      date.week = *w;
      date.weekday = *d;
    } else {
      date.kind = RuleDate::Kind::kJulian0;
      auto n = Number(3);
      if (!n || *n > 365) return Fail("a date (Jn, n or Mm.w.d)");
      date.a = *n;
    }
    if (Consume('/')) {
      auto time = Duration(kMaxRuleHours);
      if (!time) return Fail("a time [+-]h[:mm[:ss]] with hours -167..167");
      date.time = *time;
    }
    return {};
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// TZif (RFC 8536).

class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  bool Has(uint64_t n) const { return n <= bytes_.size() - pos_; }
  size_t pos() const { return pos_; }
  void Skip(size_t n) { pos_ += n; }
  uint8_t U8() { return static_cast<uint8_t>(bytes_[pos_++]); }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | U8();
    return v;
  }
  int64_t I64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return static_cast<int64_t>(v);
  }
  std::string_view Rest() const { return bytes_.substr(pos_); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

struct TzifHeader {
  char version = 0;
  uint32_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;

  uint64_t DataSize(int time_size) const {
    return uint64_t{timecnt} * time_size + timecnt + uint64_t{typecnt} * 6 + charcnt +
           uint64_t{leapcnt} * (time_size + 4) + isstdcnt + isutcnt;
  }
};

}  // namespace

struct TimeZone::Data {
  std::string name;
  int32_t initial_offset = 0;              // before the first change
  std::vector<int64_t> change_times;       // offset changes from the file, ascending
  std::vector<int32_t> change_offsets;     // the offset from each change on
  std::optional<int64_t> last_transition;  // the file's last transition
  std::optional<PosixRule> footer;         // governs from last_transition on

  bool FooterGoverns(int64_t t) const {
    return footer && (!last_transition || t >= *last_transition);
  }

  int32_t OffsetAt(int64_t t) const {
    if (FooterGoverns(t)) return footer->OffsetAt(t);
    auto it = std::upper_bound(change_times.begin(), change_times.end(), t);
    if (it == change_times.begin()) return initial_offset;
    return change_offsets[static_cast<size_t>(it - change_times.begin()) - 1];
  }

  bool ChangesAt(int64_t t) const { return OffsetAt(t) != OffsetAt(t - 1); }

  std::optional<int64_t> Next(int64_t t) const {
    if (!FooterGoverns(t)) {
      for (auto it = std::upper_bound(change_times.begin(), change_times.end(), t);
           it != change_times.end(); ++it) {
        if (ChangesAt(*it)) return *it;
      }
      if (!footer) return std::nullopt;
      // The footer takes over at the last transition, possibly with a change.
      if (ChangesAt(*last_transition)) return *last_transition;
      t = *last_transition;
    }
    return footer->Next(t);
  }

  std::optional<int64_t> Prev(int64_t t) const {
    if (FooterGoverns(t)) {
      auto p = footer->Prev(t);
      if (p && (!last_transition || *p > *last_transition)) return p;
      if (!last_transition) return std::nullopt;
      if (ChangesAt(*last_transition)) return *last_transition;
      t = *last_transition - 1;
    }
    auto it = std::upper_bound(change_times.begin(), change_times.end(), t);
    while (it != change_times.begin()) {
      --it;
      if (ChangesAt(*it)) return *it;
    }
    return std::nullopt;
  }
};

int64_t DaysFromCivil(int64_t year, int month, int day) {
  // Howard Hinnant's days_from_civil.
  year -= month <= 2 ? 1 : 0;
  const int64_t era = FloorDiv(year, 400);
  const auto yoe = static_cast<int64_t>(year - era * 400);
  const int64_t mp = month > 2 ? month - 3 : month + 9;
  const int64_t doy = (153 * mp + 2) / 5 + day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int64_t ToLocalSeconds(const CivilTime& c) {
  return DaysFromCivil(c.year, c.month, c.day) * kSecondsPerDay + c.hour * 3600 + c.minute * 60 +
         c.second;
}

CivilTime FromLocalSeconds(int64_t local_seconds) {
  const int64_t days = FloorDiv(local_seconds, kSecondsPerDay);
  const int64_t secs = local_seconds - days * kSecondsPerDay;
  // Howard Hinnant's civil_from_days.
  const int64_t z = days + 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  CivilTime c;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
  c.hour = static_cast<int>(secs / 3600);
  c.minute = static_cast<int>(secs / 60 % 60);
  c.second = static_cast<int>(secs % 60);
  return c;
}

int DayOfWeek(int64_t year, int month, int day) {
  // 1970-01-01 was a Thursday (4).
  const int64_t days = DaysFromCivil(year, month, day);
  return static_cast<int>(((days % 7) + 7 + 4) % 7);
}

bool IsLeapYear(int64_t year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeapYear(year)) return 29;
  return kDays[month - 1];
}

TimeZone TimeZone::Utc() {
  static const std::shared_ptr<const Data> utc = [] {
    auto data = std::make_shared<Data>();
    data->name = "UTC";
    return data;
  }();
  return TimeZone(utc);
}

Result<TimeZone> TimeZone::FromPosixTz(std::string name, std::string_view rule) {
  auto parsed = RuleParser(rule).Parse();
  if (!parsed) return std::move(parsed).error();
  auto data = std::make_shared<Data>();
  data->name = std::move(name);
  data->initial_offset = parsed->std_offset;
  data->footer = *parsed;
  return TimeZone(std::move(data));
}

Result<TimeZone> TimeZone::FromTzif(std::string name, std::string_view bytes) {
  auto fail = [&name](std::string_view what) {
    return Error::InvalidArgument(fmt::format("time zone file for \"{}\": {}", name, what));
  };
  ByteReader in(bytes);
  auto read_header = [&](TzifHeader& h) -> Status {
    if (!in.Has(44)) return fail("truncated header");
    const std::string_view magic = in.Rest().substr(0, 4);
    if (magic != "TZif") return fail("not a TZif file (bad magic)");
    in.Skip(4);
    h.version = static_cast<char>(in.U8());
    if (h.version != 0 && (h.version < '2' || h.version > '4')) {
      return fail(fmt::format("unsupported version byte 0x{:02x}", h.version));
    }
    in.Skip(15);
    h.isutcnt = in.U32();
    h.isstdcnt = in.U32();
    h.leapcnt = in.U32();
    h.timecnt = in.U32();
    h.typecnt = in.U32();
    h.charcnt = in.U32();
    if (h.typecnt == 0 || h.charcnt == 0) return fail("no local time types");
    if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) ||
        (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
      return fail("standard/UT indicator counts disagree with the type count");
    }
    return {};
  };

  TzifHeader header;
  if (auto s = read_header(header); !s) return std::move(s).error();
  int time_size = 4;
  if (header.version != 0) {
    // Version 2+: skip the 32-bit block, use the 64-bit one.
    if (!in.Has(header.DataSize(4))) return fail("truncated version 1 data block");
    in.Skip(static_cast<size_t>(header.DataSize(4)));
    if (auto s = read_header(header); !s) return std::move(s).error();
    time_size = 8;
  }
  if (!in.Has(header.DataSize(time_size))) return fail("truncated data block");
  if (header.leapcnt != 0) {
    return fail("leap-second records (a \"right/\" zone) are not supported");
  }

  auto data = std::make_shared<Data>();
  data->name = name;
  std::vector<int64_t> times(header.timecnt);
  for (auto& t : times) {
    t = time_size == 8 ? in.I64() : static_cast<int64_t>(static_cast<int32_t>(in.U32()));
  }
  for (size_t i = 1; i < times.size(); ++i) {
    if (times[i] <= times[i - 1]) return fail("transition times not ascending");
  }
  std::vector<uint8_t> type_of(header.timecnt);
  for (auto& idx : type_of) {
    idx = in.U8();
    if (idx >= header.typecnt) return fail("transition names a type that does not exist");
  }
  std::vector<int32_t> offsets(header.typecnt);
  for (auto& off : offsets) {
    off = static_cast<int32_t>(in.U32());
    const uint8_t isdst = in.U8();
    const uint8_t abbr = in.U8();
    if (off < kMinUtcOffset || off > kMaxUtcOffset) return fail("UT offset out of range");
    if (isdst > 1) return fail("isdst is neither 0 nor 1");
    if (abbr >= header.charcnt) return fail("abbreviation index out of range");
  }
  // Abbreviations, leap records (none), standard/wall and UT/local indicators:
  // not needed for offsets.
  in.Skip(header.charcnt + header.isstdcnt + header.isutcnt);

  data->initial_offset = offsets[0];
  int32_t current = data->initial_offset;
  for (size_t i = 0; i < times.size(); ++i) {
    const int32_t off = offsets[type_of[i]];
    if (off != current) {
      data->change_times.push_back(times[i]);
      data->change_offsets.push_back(off);
      current = off;
    }
  }
  if (!times.empty()) data->last_transition = times.back();

  if (header.version != 0) {
    const std::string_view rest = in.Rest();
    if (rest.size() < 2 || rest.front() != '\n' || rest.back() != '\n') {
      return fail("missing footer");
    }
    const std::string_view footer = rest.substr(1, rest.size() - 2);
    if (footer.find('\n') != std::string_view::npos) return fail("garbage after the footer");
    if (!footer.empty()) {
      auto rule = RuleParser(footer).Parse();
      if (!rule) return fail(rule.error().detail);
      data->footer = *rule;
      if (times.empty()) data->initial_offset = rule->std_offset;
    }
  }
  return TimeZone(std::move(data));
}

const std::string& TimeZone::name() const { return data_->name; }

int32_t TimeZone::OffsetAt(UnixMillis t) const { return data_->OffsetAt(MillisToSeconds(t)); }

CivilTime TimeZone::ToLocal(UnixMillis t) const {
  const int64_t s = MillisToSeconds(t);
  return FromLocalSeconds(s + data_->OffsetAt(s));
}

std::optional<UnixMillis> TimeZone::NextTransition(UnixMillis t) const {
  auto next = data_->Next(MillisToSeconds(t));
  if (!next) return std::nullopt;
  return *next * 1000;
}

std::optional<UnixMillis> TimeZone::PrevTransition(UnixMillis t) const {
  auto prev = data_->Prev(MillisToSeconds(t));
  if (!prev) return std::nullopt;
  return *prev * 1000;
}

LocalLookup TimeZone::Lookup(const CivilTime& local) const {
  const int64_t l = ToLocalSeconds(local);
  // Every offset in effect near l, and the changes between them.
  std::vector<int32_t> offsets{data_->OffsetAt(l - kLookupWindow)};
  std::vector<int64_t> changes;
  for (auto c = data_->Next(l - kLookupWindow); c && *c <= l + kLookupWindow; c = data_->Next(*c)) {
    changes.push_back(*c);
    offsets.push_back(data_->OffsetAt(*c));
  }
  std::vector<int64_t> instants;
  for (int32_t off : offsets) {
    const int64_t t = l - off;
    if (data_->OffsetAt(t) == off) instants.push_back(t);
  }
  std::sort(instants.begin(), instants.end());
  instants.erase(std::unique(instants.begin(), instants.end()), instants.end());
  LocalLookup result;
  if (instants.size() == 1) {
    result.first = result.second = instants[0] * 1000;
  } else if (instants.size() > 1) {
    result.kind = LocalLookup::Kind::kAmbiguous;
    result.first = instants[0] * 1000;
    result.second = instants[1] * 1000;
  } else {
    // A gap: the change whose jump in local time passes over l.
    result.kind = LocalLookup::Kind::kGap;
    for (int64_t c : changes) {
      if (c + data_->OffsetAt(c - 1) <= l && l < c + data_->OffsetAt(c)) {
        result.first = result.second = c * 1000;
        break;
      }
    }
  }
  return result;
}

}  // namespace acceptd
