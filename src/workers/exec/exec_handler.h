// handler = "exec": each attempt runs the queue's command as a process of its
// own (docs/exec.md has the whole contract for the command's author).
//
//   stdin   the payload bytes            stdout  the result (max_result_bytes)
//   stderr  its last ~2 KiB are the error message of a failed attempt
//   fd 3    progress, JSON lines {"percent": 40, "message": "..."}
//   env     ACCEPTD_JOB_ID, ACCEPTD_ATTEMPT, ACCEPTD_QUEUE, ACCEPTD_CONTENT_TYPE,
//           the queue's `env`, and its `inherit_env` names copied from
//           acceptd's environment as it was when the handler was made; nothing else
//   cwd     a fresh directory per attempt, removed afterwards (work_dirs.h)
//
//   exit 0                          succeeded: stdout, result_content_type
//   exit 75 or in retry_exit_codes  failed, retryable       (type "exit_status")
//   any other exit status           failed, not retried     (type "exit_status")
//   killed by a signal              retryable iff retry_on_signal (type "signal")
//   stdout beyond max_result_bytes  failed, not retried     (type "result_too_large")
//   cannot start (fork, pipes)      failed, retryable       (type "exec_error")
//
// Cancel and timeout (JobContext::cancelled()) terminate the process group:
// SIGTERM, then SIGKILL after kill_grace (process_runner.h).
//
// Thread safety: one instance serves every attempt of its queue at once.
// Used by the server (registry.cc) and by `acceptd worker`, both through
// MakeHandler with a QueueConfig whose handler is "exec".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/handler.h"
#include "engine/queue_config.h"
#include "workers/exec/work_dirs.h"

namespace acceptd {

class ExecHandler final : public Handler {
 public:
  // Resolves command[0] (in acceptd's PATH when it has no '/'; a relative
  // path is made absolute), checks that it is an executable file, opens the
  // work directory (sweeping strays of a previous run). kInvalidArgument with
  // a detail naming the key ("config key 'queues.Q.command': ...") otherwise.
  static Result<std::shared_ptr<ExecHandler>> Create(const QueueConfig& queue);

  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override;

  const std::string& program() const { return program_; }  // the resolved command[0]
  const std::string& owner_dir() const { return dirs_->owner_dir(); }

 private:
  ExecHandler() = default;

  std::string queue_;
  ExecConfig config_;
  std::string program_;
  std::vector<std::string> base_env_;  // env + inherit_env, "NAME=value"
  std::shared_ptr<exec::WorkDirs> dirs_;
};

}  // namespace acceptd
