// What the SQL stores (SQLite and PostgreSQL) make of the rows their
// statements return, where both backends decide alike: one place, so the two
// cannot drift apart in what a client is told.
#pragma once

#include <cstdint>

#include "core/error.h"
#include "core/job.h"
#include "store/job_store.h"

namespace acceptd::sql {

// Cancel of a job that is already terminal.
Error TerminalConflict(JobState state);
// RetryJob of a job that is not failed or canceled.
Error NotRetryable(JobState state);

// FinishAttempt whose fenced update matched no row: `current` is the job as
// it is now, `token` the lease token the caller held.
Error StaleLease(const Job& current, int64_t token);

// Delete removed `row` (queued or terminal) at `now`: a terminal job is
// reported deleted as it was; a queued one counts as canceled, and the job is
// reported as the cancel would have left it.
CancelOutcome DeletedRowOutcome(Job row, UnixMillis now);

}  // namespace acceptd::sql
