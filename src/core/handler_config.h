// Settings of the handler kinds that need more than a name: plain values
// read from a queue's table (src/cli/server_config.cc) and handed to that
// kind's factory (src/workers/registry.h), which checks what only the
// running machine can tell (a command in PATH, a URL's host) at start-up.
// The keys and defaults are documented in docs/workers.md (exec: docs/exec.md).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"

namespace acceptd {

inline constexpr size_t kDefaultMaxResultBytes = size_t{8} << 20;
inline constexpr Millis kDefaultKillGrace = 5'000;
inline constexpr int kExitTempFail = 75;  // EX_TEMPFAIL (sysexits.h): "try again later"

// handler = "exec": one process per attempt (see workers/exec/).
struct ExecConfig {
  std::vector<std::string> command;  // argv; argv[0] without '/' is looked up in PATH
  std::string result_content_type = "application/octet-stream";
  std::map<std::string, std::string> env;        // set in the command's environment
  std::vector<std::string> inherit_env{"PATH"};  // copied from acceptd's own environment
  Millis kill_grace = kDefaultKillGrace;         // SIGTERM, then SIGKILL after this
  size_t max_result_bytes = kDefaultMaxResultBytes;
  // Exit codes that ask for another attempt besides 75 (EX_TEMPFAIL, always).
  std::vector<int> retry_exit_codes;
  bool retry_on_signal = true;  // death by a signal (OOM killer, ...) is retryable
  // Where each attempt's fresh working directory is made (an absolute path;
  // layout in workers/exec/work_dirs.h); empty: $TMPDIR (or /tmp) +
  // "/acceptd-exec-<uid>".
  std::string work_dir;
};

// handler = "http": each attempt is one request to a backend (see workers/http/).
struct HttpHandlerConfig {
  std::string url;  // http:// or https://, chosen by the operator (no SSRF guard)
  std::string method = "POST";
  std::map<std::string, std::string> headers;  // added to every request
  size_t max_result_bytes = kDefaultMaxResultBytes;
  bool verify_tls = true;
};

}  // namespace acceptd
