#include "http/router.h"

#include "http/problem.h"

namespace acceptd::http {

std::string_view PathParams::Get(std::string_view name) const {
  for (const auto& [k, v] : values) {
    if (k == name) return v;
  }
  return {};
}

std::vector<std::string_view> SplitPath(std::string_view target) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < target.size()) {
    if (target[i] == '/') {
      ++i;
      continue;
    }
    size_t j = target.find('/', i);
    if (j == std::string_view::npos) j = target.size();
    parts.push_back(target.substr(i, j - i));
    i = j;
  }
  return parts;
}

void Router::Add(Verb method, std::string_view pattern, RouteHandler handler) {
  std::vector<std::string> segments;
  for (auto s : SplitPath(pattern)) segments.emplace_back(s);
  for (RouteEntry& r : routes_) {
    if (r.segments == segments) {
      r.methods.emplace_back(method, std::move(handler));
      return;
    }
  }
  routes_.push_back(RouteEntry{std::move(segments), {{method, std::move(handler)}}});
}

bool Router::Match(const RouteEntry& r, const std::vector<std::string_view>& parts,
                   PathParams* params) {
  if (r.segments.size() != parts.size()) return false;
  params->values.clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& seg = r.segments[i];
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      params->values.emplace_back(seg.substr(1, seg.size() - 2), parts[i]);
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return true;
}

boost::asio::awaitable<Response> Router::Route(Request& req) const {
  const auto parts = SplitPath(req.target());
  PathParams params;
  std::string allow;
  for (const RouteEntry& r : routes_) {
    if (!Match(r, parts, &params)) continue;
    for (const auto& [method, handler] : r.methods) {
      if (method == req.method()) co_return co_await handler(req, params);
    }
    // Another route may still match with this method; remember what this one allows.
    for (const auto& [method, handler] : r.methods) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(beast_http::to_string(method));
    }
  }
  if (allow.empty()) co_return Problem(Status::not_found, "no such resource");
  Response res = Problem(Status::method_not_allowed,
                         "method " + std::string(req.method_string()) + " is not allowed here");
  res.set(Field::allow, allow);
  co_return res;
}

}  // namespace acceptd::http
