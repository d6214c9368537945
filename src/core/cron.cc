#include "core/cron.h"

#include <algorithm>
#include <array>
#include <limits>
#include <vector>

#include <fmt/format.h>

namespace acceptd {

namespace {

constexpr int64_t kSecondsPerDay = 86'400;

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  // Three-letter names for the values names_base, names_base + 1, ...; empty
  // when the field takes numbers only.
  std::array<std::string_view, 12> names;
  size_t name_count;
  int names_base;
};

constexpr FieldSpec kSecond{"second", 0, 59, {}, 0, 0};
constexpr FieldSpec kMinute{"minute", 0, 59, {}, 0, 0};
constexpr FieldSpec kHour{"hour", 0, 23, {}, 0, 0};
constexpr FieldSpec kDayOfMonth{"day-of-month", 1, 31, {}, 0, 0};
constexpr FieldSpec kMonth{
    "month", 1,
    12,      {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"},
    12,      1};
constexpr FieldSpec kDayOfWeek{
    "day-of-week", 0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, 7, 0};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr Macro kMacros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char Upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Upper(a[i]) != Upper(b[i])) return false;
  }
  return true;
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

// Parses one expression; each error names the field and the offending text.
class CronParser {
 public:
  explicit CronParser(std::string_view text) : text_(text) {}

