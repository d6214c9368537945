// RunProcess: runs one command to completion as its own process group, the
// piece of handler = "exec" (exec_handler.h) that knows about processes.
//
// The child is started with posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK),
// so the cost does not grow with acceptd's memory) in a new process group
// whose id is its pid, with:
//   fd 0  a pipe fed with `stdin_bytes` (then closed; a command that exits or
//         closes stdin without reading it is fine: EPIPE is ignored)
//   fd 1  a pipe read into ProcessOutcome::out (at most max_stdout_bytes)
//   fd 2  a pipe of which the last stderr_tail_bytes are kept
//   fd 3  a pipe read line by line; each line (at most kMaxProgressLineBytes,
//         longer ones are dropped) goes to on_progress_line
// and no other descriptor, all signals at their default disposition and
// unblocked, exactly `env` as its environment and `cwd` as its directory.
//
// Ending: once `cancelled()` returns true (checked every kCancelPollInterval)
// the group gets SIGTERM, then SIGKILL when kill_grace has passed and the
// leader still runs. A stdout beyond max_stdout_bytes gets the group SIGKILL
// at once. When the leader has exited, whatever the reason, the group gets
// SIGKILL *before* the leader is reaped: the unreaped leader keeps its pid,
// hence the group id, from being reused, so the signal cannot reach a
// stranger, and no grandchild that stayed in the group outlives the attempt.
// Every child is reaped before RunProcess returns (no zombies).
//
// Thread safety: RunProcess is reentrant; any number of threads may run
// processes at once. It blocks SIGPIPE in the calling thread while it runs
// (writes to a closed stdin fail with EPIPE instead of killing acceptd).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace acceptd::exec {

inline constexpr size_t kDefaultStderrTailBytes = 2048;
inline constexpr size_t kMaxProgressLineBytes = 4096;
// How often a running process's cancelled() is looked at: the latency of a
// cancel or timeout, against wake-ups per running attempt (40/s).
inline constexpr std::chrono::milliseconds kCancelPollInterval{25};
// After the leader exited and its group was killed, how long to wait for the
// pipes to reach end-of-file: only a process that left the group (setsid)
// can keep them open, and its output is not waited for beyond this.
inline constexpr std::chrono::milliseconds kDrainAfterExit{1000};

struct ProcessSpec {
  std::string program;            // a path; absolute unless meant relative to `cwd`
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value": the whole environment
  std::string cwd;                // an existing directory
  std::string_view stdin_bytes;
  size_t max_stdout_bytes = size_t{8} << 20;
  size_t stderr_tail_bytes = kDefaultStderrTailBytes;
  Millis kill_grace = 5'000;
};

struct ProcessHooks {
  // Polled while the process runs; true: terminate it (see above).
  std::function<bool()> cancelled;
  // Right after the spawn, with the child's pid (= its process group id).
  std::function<void(pid_t)> on_started;
  // One line written to fd 3, without its '\n'.
  std::function<void(std::string_view)> on_progress_line;
};

struct ProcessOutcome {
  bool exited = false;  // exit_status is valid; else term_signal is
  int exit_status = 0;
  int term_signal = 0;
  std::string out;          // stdout (truncated at the cap if stdout_too_large)
  std::string stderr_tail;  // the last stderr_tail_bytes of stderr
  size_t stderr_bytes = 0;  // all of stderr, also what is not kept
  bool stdout_too_large = false;
  bool cancelled = false;     // cancelled() turned true while it ran
  bool sent_sigterm = false;  // because of the cancel
  bool sent_sigkill = false;  // because of the cancel's grace or the cap (not the final sweep)
  pid_t pid = 0;
};

// Runs the process to its end. An error only when it could not be started
// (pipes, posix_spawn: the detail has the errno text); then nothing runs.
Result<ProcessOutcome> RunProcess(const ProcessSpec& spec, const ProcessHooks& hooks);

// "SIGKILL" for 9, "signal 64" for a signal without a name.
std::string SignalName(int sig);

}  // namespace acceptd::exec
