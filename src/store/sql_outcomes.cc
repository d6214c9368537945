#include "store/sql_outcomes.h"

#include <fmt/format.h>

#include <utility>

namespace acceptd::sql {

Error TerminalConflict(JobState state) {
  return Error::Conflict(fmt::format("the job is already {}", ToString(state)));
}

Error NotRetryable(JobState state) {
  return Error::Conflict(
      fmt::format("the job is {}: only a failed or canceled job can be retried", ToString(state)));
}

Error StaleLease(const Job& current, int64_t token) {
  return Error::StaleLease(fmt::format("job {} is {} with lease token {}, not {}",
                                       current.id.ToHex(), ToString(current.state),
                                       current.lease_token, token));
}

CancelOutcome DeletedRowOutcome(Job row, UnixMillis now) {
  if (row.state != JobState::kQueued) return CancelOutcome{CancelOutcome::Kind::kDeleted, row};
  row.state = JobState::kCanceled;
  row.cancel_requested = true;
  row.finished_at = now;
  row.updated_at = now;
  row.expires_at = now + row.retention;
  return CancelOutcome{CancelOutcome::Kind::kCanceled, std::move(row)};
}

}  // namespace acceptd::sql
