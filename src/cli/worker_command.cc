#include "cli/worker_command.h"

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include "workers/registry.h"

namespace acceptd::cli {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 2;
constexpr double kMaxWaitSeconds = 60;
constexpr double kMaxLeaseSeconds = 3600;

Result<Millis> ToMillis(std::string_view flag, double seconds, double min, double max) {
  if (!std::isfinite(seconds) || seconds < min || seconds > max) {
    return Error::InvalidArgument(
        fmt::format("{}: {} is out of range ({}..{} seconds)", flag, seconds, min, max));
  }
  return Millis(static_cast<int64_t>(std::llround(seconds * 1000)));
}

}  // namespace

Result<QueueConfig> WorkerQueueConfig(const WorkerFlags& f) {
  QueueConfig q;
  q.name = f.queue;
  q.handler = "exec";
  ExecConfig& e = q.exec;
  if (f.command.empty() || f.command.front().empty()) {
    return Error::InvalidArgument("no command given: acceptd worker ... -- COMMAND ARGS...");
  }
  e.command = f.command;
  if (f.result_content_type) {
    if (f.result_content_type->empty()) {
      return Error::InvalidArgument("--result-content-type must not be empty");
    }
    e.result_content_type = *f.result_content_type;
  }
  for (const std::string& kv : f.env) {
    const size_t eq = kv.find('=');
    const std::string name = kv.substr(0, eq);
    if (eq == std::string::npos || name.empty() || name.rfind("ACCEPTD_", 0) == 0) {
      return Error::InvalidArgument(
          fmt::format("--env '{}': expected NAME=VALUE, NAME not empty and not ACCEPTD_* (set "
                      "by acceptd)",
                      kv));
    }
    e.env[name] = kv.substr(eq + 1);
  }
  for (const std::string& name : f.inherit_env) {
    if (name.empty() || name.find('=') != std::string::npos) {
      return Error::InvalidArgument(
          fmt::format("--inherit-env '{}': expected a variable name", name));
    }
    if (std::find(e.inherit_env.begin(), e.inherit_env.end(), name) == e.inherit_env.end()) {
      e.inherit_env.push_back(name);
    }
  }
  if (f.kill_grace_seconds) {
    auto ms = ToMillis("--kill-grace", *f.kill_grace_seconds, 0, 3600);
    if (!ms) return std::move(ms).error();
    e.kill_grace = ms->count();
  }
  if (f.max_result_bytes) {
    if (*f.max_result_bytes < 1 || *f.max_result_bytes > (int64_t{1} << 32)) {
      return Error::InvalidArgument("--max-result-bytes: must be 1..4294967296");
    }
    e.max_result_bytes = static_cast<size_t>(*f.max_result_bytes);
  }
  for (int code : f.retry_exit_codes) {
    if (code < 1 || code > 255) {
      return Error::InvalidArgument(fmt::format("--retry-exit-code {}: must be 1..255", code));
    }
    e.retry_exit_codes.push_back(code);
  }
  e.retry_on_signal = !f.no_retry_on_signal;
  e.work_dir = f.work_dir;  // empty: the exec handler's default root
  return q;
}

Result<RemoteWorkerOptions> WorkerOptions(const WorkerFlags& f) {
  RemoteWorkerOptions o;
  if (auto probe = client::ResolveUrl(f.server, "/"); !probe) {
    return Error::InvalidArgument("--server: " + probe.error().detail);
  }
  if (f.queue.empty()) return Error::InvalidArgument("--queue is required");
  if (f.concurrency < 1 || f.concurrency > 4096) {
    return Error::InvalidArgument("--concurrency: must be 1..4096");
  }
  o.client.base_url = f.server;
  o.client.ca_file = f.cacert;
  o.client.insecure_skip_verify = f.insecure;
  o.client.api_key = f.api_key;
  o.client.user_agent = "acceptd-worker/0.1";
  o.queue = f.queue;
  o.concurrency = f.concurrency;
  auto wait = ToMillis("--wait", f.wait_seconds, 0, kMaxWaitSeconds);
  if (!wait) return std::move(wait).error();
  o.lease.wait = *wait;
  if (f.lease_seconds) {
    auto lease = ToMillis("--lease", *f.lease_seconds, 1, kMaxLeaseSeconds);
    if (!lease) return std::move(lease).error();
    o.lease.lease = *lease;
  }
  auto grace = ToMillis("--shutdown-grace", f.shutdown_grace_seconds, 0, 24 * 3600);
  if (!grace) return std::move(grace).error();
  o.shutdown_grace = *grace;
  return o;
}

