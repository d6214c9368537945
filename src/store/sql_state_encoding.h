// How the SQL backends (SQLite, PostgreSQL) store JobState: the only place
// that knows the numbers. SQL text is built from these macros (string
// literals, so that statements stay literals: SqliteDb's cache, PostgreSQL's
// prepared statements), and the conversions below are the only casts between
// a column and a JobState.
//
// The numbers are part of both file formats: never renumber them.
#pragma once

#include <cstdint>
#include <optional>

#include "core/job.h"

#define ACCEPTD_SQL_QUEUED "0"
#define ACCEPTD_SQL_RUNNING "1"
#define ACCEPTD_SQL_SUCCEEDED "2"
#define ACCEPTD_SQL_FAILED "3"
#define ACCEPTD_SQL_CANCELED "4"
// The terminal states, for `state IN ACCEPTD_SQL_TERMINAL`.
#define ACCEPTD_SQL_TERMINAL \
  "(" ACCEPTD_SQL_SUCCEEDED ", " ACCEPTD_SQL_FAILED ", " ACCEPTD_SQL_CANCELED ")"

namespace acceptd::sql {

constexpr int64_t StateColumn(JobState state) { return static_cast<int64_t>(state); }

constexpr std::optional<JobState> StateFromColumn(int64_t v) {
  if (v < 0 || v >= kJobStateCount) return std::nullopt;
  return static_cast<JobState>(v);
}

namespace detail {
constexpr int64_t Digit(const char* s) { return s[0] - '0'; }
}  // namespace detail

static_assert(detail::Digit(ACCEPTD_SQL_QUEUED) == StateColumn(JobState::kQueued));
static_assert(detail::Digit(ACCEPTD_SQL_RUNNING) == StateColumn(JobState::kRunning));
static_assert(detail::Digit(ACCEPTD_SQL_SUCCEEDED) == StateColumn(JobState::kSucceeded));
static_assert(detail::Digit(ACCEPTD_SQL_FAILED) == StateColumn(JobState::kFailed));
static_assert(detail::Digit(ACCEPTD_SQL_CANCELED) == StateColumn(JobState::kCanceled));
// ACCEPTD_SQL_TERMINAL lists exactly the states core calls terminal.
static_assert(!IsTerminal(JobState::kQueued) && !IsTerminal(JobState::kRunning) &&
              IsTerminal(JobState::kSucceeded) && IsTerminal(JobState::kFailed) &&
              IsTerminal(JobState::kCanceled) && kJobStateCount == 5);

}  // namespace acceptd::sql
