#include "client/lease_client.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace acceptd::client {

namespace json = boost::json;
namespace urls = boost::urls;

namespace {

constexpr double kMaxHeaderSeconds = 24.0 * 3600;

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::optional<int> ParsePositiveInt(std::string_view value) {
  const std::string v = Trim(value);
  int n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || ptr != v.data() + v.size() || n < 1) return std::nullopt;
  return n;
}

bool IsLowerHex32(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// {base_url}/seg/seg/...: segments percent-encoded, base_url's query dropped.
Result<std::string> UnderBase(const std::string& base_url,
                              std::initializer_list<std::string_view> segments) {
  auto parsed = urls::parse_uri(base_url);
  if (!parsed) {
    return Error::InvalidArgument("invalid server URL '" + base_url +
                                  "' (expected http[s]://host[:port]/...)");
  }
  urls::url u(*parsed);
  u.remove_query();
  u.remove_fragment();
  auto segs = u.segments();
  if (!segs.empty() && segs.back().empty()) segs.pop_back();
  for (std::string_view s : segments) segs.push_back(s);
  return std::string(u.buffer());
}

// A lease answer that breaks the protocol: the server is not (this version
// of) acceptd. kInvalidArgument, so a worker does not retry it forever.
Error Malformed(const HttpResponse& res, std::string_view what) {
  std::string detail = "malformed lease answer from " + res.url + ": " + std::string(what);
  return Error{ErrorCode::kInvalidArgument, detail, detail};
}

}  // namespace

// ---------------------------------------------------------------------------
// Pure pieces

std::optional<Millis> ParseSecondsHeader(std::string_view value) {
  const std::string v = Trim(value);
  if (v.empty()) return std::nullopt;
  double seconds = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec != std::errc() || ptr != v.data() + v.size() || !std::isfinite(seconds) || seconds < 0 ||
      seconds > kMaxHeaderSeconds) {
    return std::nullopt;
  }
  return Millis(static_cast<int64_t>(std::llround(seconds * 1000)));
}

Error LeaseErrorFromResponse(const HttpResponse& response, bool names_lease) {
  Error e = ErrorFromResponse(response);
  if (response.status == 409 && names_lease) {
    e.code = ErrorCode::kStaleLease;
  } else if (response.status == 408 || response.status == 429) {
    e.code = ErrorCode::kUnavailable;
  }
  return e;
}

bool IsRetryable(const Error& error) {
  return error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kInternal ||
         error.code == ErrorCode::kQueueFull;
}

Result<std::optional<LeasedJob>> ParseLeaseResponse(HttpResponse res) {
  if (res.status == 204) return std::optional<LeasedJob>();
  if (res.status != 200) return LeaseErrorFromResponse(res, /*names_lease=*/false);
  LeasedJob job;
  job.lease = Trim(res.Header("Acceptd-Lease"));
  if (job.lease.empty()) return Malformed(res, "no Acceptd-Lease header");
  job.job_id = Trim(res.Header("Acceptd-Job-Id"));
  if (!IsLowerHex32(job.job_id)) {
    return Malformed(res, "Acceptd-Job-Id is not a job id: '" + job.job_id + "'");
  }
  if (std::string a = res.Header("Acceptd-Attempt"); !a.empty()) {
    auto n = ParsePositiveInt(a);
    if (!n) return Malformed(res, "Acceptd-Attempt is not a positive integer: '" + a + "'");
    job.attempt = *n;
  }
  if (std::string m = res.Header("Acceptd-Max-Attempts"); !m.empty()) {
    job.max_attempts = ParsePositiveInt(m).value_or(0);
  }
  if (std::string l = res.Header("Acceptd-Lease-Seconds"); !l.empty()) {
    auto d = ParseSecondsHeader(l);
    if (!d) return Malformed(res, "Acceptd-Lease-Seconds is not a number of seconds: '" + l + "'");
    job.lease_duration = *d;
  }
  if (std::string t = res.Header("Acceptd-Timeout-Seconds"); !t.empty()) {
    job.timeout = ParseSecondsHeader(t);
    if (!job.timeout) {
      return Malformed(res, "Acceptd-Timeout-Seconds is not a number of seconds: '" + t + "'");
    }
  }
  std::string location = Trim(res.Header("Location"));
  if (location.empty()) {
    // The contract names the lease at /v1/leases/{id}; the lease answer came
    // from {base}/v1/queues/{q}/leases, so that is {base}/v1/leases/{id}.
    urls::url rel;
    rel.segments().push_back("..");
    rel.segments().push_back("..");
    rel.segments().push_back("leases");
    rel.segments().push_back(job.lease);
    location = std::string(rel.buffer());
  }
  auto url = ResolveUrl(res.url, location);
  if (!url) return Malformed(res, "bad Location '" + location + "'");
  job.lease_url = std::move(*url);
  job.content_type = res.Header("Content-Type");
  job.payload = std::move(res.body);
  return std::optional<LeasedJob>(std::move(job));
}

Result<HeartbeatReply> ParseHeartbeatResponse(const HttpResponse& res) {
  if (res.status != 200) return LeaseErrorFromResponse(res, /*names_lease=*/true);
  HeartbeatReply reply;
  boost::system::error_code ec;
  json::value doc = json::parse(res.body, ec);
  if (ec || !doc.is_object()) return Malformed(res, "the heartbeat answer is not a JSON object");
  const json::object& o = doc.as_object();
  if (const json::value* c = o.if_contains("cancel_requested"); c && c->is_bool()) {
    reply.cancel_requested = c->as_bool();
  }
  if (const json::value* l = o.if_contains("lease_seconds"); l && l->is_number()) {
    boost::system::error_code nec;
    const double s = l->to_number<double>(nec);
    if (!nec && std::isfinite(s) && s >= 0 && s <= kMaxHeaderSeconds) {
      reply.lease_duration = Millis(static_cast<int64_t>(std::llround(s * 1000)));
    }
  }
  return reply;
}

