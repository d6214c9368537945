#include "api/request_options.h"

#include <charconv>

#include <boost/url/parse.hpp>

namespace acceptd::api {

std::optional<QueryParamList> QueryParams(std::string_view target) {
  if (target.find('?') == std::string_view::npos) return QueryParamList();  // no parsing
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  QueryParamList out;
  for (auto param : url->params()) out.emplace_back(param.key, param.value);
  return out;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<OptionError> ParseSubmitOptions(const QueryParamList& params, bool callbacks_enabled,
                                              SubmitOptions& out) {
  for (const auto& [key, value] : params) {
    if (key == "max_attempts") {
      auto v = ParseInt(value);
      if (!v || *v < 1 || *v > kMaxAttemptsLimit) {
        return OptionError{key, "must be an integer from 1 to 1000"};
      }
      out.max_attempts = static_cast<int>(*v);
    } else if (key == "timeout") {
      auto v = ParseSeconds(value);
      if (!v || *v <= 0 || *v > kMaxTimeout) {
        return OptionError{key, "must be a positive number of seconds, at most 604800"};
      }
      out.timeout = *v;
    } else if (key == "delay") {
      auto v = ParseSeconds(value);
      if (!v || *v > kMaxDelay)
        return OptionError{key, "must be a number of seconds from 0 to 31536000"};
      out.delay = *v;
    } else if (key == "priority") {
      auto v = ParseInt(value);
      if (!v || *v < -kMaxPriority || *v > kMaxPriority) {
        return OptionError{key, "must be an integer from -1000000 to 1000000"};
      }
      out.priority = static_cast<int>(*v);
    } else if (key == "callback") {
      if (!callbacks_enabled) {
        return OptionError{key, "callbacks are not enabled on this server ([callbacks] secret)"};
      }
      auto target = webhooks::ParseCallbackUrl(value);
      if (!target) return OptionError{key, target.error().detail};
      out.callback = std::move(*target);
      out.callback_url = value;
    } else {
      return OptionError{key, "unknown option"};
    }
  }
  return std::nullopt;
}

Millis PreferredWait(std::string_view prefer) {
  for (size_t pos = prefer.find("wait="); pos != std::string_view::npos;
       pos = prefer.find("wait=", pos + 1)) {
    if (pos > 0 && prefer[pos - 1] != ' ' && prefer[pos - 1] != ',' && prefer[pos - 1] != ';') {
      continue;
    }
    std::string_view rest = prefer.substr(pos + 5);
    rest = rest.substr(0, rest.find_first_of(",; "));
    if (auto v = ParseSeconds(rest)) return *v;
  }
  return 0;
}

std::optional<Millis> RequestedWait(std::string_view target, std::string_view prefer) {
  auto params = QueryParams(target);
  if (!params) return std::nullopt;
  std::optional<std::string_view> wait;  // a repeated option takes its last value
  for (const auto& [key, value] : *params) {
    if (key == "wait") wait = value;
  }
  if (wait) return ParseSeconds(*wait);
  return PreferredWait(prefer);
}

std::optional<std::string> ParseIdempotencyKey(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > kMaxIdempotencyKey) return std::nullopt;
  for (char c : v) {
    if (c < 0x21 || c > 0x7e) return std::nullopt;
  }
  return std::string(v);
}

}  // namespace acceptd::api

namespace acceptd::api {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool Digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<UnixMillis> ParseTimeOption(std::string_view s) {
  if (auto ms = ParseInt(s)) return *ms;
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  int64_t year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, month) ||
      s[7] != '-' || !Digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !Digits(s, 11, 2, hour) || s[13] != ':' || !Digits(s, 14, 2, minute) || s[16] != ':' ||
      !Digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 3) ms = ms * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (int i = digits; i < 3; ++i) ms *= 10;
  }
  int64_t offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int64_t oh, om;
    if (!Digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_min = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return ((days * 24 + hour) * 60 + minute - offset_min) * 60'000 + second * 1000 + ms;
}

std::optional<OptionError> ParseListOptions(const QueryParamList& params, ListParams& out) {
  std::optional<int64_t> cursor;
  std::optional<std::string> field, value;
  for (const auto& [key, v] : params) {
    if (key == "queue") {
      out.queue = v;
    } else if (key == "state") {
      out.state = ParseJobState(v);
      if (!out.state) {
        return OptionError{key, "must be queued, running, succeeded, failed or canceled"};
      }
    } else if (key == "limit") {
      auto n = ParseInt(v);
      if (!n || *n < 1 || *n > kMaxListLimit) {
        return OptionError{key, "must be an integer from 1 to 1000"};
      }
      out.limit = static_cast<int>(*n);
    } else if (key == "cursor") {
      auto n = ParseInt(v);
      if (!n || *n < 0) return OptionError{key, "not a cursor returned by this server"};
      cursor = *n;
    } else if (key == "order") {
      if (v == "newest") {
        out.order = ListOrder::kNewest;
      } else if (v == "oldest") {
        out.order = ListOrder::kOldest;
      } else {
        return OptionError{key, "must be newest or oldest"};
      }
    } else if (key == "id") {
      if (v.empty()) {
        out.id_prefix.reset();
        continue;
      }
      std::string prefix;
      for (char c : v) {
        const char l = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
        if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f'))) {
          return OptionError{key, "must be the start of a job id: 1 to 32 hex digits"};
        }
        prefix += l;
      }
      if (prefix.size() > 32) {
        return OptionError{key, "must be the start of a job id: 1 to 32 hex digits"};
      }
      out.id_prefix = std::move(prefix);
    } else if (key == "q") {
      if (v.empty()) {
        out.text.reset();
      } else {
        out.text = v;
      }
    } else if (key == "field") {
      field = v;
    } else if (key == "value") {
      value = v;
    } else if (key == "created_after" || key == "created_before") {
      auto t = ParseTimeOption(v);
      if (!t) return OptionError{key, "must be an RFC 3339 time or unix milliseconds"};
      (key == "created_after" ? out.created_after : out.created_before) = *t;
    } else {
      return OptionError{key, "unknown option"};
    }
  }
  if (field && !field->empty()) {
    FieldMatch m;
    size_t start = 0;
    for (;;) {
      const size_t dot = field->find('.', start);
      m.path.push_back(field->substr(start, dot == std::string::npos ? dot : dot - start));
      if (m.path.back().empty() || m.path.back().find('"') != std::string::npos) {
        return OptionError{"field",
                           "must be a dotted path of member names (non-empty, without '\"')"};
      }
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (!value) return OptionError{"value", "is required with field"};
    m.value = std::move(*value);
    out.field = std::move(m);
  } else if (value) {
    return OptionError{"value", "needs field (the member to compare)"};
  }
  if (cursor) {
    if (out.order == ListOrder::kNewest) {
      out.before_seq = cursor;
    } else {
      out.after_seq = cursor;
    }
  }
  return std::nullopt;
}

}  // namespace acceptd::api
