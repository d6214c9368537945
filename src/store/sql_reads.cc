#include "store/sql_reads.h"

#include <algorithm>
#include <charconv>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace acceptd {

std::string_view ToString(AttemptEnd end) {
  switch (end) {
    case AttemptEnd::kRunning:
      return "running";
    case AttemptEnd::kSucceeded:
      return "succeeded";
    case AttemptEnd::kFailed:
      return "failed";
    case AttemptEnd::kTimeout:
      return "timeout";
    case AttemptEnd::kLeaseExpired:
      return "lease_expired";
    case AttemptEnd::kCanceled:
      return "canceled";
    case AttemptEnd::kReleased:
      return "released";
  }
  return "failed";
}

namespace sql {
namespace {

static_assert(ACCEPTD_SQL_ATTEMPT_LOG_CAP[0] == '2' && ACCEPTD_SQL_ATTEMPT_LOG_CAP[1] == '0' &&
                  ACCEPTD_SQL_ATTEMPT_LOG_CAP[2] == 0 && kAttemptHistoryCap == 20,
              "ACCEPTD_SQL_ATTEMPT_LOG_CAP must spell kAttemptHistoryCap");

std::optional<AttemptEnd> ParseEnd(std::string_view s) {
  for (AttemptEnd e : {AttemptEnd::kSucceeded, AttemptEnd::kFailed, AttemptEnd::kTimeout,
                       AttemptEnd::kLeaseExpired, AttemptEnd::kCanceled, AttemptEnd::kReleased}) {
    if (ToString(e) == s) return e;
  }
  return std::nullopt;
}

std::optional<int64_t> OptInt(const boost::json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<int64_t>(v.as_uint64());
  if (v.is_double()) return static_cast<int64_t>(v.as_double());
  return std::nullopt;
}

std::string Str(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return {};
}

// One line of the log; nullopt if it is not one the stores write.
std::optional<AttemptRecord> ParseLine(std::string_view line) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_array() || v.as_array().size() < 7) return std::nullopt;
  const auto& a = v.as_array();
  auto end = a[3].is_string() ? ParseEnd(a[3].as_string()) : std::nullopt;
  if (!end) return std::nullopt;
  AttemptRecord r;
  r.attempt = static_cast<int>(OptInt(a[0]).value_or(0));
  r.started_at = OptInt(a[1]);
  r.ended_at = OptInt(a[2]);
  r.end = *end;
  r.worker = Str(a[4]);
  if (a[5].is_string()) r.error = JobError{Str(a[5]), Str(a[6])};
  return r;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::array<uint8_t, 16> IdPrefixFilled(std::string_view prefix, int fill) {
  std::array<uint8_t, 16> out{};
  for (size_t i = 0; i < 32; ++i) {
    const int d = i < prefix.size() ? HexDigit(prefix[i]) : fill;
    out[i / 2] = static_cast<uint8_t>(out[i / 2] | ((i % 2 == 0) ? d << 4 : d));
  }
  return out;
}

Error BadParam(std::string_view name, std::string_view why) {
  const std::string msg = std::string(name) + ": " + std::string(why);
  return Error{ErrorCode::kInvalidArgument, msg, msg};
}

}  // namespace

Status CheckListParams(const ListParams& p) {
  if (p.id_prefix) {
    if (p.id_prefix->empty() || p.id_prefix->size() > 32 ||
        !std::all_of(p.id_prefix->begin(), p.id_prefix->end(),
                     [](char c) { return HexDigit(c) >= 0; })) {
      return BadParam("id", "must be 1 to 32 lowercase hex digits");
    }
  }
  if (p.text && p.text->empty()) return BadParam("q", "must not be empty");
  if (p.field) {
    if (p.field->path.empty()) return BadParam("field", "must name a member");
    for (const std::string& seg : p.field->path) {
      if (seg.empty() || seg.find('"') != std::string::npos) {
        return BadParam("field", "segments must be non-empty and must not contain '\"'");
      }
    }
  }
  return {};
}

std::array<uint8_t, 16> IdPrefixLow(std::string_view prefix) { return IdPrefixFilled(prefix, 0); }
std::array<uint8_t, 16> IdPrefixHigh(std::string_view prefix) { return IdPrefixFilled(prefix, 15); }

std::string SqliteJsonPath(const FieldMatch& field) {
  std::string path = "$";
  for (const std::string& seg : field.path) {
    path += ".\"";
    path += seg;
    path += '"';
  }
  return path;
}

AttemptHistory BuildAttemptHistory(Job job, std::string_view log, int64_t total) {
  AttemptHistory h;
  while (!log.empty()) {
    const size_t nl = log.find('\n');
    const std::string_view line = log.substr(0, nl);
    log = nl == std::string_view::npos ? std::string_view() : log.substr(nl + 1);
    if (line.empty()) continue;
    if (auto r = ParseLine(line)) h.attempts.push_back(std::move(*r));
  }
  h.dropped = std::max<int64_t>(0, total - static_cast<int64_t>(h.attempts.size()));
  if (job.state == JobState::kRunning) {
    AttemptRecord r;
    r.attempt = job.attempts;
    r.started_at = job.attempt_started_at;
    r.end = AttemptEnd::kRunning;
    r.worker = job.lease_owner;
    h.attempts.push_back(std::move(r));
  }
  h.job = std::move(job);
  return h;
}

void AddThroughput(std::vector<QueueThroughput>& out, std::string queue, JobState state,
                   int64_t bucket, int64_t count, int buckets) {
  if (bucket < 0 || bucket >= buckets || !IsTerminal(state)) return;
  auto it = std::find_if(out.begin(), out.end(),
                         [&](const QueueThroughput& q) { return q.queue == queue; });
  if (it == out.end()) {
    QueueThroughput q;
    q.queue = std::move(queue);
    q.succeeded.assign(static_cast<size_t>(buckets), 0);
    q.failed.assign(static_cast<size_t>(buckets), 0);
    q.canceled.assign(static_cast<size_t>(buckets), 0);
    out.push_back(std::move(q));
    it = std::prev(out.end());
  }
  std::vector<int64_t>* v = nullptr;
  switch (state) {
    case JobState::kSucceeded:
      v = &it->succeeded;
      break;
    case JobState::kFailed:
      v = &it->failed;
      break;
    case JobState::kCanceled:
      v = &it->canceled;
      break;
    default:
      return;
  }
  if (v) (*v)[static_cast<size_t>(bucket)] += count;
}

}  // namespace sql
}  // namespace acceptd
