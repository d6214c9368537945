// The job state machine. This table is the only place that decides which
// transitions are legal; docs/state_machine.md mirrors it.
//
//   queued  -> running    a worker claimed it (lease taken)
//   queued  -> canceled   canceled before it ran
//   running -> succeeded  the handler returned a result
//   running -> failed     the handler failed for good (or attempts exhausted)
//   running -> queued     retry with backoff, lease expired, lease released
//   running -> canceled   the handler stopped after a cancel request
//   failed   -> queued    an operator retried it (RetryJob: a new attempt)
//   canceled -> queued    an operator retried it
//
// Terminal states have no other way out, and succeeded none at all.
#include "core/job.h"

namespace acceptd {
namespace {

constexpr bool kLegal[kJobStateCount][kJobStateCount] = {
    //            queued running succeeded failed canceled
    /* queued  */ {false, true, false, false, true},
    /* running */ {true, false, true, true, true},
    /* succeeded*/ {false, false, false, false, false},
    /* failed  */ {true, false, false, false, false},
    /* canceled*/ {true, false, false, false, false},
};

constexpr std::string_view kNames[kJobStateCount] = {"queued", "running", "succeeded", "failed",
                                                     "canceled"};

}  // namespace

std::string_view ToString(JobState state) { return kNames[static_cast<int>(state)]; }

std::optional<JobState> ParseJobState(std::string_view text) {
  for (int i = 0; i < kJobStateCount; ++i) {
    if (kNames[i] == text) return static_cast<JobState>(i);
  }
  return std::nullopt;
}

bool IsLegalTransition(JobState from, JobState to) {
  return kLegal[static_cast<int>(from)][static_cast<int>(to)];
}

}  // namespace acceptd
