#include "api/job_document.h"

#include <charconv>

namespace acceptd::api {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// A JSON string literal (RFC 8259 escaping; bytes >= 0x80 pass through).
void AppendString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
      }
    } else {
      out += c;
    }
  }
  out += '"';
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// `"key":` — keys are literals that need no escaping.
void Key(std::string& out, std::string_view key) {
  out += '"';
  out += key;
  out += "\":";
}

void AppendTime(std::string& out, const std::optional<UnixMillis>& t) {
  if (t) {
    out += '"';
    out += FormatRfc3339(*t);
    out += '"';
  } else {
    out += "null";
  }
}

}  // namespace

std::string StatusUrl(const JobId& id) { return "/v1/jobs/" + id.ToHex(); }
std::string ResultUrl(const JobId& id) { return "/v1/jobs/" + id.ToHex() + "/result"; }

void AppendJobDocument(const Job& job, std::string& out) {
  const std::string id = job.id.ToHex();
  out += "{\"id\":\"";
  out += id;
  out += "\",";
  Key(out, "queue");
  AppendString(out, job.queue);
  out += ",\"state\":\"";
  out += ToString(job.state);
  out += "\",";
  Key(out, "created_at");
  AppendTime(out, job.created_at);
  out += ',';
  Key(out, "updated_at");
  AppendTime(out, job.updated_at);
  out += ',';
  Key(out, "started_at");
  AppendTime(out, job.started_at);
  out += ',';
  Key(out, "finished_at");
  AppendTime(out, job.finished_at);
  out += ',';
  Key(out, "attempts");
  AppendInt(out, job.attempts);
  out += ',';
  Key(out, "max_attempts");
  AppendInt(out, job.max_attempts);
  out += ',';
  Key(out, "priority");
  AppendInt(out, job.priority);
  out += ',';
  Key(out, "progress");
  if (job.progress) {
    out += "{\"percent\":";
    AppendInt(out, job.progress->percent);
    out += ",\"message\":";
    AppendString(out, job.progress->message);
    out += '}';
  } else {
    out += "null";
  }
  out += ",\"status_url\":\"/v1/jobs/";
  out += id;
  out += '"';
  if (job.state == JobState::kSucceeded) {
    out += ",\"result_url\":\"/v1/jobs/";
    out += id;
    out += "/result\"";
  }
  if (job.state == JobState::kFailed && job.error) {
    out += ",\"error\":{\"type\":";
    AppendString(out, job.error->type);
    out += ",\"message\":";
    AppendString(out, job.error->message);
    out += '}';
  }
  out += ",\"cancel_requested\":";
  out += job.cancel_requested ? "true" : "false";
  if (job.state == JobState::kQueued && job.run_at > job.updated_at) {
    out += ",\"run_at\":";
    AppendTime(out, job.run_at);
  }
  out += ",\"expires_at\":";
  AppendTime(out, IsTerminal(job.state) ? job.expires_at : std::nullopt);
  if (job.callback) {
    const CallbackState& c = *job.callback;
    out += ",\"callback\":{\"url\":";
    AppendString(out, c.url);
    out += ",\"attempts\":";
    AppendInt(out, c.attempts);
    out += ",\"last_status\":";
    if (c.last_status) {
      AppendInt(out, *c.last_status);
    } else {
      out += "null";
    }
    if (!c.last_error.empty()) {
      out += ",\"last_error\":";
      AppendString(out, c.last_error);
    }
    out += ",\"delivered_at\":";
    AppendTime(out, c.delivered_at);
    out += ",\"next_attempt_at\":";
    AppendTime(out, c.delivered_at ? std::nullopt : c.next_attempt_at);
    out += '}';
  }
  out += '}';
}

std::string JobDocument(const Job& job) {
  std::string out;
  out.reserve(512);
  AppendJobDocument(job, out);
  return out;
}

}  // namespace acceptd::api
