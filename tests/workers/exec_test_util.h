// Helpers for the exec tests: temp dirs, /bin/sh scripts, a JobContext, and
// checks that a process is gone (dead: no /proc entry, or a zombie).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/handler.h"
#include "core/job.h"

namespace acceptd::testing {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/acceptd-exec-test-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // An executable /bin/sh script; returns its path.
  std::string Script(const std::string& name, const std::string& body) const {
    std::string p = File(name);
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    ::chmod(p.c_str(), 0755);
    return p;
  }

 private:
  std::string path_;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `pred` every few ms until true or `timeout` passes.
template <typename F>
bool Eventually(F pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// The state letter of /proc/<pid>/stat, or nullopt if there is no such process.
inline std::optional<char> ProcState(pid_t pid) {
  std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos || close + 2 >= stat.size()) return std::nullopt;
  return stat[close + 2];
}

// True once `pid` no longer runs (gone, or a zombie waiting for a parent
// that is not us to reap it), waiting up to `timeout` for a SIGKILL to land.
inline bool IsGone(pid_t pid, std::chrono::milliseconds timeout = 10s) {
  return Eventually(
      [pid] {
        auto s = ProcState(pid);
        return !s || *s == 'Z' || *s == 'X';
      },
      timeout);
}

// The pid a test script wrote into `path`, waiting for it to appear.
inline pid_t ReadPidFile(const std::string& path) {
  pid_t pid = 0;
  Eventually([&] {
    std::string text = ReadAll(path);
    if (text.empty() || text.back() != '\n') return false;
    pid = std::atoi(text.c_str());
    return true;
  });
  return pid;
}

// posix_spawn in a new process group with exactly `env`; the caller reaps.
inline pid_t SpawnGroup(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<char*> a, e;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  for (const auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
  e.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0].c_str(), nullptr, &attr, a.data(), e.data()) != 0) pid = -1;
  posix_spawnattr_destroy(&attr);
  return pid;
}

// waitpid with a deadline: the raw status, or nullopt while it still runs
// (or if it is not a child to wait for any more).
inline std::optional<int> WaitChild(pid_t pid, std::chrono::milliseconds timeout) {
  std::optional<int> result;
  Eventually(
      [&] {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) result = status;
        return result.has_value() || r < 0;
      },
      timeout);
  return result;
}

class FakeJobContext final : public JobContext {
 public:
  explicit FakeJobContext(int attempt = 1) : id_(JobId::Random()), attempt_(attempt) {}
  const JobId& job_id() const override { return id_; }
  int attempt() const override { return attempt_; }
  bool cancelled() const override { return cancelled_.load(); }
  bool WaitFor(std::chrono::milliseconds d) override {
    std::this_thread::sleep_for(d);
    return !cancelled();
  }
  void ReportProgress(int percent, std::string message) override {
    std::lock_guard lock(mu_);
    progress_.push_back(Progress{percent, std::move(message)});
    if (cancel_on_progress_) cancelled_ = true;
  }
  void Cancel() { cancelled_ = true; }
  // The first progress report cancels (a script says "I am ready" on fd 3).
  void CancelOnProgress() { cancel_on_progress_ = true; }
  std::vector<Progress> progress() {
    std::lock_guard lock(mu_);
    return progress_;
  }

 private:
  JobId id_;
  int attempt_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> cancel_on_progress_{false};
  std::mutex mu_;
  std::vector<Progress> progress_;
};

}  // namespace acceptd::testing
