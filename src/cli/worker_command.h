// `acceptd worker`: a worker process that leases jobs of an external queue
// from a remote acceptd and runs a command for each, exactly as a queue with
// `handler = "exec"` would run it in the server (payload on stdin, result
// from stdout, progress as JSON lines on fd 3, ACCEPTD_* environment, exit
// 75 retryable, the process group killed on cancel and timeout). See
// docs/worker_cli.md.
//
//   acceptd worker --server URL --queue Q [--concurrency N] [--api-key K]
//       [--lease S] [--wait S] [--shutdown-grace S] [--kill-grace S]
//       [--max-result-bytes N] [--result-content-type T]
//       [--retry-exit-code N ...] [--no-retry-on-signal]
//       [--env K=V ...] [--inherit-env NAME ...] [--work-dir DIR]
//       -- COMMAND ARGS...
//
// The lease loops, heartbeats and outcomes are cli::RemoteWorker's
// (cli/remote_worker.h); the command is run by the exec handler
// (MakeHandler of a QueueConfig with handler "exec").
//
// Signals: SIGTERM or SIGINT stops leasing; running jobs may finish within
// --shutdown-grace (default 30 s), then they are cancelled and their leases
// released; a second signal ends the grace at once. Exit codes: 0 after a
// signal; 2 for a usage error, a command the exec handler refuses, or an
// answer from the server that retrying cannot change (unknown queue, a queue
// that is not external, a refused API key). Log lines go to stderr.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/remote_worker.h"
#include "core/error.h"
#include "engine/queue_config.h"

namespace CLI {
class App;
}

namespace acceptd::cli {

// The flags of `acceptd worker`, as parsed (seconds as given).
struct WorkerFlags {
  std::string server = std::string(client::kDefaultServer);
  std::string cacert;
  bool insecure = false;
  std::string api_key;
  std::string queue;
  int concurrency = 1;
  std::optional<double> lease_seconds;
  double wait_seconds = 30;
  double shutdown_grace_seconds = 30;
  std::optional<double> kill_grace_seconds;
  std::optional<int64_t> max_result_bytes;
  std::optional<std::string> result_content_type;
  std::vector<int> retry_exit_codes;
  bool no_retry_on_signal = false;
  std::vector<std::string> env;  // K=V
  std::vector<std::string> inherit_env;
  std::string work_dir;  // empty: the exec handler's default (exec::DefaultWorkRoot())
  std::vector<std::string> command;
};

// The exec queue the command runs in: handler "exec", name --queue, and the
// exec settings from the flags (defaults as for a server queue, see
// core/handler_config.h; --inherit-env adds to PATH). kInvalidArgument
// naming the flag for a malformed value.
Result<QueueConfig> WorkerQueueConfig(const WorkerFlags& flags);

// The RemoteWorker's options from the flags. kInvalidArgument naming the
// flag for a value out of range.
Result<RemoteWorkerOptions> WorkerOptions(const WorkerFlags& flags);

// The subcommand registered on `app`.
class WorkerCommand {
 public:
  explicit WorkerCommand(CLI::App& app);
  ~WorkerCommand();
  WorkerCommand(const WorkerCommand&) = delete;
  WorkerCommand& operator=(const WorkerCommand&) = delete;

  // The exit code if `worker` was parsed, else nullopt. Blocks until the
  // worker stops.
  std::optional<int> Run();

 private:
  CLI::App* cmd_ = nullptr;
  std::unique_ptr<WorkerFlags> flags_;
};

}  // namespace acceptd::cli