  Result<CronExpr> Parse() {
    std::string_view trimmed = text_;
    while (!trimmed.empty() && IsBlank(trimmed.front())) trimmed.remove_prefix(1);
    while (!trimmed.empty() && IsBlank(trimmed.back())) trimmed.remove_suffix(1);
    CronExpr expr;
    expr.text_ = std::string(trimmed);
    std::string_view body = trimmed;
    if (!trimmed.empty() && trimmed.front() == '@') {
      const Macro* macro = nullptr;
      for (const Macro& m : kMacros) {
        if (EqualsIgnoreCase(m.name, trimmed)) macro = &m;
      }
      if (macro == nullptr) {
        return Fail(
            fmt::format("unknown macro \"{}\" (known: @yearly, @annually, @monthly, "
                        "@weekly, @daily, @midnight, @hourly)",
                        trimmed));
      }
      body = macro->expansion;
    }

    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < body.size()) {
      while (i < body.size() && IsBlank(body[i])) ++i;
      if (i == body.size()) break;
      const size_t begin = i;
      while (i < body.size() && !IsBlank(body[i])) ++i;
      fields.push_back(body.substr(begin, i - begin));
    }
    if (fields.size() != 5 && fields.size() != 6) {
      return Fail(fmt::format(
          "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds "
          "first), got {}",
          fields.size()));
    }
    expr.has_seconds_ = fields.size() == 6;
    size_t f = 0;
    if (expr.has_seconds_) {
      auto bits = Field(fields[f++], kSecond);
      if (!bits) return std::move(bits).error();
      expr.seconds_ = *bits;
    } else {
      expr.seconds_ = 1;  // second 0
    }
    auto minutes = Field(fields[f++], kMinute);
    if (!minutes) return std::move(minutes).error();
    expr.minutes_ = *minutes;
    expr.hour_star_ = fields[f].front() == '*';
    auto hours = Field(fields[f++], kHour);
    if (!hours) return std::move(hours).error();
    expr.hours_ = static_cast<uint32_t>(*hours);
    expr.dom_star_ = fields[f].front() == '*';
    auto dom = Field(fields[f++], kDayOfMonth);
    if (!dom) return std::move(dom).error();
    expr.days_of_month_ = static_cast<uint32_t>(*dom);
    auto months = Field(fields[f++], kMonth);
    if (!months) return std::move(months).error();
    expr.months_ = static_cast<uint16_t>(*months);
    expr.dow_star_ = fields[f].front() == '*';
    auto dow = Field(fields[f++], kDayOfWeek);
    if (!dow) return std::move(dow).error();
    uint64_t dow_bits = *dow;
    if (dow_bits & (uint64_t{1} << 7)) dow_bits = (dow_bits | 1) & 0x7f;  // 7 is Sunday too
    expr.days_of_week_ = static_cast<uint8_t>(dow_bits);
    return expr;
  }

 private:
  Error Fail(std::string_view problem) const {
    return Error::InvalidArgument(fmt::format("cron expression \"{}\": {}", text_, problem));
  }
  Error FieldError(const FieldSpec& spec, std::string_view problem) const {
    return Fail(fmt::format("{}: {}", spec.name, problem));
  }

  // A number or (where the field has names) a three-letter name.
  Result<int> Value(std::string_view text, const FieldSpec& spec) const {
    if (text.empty()) return FieldError(spec, "missing value");
    if (IsDigit(text.front())) {
      int value = 0;
      for (char c : text) {
        if (!IsDigit(c)) {
          return FieldError(spec, fmt::format("unexpected '{}' in \"{}\"", c, text));
        }
        value = value * 10 + (c - '0');
        if (value > 9999) break;  // out of range anyway; keeps int from overflowing
      }
      if (value < spec.min || value > spec.max) {
        return FieldError(spec, fmt::format("{} is out of range {}-{}", text, spec.min, spec.max));
      }
      return value;
    }
    for (size_t n = 0; n < spec.name_count; ++n) {
      if (EqualsIgnoreCase(spec.names[n], text)) return spec.names_base + static_cast<int>(n);
    }
    if (spec.name_count == 0) {
      return FieldError(spec, fmt::format("\"{}\" is not a number", text));
    }
    return FieldError(
        spec, fmt::format("unknown name \"{}\" (expected {}-{} or {}-{})", text, spec.names[0],
                          spec.names[spec.name_count - 1], spec.min, spec.max));
  }

  // The values of one field, as bits.
  Result<uint64_t> Field(std::string_view text, const FieldSpec& spec) const {
    uint64_t bits = 0;
    size_t begin = 0;
    for (;;) {
      const size_t comma = text.find(',', begin);
      const std::string_view item = text.substr(
          begin, comma == std::string_view::npos ? std::string_view::npos : comma - begin);
      if (item.empty()) return FieldError(spec, "empty list item");
      auto item_bits = Item(item, spec);
      if (!item_bits) return std::move(item_bits).error();
      bits |= *item_bits;
      if (comma == std::string_view::npos) break;
      begin = comma + 1;
    }
    return bits;
  }

  Result<uint64_t> Item(std::string_view item, const FieldSpec& spec) const {
    std::string_view base = item;
    std::optional<int> step;
    if (const size_t slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      if (step_text.empty()) return FieldError(spec, fmt::format("missing step in \"{}\"", item));
      int s = 0;
      for (char c : step_text) {
        if (!IsDigit(c)) {
          return FieldError(spec, fmt::format("step \"{}\" is not a number", step_text));
        }
        s = s * 10 + (c - '0');
        if (s > 9999) break;
      }
      if (s == 0) return FieldError(spec, "a step of 0");
      if (s > spec.max - spec.min) {
        return FieldError(spec, fmt::format("step {} is larger than the field's range {}-{}",
                                            step_text, spec.min, spec.max));
      }
      step = s;
    }
    if (base.empty()) return FieldError(spec, fmt::format("missing value in \"{}\"", item));
    int lo = 0;
    int hi = 0;
    if (base == "*") {
      lo = spec.min;
      hi = spec.max;
    } else if (const size_t dash = base.find('-'); dash != std::string_view::npos) {
      auto a = Value(base.substr(0, dash), spec);
      if (!a) return std::move(a).error();
      auto b = Value(base.substr(dash + 1), spec);
      if (!b) return std::move(b).error();
      if (*a > *b) {
        return FieldError(spec, fmt::format("reversed range \"{}\" (no wrap-around)", base));
      }
      lo = *a;
      hi = *b;
    } else {
      auto a = Value(base, spec);
      if (!a) return std::move(a).error();
      lo = *a;
      hi = step ? spec.max : *a;  // "a/s": from a to the field's end
    }
    uint64_t bits = 0;
    for (int v = lo; v <= hi; v += step.value_or(1)) bits |= uint64_t{1} << v;
    return bits;
  }

  std::string_view text_;
};

Result<CronExpr> CronExpr::Parse(std::string_view text) { return CronParser(text).Parse(); }

bool CronExpr::MatchesDay(int64_t year, int month, int day) const {
  const bool dom = (days_of_month_ >> day) & 1;
  const bool dow = (days_of_week_ >> DayOfWeek(year, month, day)) & 1;
  // Vixie cron: with either field starting with '*', both must match
  // (the starred one nearly always does); with both restricted, either.
  if (dom_star_ || dow_star_) return dom && dow;
  return dom || dow;
}

bool CronExpr::Matches(const CivilTime& t) const {
  return MatchesMonth(t.month) && MatchesDay(t.year, t.month, t.day) && MatchesHour(t.hour) &&
         MatchesMinute(t.minute) && MatchesSecond(t.second);
}

