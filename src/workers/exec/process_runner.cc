#include "workers/exec/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

namespace acceptd::exec {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 64 * 1024;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read, write;
};

Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Error::Internal(fmt::format("pipe2: {}", std::strerror(errno)));
  }
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// posix_spawn's attribute objects, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// SIGPIPE blocked in this thread for the scope: a write to the stdin of a
// command that does not read it fails with EPIPE instead of killing acceptd.
// A SIGPIPE raised meanwhile is consumed before the old mask is restored.
class BlockSigpipe {
 public:
  BlockSigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~BlockSigpipe() {
    if (raised_ && !sigismember(&old_, SIGPIPE)) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      timespec zero{0, 0};
      while (sigtimedwait(&set, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  BlockSigpipe(const BlockSigpipe&) = delete;
  BlockSigpipe& operator=(const BlockSigpipe&) = delete;
  void Raised() { raised_ = true; }

 private:
  sigset_t old_;
  bool raised_ = false;
};

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// True once `pid` has exited; leaves it unreaped (a zombie) so that its pid
// and process group id stay taken.
bool HasExited(pid_t pid) {
  siginfo_t info{};
  for (;;) {
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
      return info.si_pid == pid;
    }
    if (errno != EINTR) return true;  // ECHILD: not ours to wait for any more
  }
}

// Reaps `pid` (which has exited) and fills the exit fields.
void Reap(pid_t pid, ProcessOutcome& out) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) != 0 && errno == EINTR) {
  }
  if (info.si_code == CLD_EXITED) {
    out.exited = true;
    out.exit_status = info.si_status;
  } else {
    out.exited = false;
    out.term_signal = info.si_status;
  }
}

// Keeps the last `cap` bytes appended, in amortized O(n).
void AppendTail(std::string& tail, std::string_view data, size_t cap) {
  if (cap == 0) return;
  if (data.size() >= cap) {
    tail.assign(data.substr(data.size() - cap));
    return;
  }
  tail.append(data);
  if (tail.size() > 2 * cap) tail.erase(0, tail.size() - cap);
}

// Splits fd 3 into lines; a line longer than kMaxProgressLineBytes is dropped
// whole (up to its '\n'), so memory stays bounded whatever the command writes.
class LineSplitter {
 public:
  explicit LineSplitter(const std::function<void(std::string_view)>& sink) : sink_(sink) {}
  void Feed(std::string_view data) {
    while (!data.empty()) {
      size_t nl = data.find('\n');
      std::string_view piece = data.substr(0, nl);
      if (!overlong_) {
        if (line_.size() + piece.size() > kMaxProgressLineBytes) {
          overlong_ = true;
          line_.clear();
        } else {
          line_.append(piece);
        }
      }
      if (nl == std::string_view::npos) return;
      if (!overlong_ && sink_) sink_(line_);
      line_.clear();
      overlong_ = false;
      data.remove_prefix(nl + 1);
    }
  }
  void Finish() {
    if (!overlong_ && !line_.empty() && sink_) sink_(line_);
    line_.clear();
  }

 private:
  const std::function<void(std::string_view)>& sink_;
  std::string line_;
  bool overlong_ = false;
};

}  // namespace

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev) return fmt::format("SIG{}", abbrev);
  return fmt::format("signal {}", sig);
}

