#include "workers/exec/work_dirs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace acceptd::exec {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxEnvironBytes = 256 * 1024;

std::optional<std::string> ReadSmallFile(const std::string& path, size_t max) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() >= max) break;
  }
  ::close(fd);
  return data;
}

template <typename T>
std::optional<T> ParseNumber(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// The fields of /proc/<pid>/stat that matter here.
struct ProcStat {
  char state = '?';
  pid_t pgrp = 0;
  std::string starttime;
};

std::optional<ProcStat> ReadStat(pid_t pid) {
  auto text = ReadSmallFile(fmt::format("/proc/{}/stat", pid), 4096);
  if (!text) return std::nullopt;
  // "pid (comm) state ppid pgrp ...": comm may hold anything, so split after
  // the last ')'. Field 3 (state) is token 0; pgrp (5) is 2; starttime (22) is 19.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string_view> tokens;
  std::string_view rest = std::string_view(*text).substr(close + 1);
  while (!rest.empty() && tokens.size() < 20) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    size_t end = rest.find(' ');
    tokens.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  if (tokens.size() < 20) return std::nullopt;
  ProcStat st;
  st.state = tokens[0].empty() ? '?' : tokens[0][0];
  auto pgrp = ParseNumber<pid_t>(tokens[2]);
  if (!pgrp) return std::nullopt;
  st.pgrp = *pgrp;
  st.starttime = std::string(tokens[19]);
  return st;
}

bool OwnerAlive(std::string_view name) {
  // owner-<pid>-<starttime>
  constexpr std::string_view kPrefix = "owner-";
  if (name.substr(0, kPrefix.size()) != kPrefix) return true;  // not ours: leave alone
  name.remove_prefix(kPrefix.size());
  size_t dash = name.find('-');
  if (dash == std::string_view::npos) return true;
  auto pid = ParseNumber<pid_t>(name.substr(0, dash));
  if (!pid) return true;
  auto st = ReadStat(*pid);
  return st && st->state != 'Z' && st->state != 'X' && st->starttime == name.substr(dash + 1);
}

// Job ids are 32 hex characters; anything else is made safe for a file name.
std::string SafeName(std::string_view id) {
  std::string out(id);
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  return out;
}

struct Leftover {
  std::string job_id;
  std::string attempt;
  pid_t pgid = 0;  // 0: not recorded (the owner died before the link was made)
};

// "<jobid>-<attempt>" (a cwd) or "<pgid>-<jobid>-<attempt>" (the pgid record).
std::optional<Leftover> ParseAttemptName(std::string_view name) {
  size_t last = name.rfind('-');
  if (last == std::string_view::npos) return std::nullopt;
  Leftover l;
  l.attempt = std::string(name.substr(last + 1));
  name = name.substr(0, last);
  if (size_t first = name.find('-'); first != std::string_view::npos) {
    auto pgid = ParseNumber<pid_t>(name.substr(0, first));
    if (!pgid || *pgid <= 1) return std::nullopt;
    l.pgid = *pgid;
    name.remove_prefix(first + 1);
  }
  l.job_id = std::string(name);
  if (l.job_id.empty() || !ParseNumber<int>(l.attempt)) return std::nullopt;
  return l;
}

// The value of NAME in a /proc/<pid>/environ blob, if set.
std::optional<std::string_view> EnvValue(std::string_view environ, std::string_view name) {
  while (!environ.empty()) {
    size_t end = environ.find('\0');
    std::string_view entry = environ.substr(0, end);
    if (entry.size() > name.size() && entry.substr(0, name.size()) == name &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
    if (end == std::string_view::npos) break;
    environ.remove_prefix(end + 1);
  }
  return std::nullopt;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  if (!d) return pids;
  while (dirent* e = ::readdir(d)) {
    if (auto pid = ParseNumber<pid_t>(e->d_name); pid && *pid > 0) pids.push_back(*pid);
  }
  ::closedir(d);
  return pids;
}

}  // namespace

std::string DefaultWorkRoot() {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = (tmp && *tmp == '/') ? tmp : "/tmp";
  return fmt::format("{}/acceptd-exec-{}", base, ::geteuid());
}

std::string OwnerDirName() {
  auto st = ReadStat(::getpid());
  return fmt::format("owner-{}-{}", ::getpid(), st ? st->starttime : "0");
}

SweepReport SweepStrays(const std::string& root) {
  SweepReport report;
  std::error_code ec;
  const std::string self = OwnerDirName();
  std::vector<Leftover> leftovers;
  std::vector<fs::path> gone_owners;
  for (const auto& owner : fs::directory_iterator(root, ec)) {
    std::string name = owner.path().filename().string();
    if (name == self || owner.is_symlink(ec) || !owner.is_directory(ec) || OwnerAlive(name)) {
      continue;
    }
    gone_owners.push_back(owner.path());
    // Attempts with a pgid record, and those without one (cwd only).
    std::vector<Leftover> recorded, unrecorded;
    std::vector<fs::directory_entry> entries;
    for (const auto& entry : fs::directory_iterator(owner.path(), ec)) {
      const std::string entry_name = entry.path().filename().string();
      if (entry_name.rfind(kShardPrefix, 0) == 0 && !entry.is_symlink(ec) &&
          entry.is_directory(ec)) {
        for (const auto& inner : fs::directory_iterator(entry.path(), ec)) entries.push_back(inner);
      }
    }
    for (const auto& entry : entries) {
      auto l = ParseAttemptName(entry.path().filename().string());
      if (!l) continue;
      if (l->pgid != 0 && entry.is_symlink(ec)) {
        recorded.push_back(std::move(*l));
      } else if (l->pgid == 0 && entry.is_directory(ec)) {
        unrecorded.push_back(std::move(*l));
        ++report.dirs_removed;
      }
    }
    for (Leftover& l : unrecorded) {
      bool has_record = std::any_of(recorded.begin(), recorded.end(), [&](const Leftover& r) {
        return r.job_id == l.job_id && r.attempt == l.attempt;
      });
      if (!has_record) leftovers.push_back(std::move(l));
    }
    for (Leftover& l : recorded) leftovers.push_back(std::move(l));
  }
  if (!leftovers.empty()) {
    bool any_unknown_pgid = false;
    std::set<pid_t> pgids;
    for (const Leftover& l : leftovers) {
      if (l.pgid == 0)
        any_unknown_pgid = true;
      else
        pgids.insert(l.pgid);
    }
    const pid_t own_pgrp = ::getpgrp();
    std::set<pid_t> killed_groups;
    for (pid_t pid : AllPids()) {
      if (pid == ::getpid()) continue;
      auto st = ReadStat(pid);
      if (!st || st->state == 'Z' || st->state == 'X') continue;
      if (!any_unknown_pgid && !pgids.count(st->pgrp)) continue;
      // Readable only for our own processes (ptrace access check): the
      // environment is what proves the process belongs to the attempt.
      auto environ = ReadSmallFile(fmt::format("/proc/{}/environ", pid), kMaxEnvironBytes);
      if (!environ) continue;
      auto job = EnvValue(*environ, "ACCEPTD_JOB_ID");
      auto attempt = EnvValue(*environ, "ACCEPTD_ATTEMPT");
      if (!job || !attempt) continue;
      for (const Leftover& l : leftovers) {
        if (SafeName(*job) != l.job_id || *attempt != l.attempt) continue;
        if (l.pgid != 0 && st->pgrp == l.pgid) {
          if (killed_groups.insert(l.pgid).second) {
            ::kill(-l.pgid, SIGKILL);
            ++report.groups_killed;
            spdlog::warn(
                "exec: killed process group {} left running by a previous acceptd "
                "(job={} attempt={})",
                l.pgid, l.job_id, l.attempt);
          }
        } else if (l.pgid == 0 && st->pgrp > 1 && st->pgrp != own_pgrp) {
          if (killed_groups.insert(st->pgrp).second) {
            ::kill(-st->pgrp, SIGKILL);
            ++report.groups_killed;
            spdlog::warn(
                "exec: killed process group {} left running by a previous acceptd "
                "(job={} attempt={})",
                st->pgrp, l.job_id, l.attempt);
          }
        } else {
          // Left the attempt's group (setsid) but still the attempt's.
          ::kill(pid, SIGKILL);
          spdlog::warn("exec: killed process {} left running by a previous acceptd (job={})", pid,
                       l.job_id);
        }
        break;
      }
    }
  }
  for (const fs::path& owner : gone_owners) fs::remove_all(owner, ec);
  return report;
}

Result<std::shared_ptr<WorkDirs>> WorkDirs::Open(const std::string& root) {
  if (root.empty() || root.front() != '/') {
    return Error::InvalidArgument(fmt::format("'{}' is not an absolute path", root));
  }
  std::error_code ec;
  fs::path parent = fs::path(root).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error::InvalidArgument(
        fmt::format("cannot create '{}': {}", root, std::strerror(errno)));
  }
  struct stat st {};
  if (::lstat(root.c_str(), &st) != 0) {
    return Error::InvalidArgument(fmt::format("cannot use '{}': {}", root, std::strerror(errno)));
  }
  // In a shared /tmp, someone else may have made the directory first.
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return Error::InvalidArgument(
        fmt::format("'{}' must be a directory owned by this user (uid {})", root, ::geteuid()));
  }
  SweepReport swept = SweepStrays(root);
  if (swept.groups_killed > 0 || swept.dirs_removed > 0) {
    spdlog::warn(
        "exec: swept '{}': killed {} process groups, removed {} working directories "
        "left by a previous acceptd",
        root, swept.groups_killed, swept.dirs_removed);
  }
  std::string owner = root + "/" + OwnerDirName();
  if (::mkdir(owner.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error::InvalidArgument(
        fmt::format("cannot create '{}': {}", owner, std::strerror(errno)));
  }
  return std::shared_ptr<WorkDirs>(new WorkDirs(owner));
}