namespace {

void StartOfNextMonth(CivilTime& t) {
  t.day = 1;
  t.hour = t.minute = t.second = 0;
  if (++t.month > 12) {
    t.month = 1;
    ++t.year;
  }
}

void StartOfNextDay(CivilTime& t) {
  t.hour = t.minute = t.second = 0;
  if (++t.day > DaysInMonth(t.year, t.month)) StartOfNextMonth(t);
}

// The first local time (local seconds, see time_zone.h) at or after `from`
// and before `limit` that `cron` matches, or nullopt. Steps field by field:
// a mismatching month skips the month, a day the day, and so on.
std::optional<int64_t> NextLocalMatch(const CronExpr& cron, int64_t from, int64_t limit) {
  CivilTime t = FromLocalSeconds(from);
  for (;;) {
    if (ToLocalSeconds(t) >= limit) return std::nullopt;
    if (!cron.MatchesMonth(t.month)) {
      StartOfNextMonth(t);
      continue;
    }
    if (!cron.MatchesDay(t.year, t.month, t.day)) {
      StartOfNextDay(t);
      continue;
    }
    if (!cron.MatchesHour(t.hour)) {
      int h = t.hour + 1;
      while (h < 24 && !cron.MatchesHour(h)) ++h;
      if (h == 24) {
        StartOfNextDay(t);
      } else {
        t.hour = h;
        t.minute = t.second = 0;
      }
      continue;
    }
    if (!cron.MatchesMinute(t.minute)) {
      int m = t.minute + 1;
      while (m < 60 && !cron.MatchesMinute(m)) ++m;
      if (m == 60) {
        t.minute = 59;
        t.second = 59;
        t = FromLocalSeconds(ToLocalSeconds(t) + 1);  // the next hour
      } else {
        t.minute = m;
        t.second = 0;
      }
      continue;
    }
    if (!cron.MatchesSecond(t.second)) {
      int s = t.second + 1;
      while (s < 60 && !cron.MatchesSecond(s)) ++s;
      if (s == 60) {
        t.second = 59;
        t = FromLocalSeconds(ToLocalSeconds(t) + 1);  // the next minute
      } else {
        t.second = s;
      }
      continue;
    }
    return ToLocalSeconds(t);
  }
}

}  // namespace

std::optional<UnixMillis> NextFireTime(const CronExpr& cron, const TimeZone& zone,
                                       UnixMillis after) {
  static const int64_t kFirstInstant = DaysFromCivil(1, 1, 2) * kSecondsPerDay;
  static const int64_t kLastInstant = DaysFromCivil(9999, 12, 31) * kSecondsPerDay;
  // Fires are whole seconds; the first candidate is the first one after `after`.
  const int64_t start = FloorDiv(after, 1000) + 1;
  if (start < kFirstInstant || start > kLastInstant) return std::nullopt;
  const int64_t horizon = start + kMaxFireSearchYears * 366 * kSecondsPerDay;
  auto offset_at = [&zone](int64_t t) -> int64_t { return zone.OffsetAt(t * 1000); };

  // Walk the segments of constant offset from the one holding `start`. In a
  // segment [a, b) with offset `off`, local time is t + off, one to one.
  const std::optional<UnixMillis> prev = zone.PrevTransition(start * 1000);
  int64_t a = prev ? *prev / 1000 : start;
  int64_t off_before = offset_at(a - 1);
  // Fixed-time schedules: local times below `seen` have occurred already
  // (before a fall-back), so their repetition does not fire.
  int64_t seen = prev ? a + off_before : std::numeric_limits<int64_t>::min() / 2;
  for (;;) {
    const int64_t off = offset_at(a);
    const std::optional<UnixMillis> next = zone.NextTransition(a * 1000);
    const int64_t b = next ? *next / 1000 : std::numeric_limits<int64_t>::max() / 2;
    int64_t from = std::max(a, start) + off;
    if (cron.fixed_hour()) {
      // A spring-forward gap at a: local times in [a + off_before, a + off)
      // never happen; if one of them matches, it fires once, at a.
      if (a >= start && off > off_before &&
          NextLocalMatch(cron, std::max(seen, a + off_before), a + off)) {
        return a * 1000;
      }
      from = std::max(from, seen);
    }
    if (auto local = NextLocalMatch(cron, from, std::min(b, horizon) + off)) {
      return (*local - off) * 1000;
    }
    if (!next || b > horizon) return std::nullopt;
    seen = std::max(seen, b + off);
    off_before = off;
    a = b;
  }
}

}  // namespace acceptd