Result<ProcessOutcome> RunProcess(const ProcessSpec& spec, const ProcessHooks& hooks) {
  auto in = MakePipe();
  if (!in) return std::move(in).error();
  auto out = MakePipe();
  if (!out) return std::move(out).error();
  auto err = MakePipe();
  if (!err) return std::move(err).error();
  auto prog = MakePipe();
  if (!prog) return std::move(prog).error();

  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 1);
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  {
    SpawnSetup s;
    // The sources are >= 3 (0..2 are open in acceptd), so only fd 3 can be
    // both a source and a target: it is set last. dup2 clears FD_CLOEXEC on
    // the copies (also for dup2(3, 3), glibc >= 2.29); every other descriptor
    // of acceptd is close-on-exec, and closefrom(4) catches any that is not.
    int rc = posix_spawn_file_actions_adddup2(&s.actions, in->read.get(), 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&s.actions, out->write.get(), 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&s.actions, err->write.get(), 2);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&s.actions, prog->write.get(), 3);
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&s.actions, 4);
    if (rc == 0) rc = posix_spawn_file_actions_addchdir_np(&s.actions, spec.cwd.c_str());
    // Its own process group (pgid = pid), so the whole group can be signalled;
    // signals unblocked and at their defaults (acceptd ignores some).
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&s.attr, 0);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&s.attr, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&s.attr, &all);
    if (rc == 0) {
      rc = posix_spawnattr_setflags(
          &s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    if (rc == 0)
      rc = posix_spawn(&pid, spec.program.c_str(), &s.actions, &s.attr, argv.data(), envp.data());
    if (rc != 0) {
      return Error::Internal(fmt::format("cannot start '{}': {}", spec.program, std::strerror(rc)));
    }
  }
  in->read.Close();
  out->write.Close();
  err->write.Close();
  prog->write.Close();

  ProcessOutcome result;
  result.pid = pid;
  // From here on the child must be killed and reaped on every path, also if
  // a hook throws or memory runs out.
  struct Guard {
    pid_t pid;
    bool done = false;
    ~Guard() {
      if (done) return;
      ::kill(-pid, SIGKILL);
      int status;
      while (::waitpid(pid, &status, 0) == -1 && errno == EINTR) {
      }
    }
  } guard{pid};

  BlockSigpipe sigpipe;
  Fd pidfd(PidfdOpen(pid));  // -1 (old kernel): HasExited() at each wake-up instead
  if (hooks.on_started) hooks.on_started(pid);

  Fd stdin_fd = std::move(in->write);
  Fd stdout_fd = std::move(out->read);
  Fd stderr_fd = std::move(err->read);
  Fd prog_fd = std::move(prog->read);
  size_t stdin_off = 0;
  if (spec.stdin_bytes.empty()) {
    stdin_fd.Close();
  } else if (::fcntl(stdin_fd.get(), F_SETFL, O_NONBLOCK) != 0) {
    stdin_fd.Close();  // cannot happen for a pipe; the command sees an empty stdin
  }
  LineSplitter lines(hooks.on_progress_line);

  bool leader_exited = false;
  std::optional<SteadyClock::time_point> kill_at;   // SIGKILL due (after SIGTERM)
  std::optional<SteadyClock::time_point> drain_by;  // after the leader's exit
  std::array<char, kReadChunk> buf;

  auto kill_group = [&](int sig) { ::kill(-pid, sig); };

  for (;;) {
    if (!leader_exited && (pidfd.open() ? false : HasExited(pid))) leader_exited = true;
    if (leader_exited && !drain_by) {
      // Before reaping (below): no group member may outlive the attempt.
      kill_group(SIGKILL);
      stdin_fd.Close();
      drain_by = SteadyClock::now() + kDrainAfterExit;
    }
    if (!stdout_fd.open() && !stderr_fd.open() && !prog_fd.open() && leader_exited) break;
    const auto now = SteadyClock::now();
    if (drain_by && now >= *drain_by) break;

    if (!leader_exited && !result.cancelled && hooks.cancelled && hooks.cancelled()) {
      result.cancelled = true;
      if (spec.kill_grace > 0) {
        kill_group(SIGTERM);
        result.sent_sigterm = true;
        kill_at = now + std::chrono::milliseconds(spec.kill_grace);
      } else {
        kill_at = now;
      }
    }
    if (!leader_exited && kill_at && now >= *kill_at) {
      kill_group(SIGKILL);
      result.sent_sigkill = true;
      kill_at.reset();
    }

    std::array<pollfd, 5> fds{};
    size_t n = 0;
    int i_stdin = -1, i_stdout = -1, i_stderr = -1, i_prog = -1, i_pidfd = -1;
    auto add = [&](const Fd& fd, short events, int& index) {
      if (!fd.open()) return;
      fds[n] = pollfd{fd.get(), events, 0};
      index = static_cast<int>(n++);
    };
    add(stdin_fd, POLLOUT, i_stdin);
    add(stdout_fd, POLLIN, i_stdout);
    add(stderr_fd, POLLIN, i_stderr);
    add(prog_fd, POLLIN, i_prog);
    if (!leader_exited) add(pidfd, POLLIN, i_pidfd);

    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kCancelPollInterval);
    if (kill_at) {
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*kill_at - now));
    }
    if (drain_by) {
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*drain_by - now));
    }
    if (!pidfd.open() && !leader_exited) wait = std::min(wait, std::chrono::milliseconds(5));
    int ready = ::poll(fds.data(), n, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (ready < 0) {
      if (errno == EINTR) continue;
      // Not expected for valid descriptors; end the attempt rather than spin.
      kill_group(SIGKILL);
      result.sent_sigkill = true;
      leader_exited = true;  // the SIGKILL makes it so; Reap() waits for it
      break;
    }
    if (ready == 0) continue;

    auto readable = [&](int index) {
      return index >= 0 && (fds[static_cast<size_t>(index)].revents & (POLLIN | POLLHUP | POLLERR));
    };
    // Reads once; closes at end-of-file or error. The bytes read, or 0.
    auto read_some = [&](Fd& fd) -> std::string_view {
      ssize_t got = ::read(fd.get(), buf.data(), buf.size());
      if (got > 0) return {buf.data(), static_cast<size_t>(got)};
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) return {};
      fd.Close();
      return {};
    };

    if (i_stdin >= 0 &&
        (fds[static_cast<size_t>(i_stdin)].revents & (POLLOUT | POLLERR | POLLHUP))) {
      std::string_view rest = spec.stdin_bytes.substr(stdin_off);
      ssize_t put = ::write(stdin_fd.get(), rest.data(), rest.size());
      if (put > 0) {
        stdin_off += static_cast<size_t>(put);
        if (stdin_off == spec.stdin_bytes.size()) stdin_fd.Close();
      } else if (put < 0 && errno != EINTR && errno != EAGAIN) {
        if (errno == EPIPE) sigpipe.Raised();
        stdin_fd.Close();  // the command closed its stdin: it does not want the rest
      }
    }
    if (readable(i_stdout)) {
      std::string_view data = read_some(stdout_fd);
      if (result.out.size() + data.size() > spec.max_stdout_bytes) {
        result.out.append(data.substr(0, spec.max_stdout_bytes - result.out.size()));
        result.stdout_too_large = true;
        stdout_fd.Close();
        if (!leader_exited) {
          kill_group(SIGKILL);
          result.sent_sigkill = true;
        }
      } else {
        result.out.append(data);
      }
    }
    if (readable(i_stderr)) {
      std::string_view data = read_some(stderr_fd);
      result.stderr_bytes += data.size();
      AppendTail(result.stderr_tail, data, spec.stderr_tail_bytes);
    }
    if (readable(i_prog)) {
      std::string_view data = read_some(prog_fd);
      if (!data.empty()) lines.Feed(data);
    }
    if (i_pidfd >= 0 && (fds[static_cast<size_t>(i_pidfd)].revents & (POLLIN | POLLHUP))) {
      leader_exited = true;
    }
  }
  if (!drain_by) kill_group(SIGKILL);  // the poll error path: the leader was not seen to exit
  if (!prog_fd.open()) lines.Finish();
  Reap(pid, result);
  guard.done = true;
  return result;
}

}  // namespace acceptd::exec
