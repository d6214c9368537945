#include "workers/exec/exec_handler.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/utf8.h"
#include "workers/exec/process_runner.h"

namespace acceptd {
namespace {

Error KeyError(const QueueConfig& q, std::string_view key, std::string_view why) {
  return Error::InvalidArgument(fmt::format("config key 'queues.{}.{}': {}", q.name, key, why));
}

// Why `path` cannot be exec'd, or "" if it can.
std::string NotExecutable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (::access(path.c_str(), X_OK) != 0) return "not executable";
  return {};
}

// ": <tail of stderr>" for a failure message, or "" when stderr was empty.
std::string StderrSuffix(const exec::ProcessOutcome& p) {
  std::string_view tail = p.stderr_tail;
  if (tail.size() > exec::kDefaultStderrTailBytes) {
    tail.remove_prefix(tail.size() - exec::kDefaultStderrTailBytes);
  }
  bool cut = p.stderr_bytes > tail.size();
  if (cut) {
    // Do not start inside a multi-byte character.
    while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80) {
      tail.remove_prefix(1);
    }
  }
  while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.back()))) {
    tail.remove_suffix(1);
  }
  while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.front()))) {
    tail.remove_prefix(1);
  }
  if (tail.empty()) return {};
  return fmt::format(": {}{}", cut ? "..." : "", ValidUtf8(tail));
}

// {"percent": 40, "message": "..."}; anything else is ignored.
void ReportProgressLine(std::string_view line, int& last_percent, JobContext& ctx) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return;
  const boost::json::object& o = v.get_object();
  const boost::json::value* percent = o.if_contains("percent");
  const boost::json::value* message = o.if_contains("message");
  if (!percent && !message) return;
  if (percent) {
    if (percent->is_int64()) {
      last_percent = static_cast<int>(std::clamp<int64_t>(percent->get_int64(), 0, 100));
    } else if (percent->is_uint64()) {
      last_percent = 100;  // beyond int64: clamped
    } else if (percent->is_double()) {
      last_percent = static_cast<int>(std::clamp(percent->get_double(), 0.0, 100.0));
    } else {
      return;
    }
  }
  std::string text;
  if (message) {
    if (!message->is_string()) return;
    text = ValidUtf8(message->get_string());
  }
  ctx.ReportProgress(last_percent, std::move(text));
}

}  // namespace

