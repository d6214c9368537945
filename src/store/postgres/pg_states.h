// How the PostgreSQL backend stores JobState (a smallint): the same numbers
// as core's enum (core/job.h: "the values are part of the store format").
// SQL text is built from these macros so that statements stay literals.
#pragma once

#include <cstdint>
#include <optional>

#include "core/job.h"

#define ACCEPTD_PG_QUEUED "0"
#define ACCEPTD_PG_RUNNING "1"
#define ACCEPTD_PG_SUCCEEDED "2"
#define ACCEPTD_PG_FAILED "3"
#define ACCEPTD_PG_CANCELED "4"
#define ACCEPTD_PG_TERMINAL \
  "(" ACCEPTD_PG_SUCCEEDED ", " ACCEPTD_PG_FAILED ", " ACCEPTD_PG_CANCELED ")"

namespace acceptd::pg {

constexpr int64_t StateColumn(JobState state) { return static_cast<int64_t>(state); }

constexpr std::optional<JobState> StateFromColumn(int64_t v) {
  if (v < 0 || v >= kJobStateCount) return std::nullopt;
  return static_cast<JobState>(v);
}

namespace detail {
constexpr int64_t Digit(const char* s) { return s[0] - '0'; }
}  // namespace detail

static_assert(detail::Digit(ACCEPTD_PG_QUEUED) == StateColumn(JobState::kQueued));
static_assert(detail::Digit(ACCEPTD_PG_RUNNING) == StateColumn(JobState::kRunning));
static_assert(detail::Digit(ACCEPTD_PG_SUCCEEDED) == StateColumn(JobState::kSucceeded));
static_assert(detail::Digit(ACCEPTD_PG_FAILED) == StateColumn(JobState::kFailed));
static_assert(detail::Digit(ACCEPTD_PG_CANCELED) == StateColumn(JobState::kCanceled));
static_assert(!IsTerminal(JobState::kQueued) && !IsTerminal(JobState::kRunning) &&
              IsTerminal(JobState::kSucceeded) && IsTerminal(JobState::kFailed) &&
              IsTerminal(JobState::kCanceled) && kJobStateCount == 5);

}  // namespace acceptd::pg
