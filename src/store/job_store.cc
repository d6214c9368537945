#include "store/job_store.h"

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace acceptd {

Result<std::vector<Result<Job>>> WriteTx::InsertMany(const std::vector<NewJob>& jobs) {
  std::vector<Result<Job>> out;
  out.reserve(jobs.size());
  for (const NewJob& job : jobs) {
    Result<Job> r = Insert(job);
    if (!r &&
        (r.error().code == ErrorCode::kInternal || r.error().code == ErrorCode::kUnavailable)) {
      return std::move(r).error();
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<CommitToken> WriteTx::CommitUnsynced() {
  if (auto st = Commit(); !st) return std::move(st).error();
  return CommitToken{0};
}

Error JobExpired() { return Error::Gone("the job expired and was removed after its retention"); }

std::vector<Result<Job>> JobStore::GetMany(const std::vector<JobId>& ids) {
  std::vector<Result<Job>> jobs;
  jobs.reserve(ids.size());
  for (const JobId& id : ids) jobs.push_back(Get(id));
  return jobs;
}

AttemptOutcome AttemptOutcome::Succeeded(JobId id, int64_t token, UnixMillis now, std::string body,
                                         std::string content_type) {
  AttemptOutcome o;
  o.id = id;
  o.lease_token = token;
  o.kind = Kind::kSucceeded;
  o.now = now;
  o.result = std::move(body);
  o.result_type = std::move(content_type);
  return o;
}

AttemptOutcome AttemptOutcome::Failed(JobId id, int64_t token, UnixMillis now, JobError error) {
  AttemptOutcome o;
  o.id = id;
  o.lease_token = token;
  o.kind = Kind::kFailed;
  o.now = now;
  o.error = std::move(error);
  return o;
}

AttemptOutcome AttemptOutcome::Retry(JobId id, int64_t token, UnixMillis now, UnixMillis retry_at,
                                     JobError error) {
  AttemptOutcome o;
  o.id = id;
  o.lease_token = token;
  o.kind = Kind::kRetry;
  o.now = now;
  o.retry_at = retry_at;
  o.error = std::move(error);
  return o;
}

AttemptOutcome AttemptOutcome::Canceled(JobId id, int64_t token, UnixMillis now) {
  AttemptOutcome o;
  o.id = id;
  o.lease_token = token;
  o.kind = Kind::kCanceled;
  o.now = now;
  return o;
}

CallbackAttempt CallbackAttempt::Delivered(JobId id, UnixMillis lease, UnixMillis now,
                                           int http_status) {
  CallbackAttempt a;
  a.id = id;
  a.lease = lease;
  a.now = now;
  a.http_status = http_status;
  a.delivered = true;
  return a;
}

CallbackAttempt CallbackAttempt::Retry(JobId id, UnixMillis lease, UnixMillis now,
                                       std::optional<int> http_status, std::string error,
                                       UnixMillis next_attempt) {
  CallbackAttempt a;
  a.id = id;
  a.lease = lease;
  a.now = now;
  a.http_status = http_status;
  a.error = std::move(error);
  a.next_attempt = next_attempt;
  return a;
}

CallbackAttempt CallbackAttempt::GaveUp(JobId id, UnixMillis lease, UnixMillis now,
                                        std::optional<int> http_status, std::string error) {
  CallbackAttempt a;
  a.id = id;
  a.lease = lease;
  a.now = now;
  a.http_status = http_status;
  a.error = std::move(error);
  return a;
}

Result<std::unique_ptr<JobStore>> OpenStore(const std::string& url, const StoreOptions& options) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    // The SQLite store has nothing to configure.
    auto store = SqliteStore::Open(url.substr(kSqlite.size()));
    if (!store) return std::move(store).error();
    return std::unique_ptr<JobStore>(std::move(*store));
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    auto store = PostgresStore::Open(url, options);
    if (!store) return std::move(store).error();
    return std::unique_ptr<JobStore>(std::move(*store));
  }
  // Never echo the URL: it may carry a password.
  return Error::InvalidArgument("unsupported store URL (expected sqlite:PATH or postgres://...)");
}

Result<int> MigrateStore(const std::string& url) {
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    return PostgresStore::Migrate(url);
  }
  if (url.starts_with("sqlite:")) {
    // SQLite migrates on every open.
    auto store = OpenStore(url);
    if (!store) return std::move(store).error();
    return SqliteStore::kSchemaVersion;
  }
  return Error::InvalidArgument("unsupported store URL (expected sqlite:PATH or postgres://...)");
}

std::string RedactStoreUrl(const std::string& url) {
  std::string out = url;
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = std::min(out.find_first_of("/?", start), out.size());
    const size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    pos += 9;
    const size_t end = std::min(out.find_first_of("& ", pos), out.size());
    out.replace(pos, end - pos, "***");
  }
  return out;
}

}  // namespace acceptd