Result<LeaseOutcome> ParseLeaseOutcome(const HttpResponse& res) {
  if (res.status != 200) return LeaseErrorFromResponse(res, /*names_lease=*/true);
  LeaseOutcome out;
  boost::system::error_code ec;
  json::value doc = json::parse(res.body, ec);
  if (!ec) out.document = std::move(doc);
  if (const json::object* o = out.document.if_object()) {
    if (const json::value* s = o->if_contains("state"); s && s->is_string()) {
      out.state = std::string(s->as_string());
    }
  }
  return out;
}

std::string HeartbeatBody(const Progress& progress) {
  json::object o;
  o["percent"] = std::clamp(progress.percent, 0, 100);
  o["message"] = progress.message;
  return json::serialize(o);
}

std::string FailBody(std::string_view detail, bool retryable, std::string_view code,
                     std::optional<Millis> retry_after) {
  json::object o;
  o["detail"] = detail;
  o["retryable"] = retryable;
  // A code the server refuses would make it refuse the whole failure (400).
  const bool slug =
      !code.empty() && code.size() <= 64 && std::all_of(code.begin(), code.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
      });
  if (slug) o["code"] = code;
  if (retry_after)
    o["retry_after"] = static_cast<double>(std::max<int64_t>(retry_after->count(), 0)) / 1000.0;
  return json::serialize(o);
}

// ---------------------------------------------------------------------------
// LeaseClient

LeaseClient::LeaseClient(ClientOptions options) : client_(std::move(options)) {}

Result<std::optional<LeasedJob>> LeaseClient::Lease(std::string_view queue,
                                                    const LeaseOptions& options) {
  if (queue.empty()) return Error::InvalidArgument("no queue given");
  auto base = UnderBase(client_.options().base_url, {"v1", "queues", queue, "leases"});
  if (!base) return std::move(base).error();
  urls::url u(urls::parse_uri(*base).value());
  const Millis wait = std::clamp(options.wait, Millis(0), kMaxLeaseWait);
  u.params().set("wait", FormatSeconds(wait));
  if (options.lease) u.params().set("lease", FormatSeconds(*options.lease));
  auto res = client_.Send("POST", u.buffer(), {}, {}, wait);
  if (!res) return std::move(res).error();
  return ParseLeaseResponse(std::move(*res));
}

Result<std::string> LeaseClient::LeaseUrl(std::string_view lease, std::string_view action) const {
  if (lease.empty()) return Error::InvalidArgument("no lease given");
  std::string base_text;
  if (lease.find('/') == std::string_view::npos && lease.find(':') == std::string_view::npos) {
    // A bare lease id: {base}/v1/leases/{id}.
    auto r = UnderBase(client_.options().base_url, {"v1", "leases", lease});
    if (!r) return std::move(r).error();
    base_text = std::move(*r);
  } else {
    auto r = ResolveUrl(client_.options().base_url, lease);
    if (!r) return std::move(r).error();
    base_text = std::move(*r);
  }
  urls::url u(urls::parse_uri(base_text).value());
  u.remove_query();
  auto segs = u.segments();
  if (!segs.empty() && segs.back().empty()) segs.pop_back();
  segs.push_back(action);
  return std::string(u.buffer());
}

Result<HeartbeatReply> LeaseClient::Heartbeat(std::string_view lease,
                                              std::optional<Millis> lease_duration,
                                              const std::optional<Progress>& progress) {
  auto url = LeaseUrl(lease, "heartbeat");
  if (!url) return std::move(url).error();
  std::string target = std::move(*url);
  if (lease_duration) {
    auto t = WithQueryParam(target, "lease", FormatSeconds(*lease_duration));
    if (!t) return std::move(t).error();
    target = std::move(*t);
  }
  Headers headers;
  std::string body;
  if (progress) {
    body = HeartbeatBody(*progress);
    headers.emplace_back("Content-Type", "application/json");
  }
  auto res = client_.Send("POST", target, std::move(body), headers);
  if (!res) return std::move(res).error();
  return ParseHeartbeatResponse(*res);
}

Result<LeaseOutcome> LeaseClient::Finish(std::string_view lease, std::string_view action,
                                         std::string body, std::string_view content_type) {
  auto url = LeaseUrl(lease, action);
  if (!url) return std::move(url).error();
  Headers headers;
  if (!content_type.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  auto res = client_.Send("POST", *url, std::move(body), headers);
  if (!res) return std::move(res).error();
  return ParseLeaseOutcome(*res);
}

Result<LeaseOutcome> LeaseClient::Complete(std::string_view lease, std::string result,
                                           std::string_view content_type) {
  return Finish(lease, "complete", std::move(result), content_type);
}

Result<LeaseOutcome> LeaseClient::Fail(std::string_view lease, std::string_view detail,
                                       bool retryable, std::string_view code,
                                       std::optional<Millis> retry_after) {
  return Finish(lease, "fail", FailBody(detail, retryable, code, retry_after),
                "application/problem+json");
}

Result<LeaseOutcome> LeaseClient::Release(std::string_view lease) {
  return Finish(lease, "release", {}, {});
}

}  // namespace acceptd::client