WorkerCommand::WorkerCommand(CLI::App& app) : flags_(std::make_unique<WorkerFlags>()) {
  WorkerFlags& f = *flags_;
  cmd_ = app.add_subcommand(
      "worker",
      "Lease jobs of an external queue from a server and run COMMAND for each, as handler = "
      "\"exec\" would: acceptd worker --server URL --queue Q -- COMMAND ARGS...");
  cmd_->add_option("--server", f.server,
                   "Server URL, http[s]://HOST[:PORT][/PREFIX] (env ACCEPTD_SERVER; default " +
                       std::string(client::kDefaultServer) + ")")
      ->envname("ACCEPTD_SERVER");
  cmd_->add_option("--cacert", f.cacert,
                   "PEM file of CA certificates to trust for https, in addition to the system "
                   "trust store (env ACCEPTD_CACERT)")
      ->envname("ACCEPTD_CACERT")
      ->check(CLI::ExistingFile);
  cmd_->add_flag("--insecure", f.insecure,
                 "Do not verify the https server's certificate (for testing only)");
  cmd_->add_option("--api-key", f.api_key,
                   "API key with the worker scope (env ACCEPTD_API_KEY; prefer the variable: a "
                   "flag shows in the process list)")
      ->envname("ACCEPTD_API_KEY");
  cmd_->add_option("--queue,-q", f.queue, "The external queue to lease jobs from")->required();
  cmd_->add_option("--concurrency,-c", f.concurrency, "Jobs run at once (default 1)");
  cmd_->add_option("--lease", f.lease_seconds,
                   "Lease duration asked for, in seconds (1..3600; default the queue's)");
  cmd_->add_option("--wait", f.wait_seconds,
                   "Seconds each lease request waits for a job (0..60, default 30)");
  cmd_->add_option("--shutdown-grace", f.shutdown_grace_seconds,
                   "On SIGTERM/SIGINT, seconds running jobs may take to finish before they are "
                   "cancelled and released (default 30)");
  cmd_->add_option("--kill-grace", f.kill_grace_seconds,
                   "Seconds between SIGTERM and SIGKILL to the command's process group on "
                   "cancel or timeout (default 5)");
  cmd_->add_option("--max-result-bytes", f.max_result_bytes,
                   "Largest result (stdout) taken; beyond it the attempt fails (default 8 MiB)");
  cmd_->add_option("--result-content-type", f.result_content_type,
                   "Content-Type of the results (default application/octet-stream)");
  cmd_->add_option("--retry-exit-code", f.retry_exit_codes,
                   "An exit code that asks for another attempt, besides 75 (repeatable)")
      ->allow_extra_args(false);
  cmd_->add_flag("--no-retry-on-signal", f.no_retry_on_signal,
                 "A command killed by a signal fails for good (default: retryable)");
  cmd_->add_option("--env", f.env, "NAME=VALUE set in the command's environment (repeatable)")
      ->allow_extra_args(false);
  cmd_->add_option("--inherit-env", f.inherit_env,
                   "A variable copied from this process's environment, besides PATH (repeatable)")
      ->allow_extra_args(false);
  cmd_->add_option(
      "--work-dir", f.work_dir,
      "Directory (of this user, mode 0700) under which each attempt gets a fresh working "
      "directory (default $TMPDIR/acceptd-exec-UID, or /tmp/...)");
  cmd_->add_option("command", f.command, "The command and its arguments, after --")->required();
}

WorkerCommand::~WorkerCommand() = default;

std::optional<int> WorkerCommand::Run() {
  if (!cmd_->parsed()) return std::nullopt;
  auto fail = [](std::string_view line) {
    std::cerr << "acceptd: " << line << "\n";
    return kExitError;
  };
  auto queue = WorkerQueueConfig(*flags_);
  if (!queue) return fail(queue.error().detail);
  auto options = WorkerOptions(*flags_);
  if (!options) return fail(options.error().detail);
  auto handler = MakeHandler(*queue);
  if (!handler) return fail(handler.error().detail);
  if (!*handler) return fail("the exec handler is not available in this build");

  // Signals are taken by a signal_set on this thread (not blocked: the
  // commands the handler starts must get a default signal mask).
  boost::asio::io_context signals_ctx;
  boost::asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
  RemoteWorker worker(std::move(*handler), std::move(*options));
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;  // cancelled: the worker ended by itself
    std::cerr << FormatRfc3339(SystemClock::Instance().Now()) << " acceptd worker: received "
              << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": stopping\n"
              << std::flush;
    worker.Stop();
    signals.async_wait(on_signal);  // a second signal ends the grace
  };
  signals.async_wait(on_signal);
  Result<void> result;
  std::thread runner([&] {
    result = worker.Run();
    boost::asio::post(signals_ctx, [&] {
      boost::system::error_code ignored;
      signals.cancel(ignored);
    });
  });
  signals_ctx.run();
  runner.join();
  if (!result) return fail(result.error().detail);
  const RemoteWorkerStats st = worker.stats();
  std::cerr << FormatRfc3339(SystemClock::Instance().Now())
            << fmt::format(
                   " acceptd worker: stopped (leased {}, completed {}, failed {}, "
                   "released {}, dropped {})\n",
                   st.leased, st.completed, st.failed, st.released, st.dropped)
            << std::flush;
  return kExitOk;
}

}  // namespace acceptd::cli
