#include "http/router.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/problem.h"
#include "http/request_id.h"

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

void Router::Add(Verb method, std::string_view pattern, Access access, RouteHandler handler) {
  std::vector<std::string> segments;
  for (auto s : SplitPath(pattern)) segments.emplace_back(s);
  RouteEntry::Method m{method, access, std::move(handler), std::make_unique<Stats>()};
  for (RouteEntry& r : routes_) {
    if (r.segments == segments) {
      r.methods.push_back(std::move(m));
      return;
    }
  }
  RouteEntry entry;
  entry.pattern = std::string(pattern);
  entry.segments = std::move(segments);
  entry.methods.push_back(std::move(m));
  routes_.push_back(std::move(entry));
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

boost::asio::awaitable<Response> Router::Route(Request& req, Peer peer) const {
  const auto start = std::chrono::steady_clock::now();
  const std::string request_id = RequestIdFor(req[kRequestIdField]);
  Dispatched found;
  Response res = co_await Dispatch(req, peer, found);
  res.set(kRequestIdField, request_id);
  const auto duration = std::chrono::steady_clock::now() - start;
  Stats& stats = found.method ? *found.method->stats : *unmatched_;
  const unsigned status = res.result_int();
  if (status >= 100 && status < 600) stats.by_class[status / 100 - 1].Add();
  stats.duration.Observe(std::chrono::duration<double>(duration).count());
  if (access_log_) {
    AccessRecord record;
    record.method = req.method_string();
    record.route = found.route ? std::string_view(found.route->pattern) : "-";
    record.status = status;
    record.duration = duration;
    if (!res.stream) record.bytes = res.body().size();
    record.request_id = request_id;
    record.key = found.key;
    access_log_(record);
  }
  co_return res;
}

boost::asio::awaitable<Response> Router::Dispatch(Request& req, Peer peer, Dispatched& out) const {
  const auto parts = SplitPath(req.target());
  PathParams params;
  params.peer = peer;
  std::string allow;
  const RouteEntry::Method* found = nullptr;
  for (const RouteEntry& r : routes_) {
    if (!Match(r, parts, &params)) continue;
    for (const RouteEntry::Method& m : r.methods) {
      if (m.verb == req.method()) {
        found = &m;
        break;
      }
    }
    if (found) {
      out.route = &r;
      out.method = found;
      break;
    }
    // Another route may still match with this method; remember what this one allows.
    for (const RouteEntry::Method& m : r.methods) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(beast_http::to_string(m.verb));
    }
  }
  std::optional<Principal> principal;
  if (auth_ && auth_->enabled() && !(found && found->access.is_public())) {
    auto who = auth_->Authenticate(req[Field::authorization]);
    const std::string_view path = req.target().substr(0, req.target().find('?'));
    if (const auto* failure = std::get_if<AuthFailure>(&who)) {
      // Never log the presented key; the request line is enough to investigate.
      if (*failure == AuthFailure::kInvalid) {
        spdlog::info("refused {} {}: invalid API key", req.method_string(), path);
      }
      co_return Unauthorized(*failure);
    }
    principal = std::move(std::get<Principal>(who));
    if (found) {
      if (auto scope = found->access.scope(); scope && !principal->scopes.Allows(*scope)) {
        spdlog::info("refused {} {}: key '{}' lacks scope '{}'", req.method_string(), path,
                     principal->name, ToString(*scope));
        co_return Forbidden(*scope);
      }
    }
    params.principal = &*principal;
    out.key = principal->name;
  } else if (found && found->access.scope() == Scope::kWorker && !peer.loopback) {
    spdlog::info("refused {} {} from a remote peer: worker routes need an API key",
                 req.method_string(), req.target().substr(0, req.target().find('?')));
    co_return Problem(Status::forbidden,
                      "without API keys, worker routes answer only loopback peers; configure a "
                      "key with the 'worker' scope (docs/workers.md)");
  }
  if (found) {
    Response res = co_await found->handler(req, params);
    // Briefly unusable (the store is down, the server stops): say when to
    // come back, whichever route answered (RFC 9110, section 15.6.4).
    if (res.result() == Status::service_unavailable && res[Field::retry_after].empty()) {
      res.set(Field::retry_after, unavailable_retry_after_);
    }
    co_return res;
  }
  if (allow.empty()) co_return Problem(Status::not_found, "no such resource");
  Response res = Problem(Status::method_not_allowed,
                         "method " + std::string(req.method_string()) + " is not allowed here");
  res.set(Field::allow, allow);
  co_return res;
}

void Router::WriteMetrics(metrics::MetricsText& out) const {
  static constexpr std::string_view kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  out.Family("acceptd_http_requests_total", "counter",
             "HTTP requests answered, by method, route pattern and status class.");
  auto counters = [&](std::string_view method, std::string_view route, const Stats& s) {
    for (int c = 0; c < 5; ++c) {
      out.Sample("acceptd_http_requests_total",
                 {{"method", method}, {"route", route}, {"status", kClasses[c]}},
                 s.by_class[c].Value());
    }
  };
  for (const RouteEntry& r : routes_) {
    for (const RouteEntry::Method& m : r.methods) {
      counters(beast_http::to_string(m.verb), r.pattern, *m.stats);
    }
  }
  counters("", "unmatched", *unmatched_);
  out.Family("acceptd_http_request_duration_seconds", "histogram",
             "Time from routing a request to its response being ready (a long-poll's wait "
             "included; writing the response not).");
  for (const RouteEntry& r : routes_) {
    for (const RouteEntry::Method& m : r.methods) {
      out.Histogram("acceptd_http_request_duration_seconds",
                    {{"method", beast_http::to_string(m.verb)}, {"route", r.pattern}},
                    m.stats->duration.Read());
    }
  }
  out.Histogram("acceptd_http_request_duration_seconds", {{"method", ""}, {"route", "unmatched"}},
                unmatched_->duration.Read());
}

void Router::SetUnavailableRetryAfter(Millis retry_after) {
  unavailable_retry_after_ = std::to_string(std::max<Millis>(1, (retry_after + 999) / 1000));
}

std::vector<RouteInfo> Router::Routes() const {
  std::vector<RouteInfo> out;
  for (const RouteEntry& r : routes_) {
    std::string pattern;
    for (const std::string& segment : r.segments) pattern += "/" + segment;
    if (pattern.empty()) pattern = "/";
    for (const RouteEntry::Method& m : r.methods) out.push_back({m.verb, pattern, m.access});
  }
  return out;
}

}  // namespace acceptd::http