WorkDirs::~WorkDirs() {
  for (int shard = 0; shard < kShards; ++shard) {
    ::rmdir(fmt::format("{}/{}{:x}", owner_dir_, kShardPrefix, shard).c_str());
  }
  ::rmdir(owner_dir_.c_str());
}

Result<WorkDirs::Attempt> WorkDirs::Create(const std::string& job_id, int attempt) {
  Attempt a;
  const std::string name = fmt::format("{}-{}", SafeName(job_id), attempt);
  const std::string shard =
      fmt::format("{}/{}{:x}", owner_dir_, kShardPrefix, std::hash<std::string>{}(name) % kShards);
  a.dir = shard + "/" + name;
  for (int tries = 0;; ++tries) {
    if (::mkdir(a.dir.c_str(), 0700) == 0) return a;
    int e = errno;
    if (e == EEXIST && tries == 0) {
      Remove(a);  // a leftover of this process (its removal failed once)
      continue;
    }
    if (e == ENOENT && tries < 3) {
      // The shard is new, or the owner directory was removed under us (a tmp
      // cleaner, or another WorkDirs of this process ending): make them.
      ::mkdir(owner_dir_.c_str(), 0700);
      ::mkdir(shard.c_str(), 0700);
      continue;
    }
    return Error::Internal(fmt::format("mkdir '{}': {}", a.dir, std::strerror(e)));
  }
}

void WorkDirs::Spawned(Attempt& attempt, pid_t pgid) {
  const fs::path dir(attempt.dir);
  std::string name = dir.filename().string();
  std::string link = fmt::format("{}/{}-{}", dir.parent_path().string(), pgid, name);
  if (::symlink(name.c_str(), link.c_str()) == 0) attempt.link = std::move(link);
}

void WorkDirs::Remove(const Attempt& attempt) {
  // The record goes last: while the directory exists, the sweep may need it.
  RemoveTree(attempt.dir);
  if (!attempt.link.empty()) ::unlink(attempt.link.c_str());
}

void WorkDirs::RemoveTree(const std::string& path) {
  // Most commands leave their directory empty: one syscall instead of a walk.
  if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return;
  std::error_code ec;
  fs::remove_all(path, ec);
  if (!ec) return;
  // A command may have left a directory without write permission: allow, retry.
  for (auto it = fs::recursive_directory_iterator(
           path, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
  }
  fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
  ec.clear();
  fs::remove_all(path, ec);
  if (ec) spdlog::warn("exec: cannot remove working directory '{}': {}", path, ec.message());
}

}  // namespace acceptd::exec
