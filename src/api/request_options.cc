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