Result<std::shared_ptr<ExecHandler>> ExecHandler::Create(const QueueConfig& queue) {
  const ExecConfig& c = queue.exec;
  if (c.command.empty() || c.command.front().empty()) {
    return KeyError(queue, "command", "is required: the program and its arguments, no shell");
  }
  const std::string& name = c.command.front();
  std::string program;
  if (name.find('/') != std::string::npos) {
    std::error_code ec;
    program = std::filesystem::absolute(name, ec).lexically_normal().string();
    if (ec) program = name;
    if (std::string why = NotExecutable(program); !why.empty()) {
      return KeyError(queue, "command", fmt::format("'{}': {}", name, why));
    }
  } else {
    const char* path_env = std::getenv("PATH");
    std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    std::string_view rest = path;
    while (program.empty()) {
      size_t colon = rest.find(':');
      std::string_view dir = rest.substr(0, colon);
      // An empty entry would mean acceptd's cwd: not a place to find commands.
      if (!dir.empty() && dir.front() == '/') {
        std::string candidate = fmt::format("{}/{}", dir, name);
        if (NotExecutable(candidate).empty()) program = std::move(candidate);
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    if (program.empty()) {
      return KeyError(queue, "command", fmt::format("'{}' not found in PATH", name));
    }
  }

  std::string root = c.work_dir.empty() ? exec::DefaultWorkRoot() : c.work_dir;
  auto dirs = exec::WorkDirs::Open(root);
  if (!dirs) return KeyError(queue, "work_dir", dirs.error().detail);

  std::shared_ptr<ExecHandler> h(new ExecHandler());
  h->queue_ = queue.name;
  h->config_ = c;
  h->program_ = std::move(program);
  h->dirs_ = std::move(*dirs);
  // Captured once: getenv is not safe against a concurrent setenv, and the
  // commands should see the environment acceptd was started with.
  for (const std::string& var : c.inherit_env) {
    // `env` and the four ACCEPTD_* set per attempt win.
    if (c.env.count(var) || var == "ACCEPTD_JOB_ID" || var == "ACCEPTD_ATTEMPT" ||
        var == "ACCEPTD_QUEUE" || var == "ACCEPTD_CONTENT_TYPE") {
      continue;
    }
    if (const char* value = std::getenv(var.c_str())) {
      h->base_env_.push_back(fmt::format("{}={}", var, value));
    }
  }
  for (const auto& [var, value] : c.env) h->base_env_.push_back(fmt::format("{}={}", var, value));
  return h;
}

HandlerOutcome ExecHandler::Run(std::string_view payload, std::string_view content_type,
                                JobContext& ctx) {
  const std::string job_id = ctx.job_id().ToHex();
  auto dir = dirs_->Create(job_id, ctx.attempt());
  if (!dir) {
    spdlog::error("exec: job={} queue={}: {}", job_id, queue_, dir.error().message);
    return HandlerFailure{"cannot create the working directory (see the server log)", true,
                          "exec_error"};
  }
  exec::WorkDirs::Attempt cwd = std::move(*dir);

  exec::ProcessSpec spec;
  spec.program = program_;
  spec.argv = config_.command;
  spec.env = base_env_;
  spec.env.push_back("ACCEPTD_JOB_ID=" + job_id);
  spec.env.push_back(fmt::format("ACCEPTD_ATTEMPT={}", ctx.attempt()));
  spec.env.push_back("ACCEPTD_QUEUE=" + queue_);
  spec.env.push_back(fmt::format("ACCEPTD_CONTENT_TYPE={}", content_type));
  spec.cwd = cwd.dir;
  spec.stdin_bytes = payload;
  spec.max_stdout_bytes = config_.max_result_bytes;
  spec.kill_grace = config_.kill_grace;

  int last_percent = 0;
  exec::ProcessHooks hooks;
  hooks.cancelled = [&ctx] { return ctx.cancelled(); };
  hooks.on_started = [&](pid_t pgid) { dirs_->Spawned(cwd, pgid); };
  hooks.on_progress_line = [&](std::string_view line) {
    ReportProgressLine(line, last_percent, ctx);
  };
  auto ran = exec::RunProcess(spec, hooks);
  dirs_->Remove(cwd);
  if (!ran) {
    // Paths and errno texts are the operator's: logged, not shown to clients.
    spdlog::error("exec: job={} queue={}: {}", job_id, queue_, ran.error().message);
    return HandlerFailure{"cannot start the command (see the server log)", true, "exec_error"};
  }
  exec::ProcessOutcome& p = *ran;

  if (p.stdout_too_large) {
    return HandlerFailure{
        fmt::format("result larger than max_result_bytes ({} bytes)", config_.max_result_bytes),
        false, "result_too_large"};
  }
  if (p.cancelled) {
    // The engine has already recorded the timeout or cancel; this text is
    // only seen if it ever does not.
    return HandlerFailure{fmt::format("canceled: process group terminated with {}",
                                      p.sent_sigkill ? "SIGKILL after kill_grace" : "SIGTERM"),
                          true, "canceled"};
  }
  if (p.exited && p.exit_status == 0) {
    return HandlerSuccess{std::move(p.out), config_.result_content_type};
  }
  if (p.exited) {
    const bool retry = p.exit_status == kExitTempFail ||
                       std::find(config_.retry_exit_codes.begin(), config_.retry_exit_codes.end(),
                                 p.exit_status) != config_.retry_exit_codes.end();
    return HandlerFailure{fmt::format("exited with status {}{}", p.exit_status, StderrSuffix(p)),
                          retry, "exit_status"};
  }
  return HandlerFailure{fmt::format("killed by signal {} ({}){}", p.term_signal,
                                    exec::SignalName(p.term_signal), StderrSuffix(p)),
                        config_.retry_on_signal, "signal"};
}

}  // namespace acceptd
