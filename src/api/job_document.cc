#include "api/job_document.h"

namespace acceptd::api {
namespace json = boost::json;

namespace {
json::value Time(const std::optional<UnixMillis>& t) {
  if (!t) return nullptr;
  return json::value(FormatRfc3339(*t));
}
}  // namespace

std::string StatusUrl(const JobId& id) { return "/v1/jobs/" + id.ToHex(); }
std::string ResultUrl(const JobId& id) { return "/v1/jobs/" + id.ToHex() + "/result"; }

json::object JobDocument(const Job& job) {
  json::object d;
  d.reserve(18);
  d["id"] = job.id.ToHex();
  d["queue"] = job.queue;
  d["state"] = ToString(job.state);
  d["created_at"] = FormatRfc3339(job.created_at);
  d["updated_at"] = FormatRfc3339(job.updated_at);
  d["started_at"] = Time(job.started_at);
  d["finished_at"] = Time(job.finished_at);
  d["attempts"] = job.attempts;
  d["max_attempts"] = job.max_attempts;
  d["priority"] = job.priority;
  if (job.progress) {
    d["progress"] =
        json::object{{"percent", job.progress->percent}, {"message", job.progress->message}};
  } else {
    d["progress"] = nullptr;
  }
  d["status_url"] = StatusUrl(job.id);
  if (job.state == JobState::kSucceeded) d["result_url"] = ResultUrl(job.id);
  if (job.state == JobState::kFailed && job.error) {
    d["error"] = json::object{{"type", job.error->type}, {"message", job.error->message}};
  }
  d["cancel_requested"] = job.cancel_requested;
  if (job.state == JobState::kQueued && job.run_at > job.updated_at) {
    d["run_at"] = FormatRfc3339(job.run_at);
  }
  d["expires_at"] = Time(IsTerminal(job.state) ? job.expires_at : std::nullopt);
  return d;
}

}  // namespace acceptd::api
