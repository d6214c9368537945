// WorkDirs: the working directories of exec attempts, and the sweep that
// kills what a crashed acceptd left running.
//
// Layout under the root (ExecConfig::work_dir; default DefaultWorkRoot()):
//   <root>/owner-<pid>-<starttime>/           one per acceptd process (pid and
//                                             its start time in /proc/<pid>/stat,
//                                             so a reused pid is another owner)
//   <root>/owner-.../shard-<x>/               kShards subdirectories
//   <root>/owner-.../shard-<x>/<jobid>-<attempt>/        one attempt's cwd
//   <root>/owner-.../shard-<x>/<pgid>-<jobid>-<attempt>  a symlink to it, made
//                                             right after the spawn: the record
//                                             of the attempt's process group id
// The shards exist because every mkdir, symlink, unlink and rmdir takes its
// parent directory's lock: with one directory for 64 concurrent attempts, the
// kernel spun on that lock for 40 % of the exec loop's CPU (bench/README.md).
// The cwd itself is never renamed once the command runs (a command may have
// read its path), so the pgid is recorded beside it, in the link's name.
// The owner level lets several acceptd processes (servers, `acceptd worker`s)
// share a root: each sweeps only the directories of owners that are gone.
//
// Sweep (at Open, i.e. when a handler is created at start-up): for every
// attempt directory of an owner that no longer runs, every process of ours
// whose environment holds that attempt's ACCEPTD_JOB_ID and ACCEPTD_ATTEMPT
// (and, when the name has one, whose process group is that pgid) has its
// process group killed with SIGKILL; then the directory is removed. A process
// whose environment does not match, e.g. an unrelated one that got the pgid
// later, is never signalled.
//
// Thread safety: Create and Remove may be called from any number of threads.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "core/error.h"

namespace acceptd::exec {

inline constexpr int kShards = 16;
inline constexpr char kShardPrefix[] = "shard-";

// $TMPDIR (or /tmp) + "/acceptd-exec-<uid>".
std::string DefaultWorkRoot();

struct SweepReport {
  int groups_killed = 0;  // process groups sent SIGKILL
  int dirs_removed = 0;   // attempt directories of gone owners (removed)
};

// Sweeps `root` (see above) for owners other than the calling process.
SweepReport SweepStrays(const std::string& root);

// "owner-<pid>-<starttime>" of the calling process.
std::string OwnerDirName();

class WorkDirs {
 public:
  // Creates root (mode 0700; refused if it is not a directory of this user)
  // and this process's owner directory, after sweeping. The error's detail
  // says what is wrong with `root` (the caller names the key).
  static Result<std::shared_ptr<WorkDirs>> Open(const std::string& root);

  struct Attempt {
    std::string dir;   // the cwd
    std::string link;  // "<pgid>-..." once Spawned, else empty
  };
  // A fresh, empty directory for one attempt.
  Result<Attempt> Create(const std::string& job_id, int attempt);
  // Records the attempt's process group id (best effort: without the record
  // the sweep still finds the processes by their environment).
  void Spawned(Attempt& attempt, pid_t pgid);
  // Removes the directory with everything in it, and the record (best
  // effort, failures logged).
  void Remove(const Attempt& attempt);

  const std::string& owner_dir() const { return owner_dir_; }

  // Removes the owner directory if it is empty (a clean exit leaves no trace;
  // another instance of this process recreates it when it needs it).
  ~WorkDirs();
  WorkDirs(const WorkDirs&) = delete;
  WorkDirs& operator=(const WorkDirs&) = delete;

 private:
  static void RemoveTree(const std::string& path);
  explicit WorkDirs(std::string owner_dir) : owner_dir_(std::move(owner_dir)) {}
  std::string owner_dir_;
};

}  // namespace acceptd::exec
