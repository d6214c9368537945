// JobWatchers: wake-ups for clients waiting on a job, fed by the engine's
// commits. A watcher costs a map entry and a callback: no thread and no store
// polling. Two kinds:
//
//  - Watch(): one-shot, for long-polls. `wake` is called at most once, when
//    the job reaches a terminal state or disappears (deleted), and the
//    watcher is then dropped.
//  - Listen(): for event streams. `wake` is called after EVERY committed
//    change of the job (state, attempts, cancel flag, progress) and when it
//    disappears, any number of times, until Unwatch(). A wake says only
//    "something changed": the listener re-reads the job, so several changes
//    may be seen as one (it should coalesce: set a flag, post, return).
//
// Thread-safe. `wake` runs on the engine thread, outside any lock of this
// class, and must be quick (post to the listener's executor). Call Unwatch()
// when done; waking and unwatching may race harmlessly (a wake may still run
// shortly after Unwatch returned, so hold the listener's state weakly).
// The engine reports its own commits (OnChange) and other nodes' (OnState,
// from the store's change feed or, without one, its watch poll, which lists
// the watched jobs with Ids()).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/job.h"

namespace acceptd {

class JobWatchers {
 public:
  using Wake = std::function<void()>;

  // Returns a token for Unwatch().
  uint64_t Watch(const JobId& id, Wake wake);
  uint64_t Listen(const JobId& id, Wake wake);
  // Removes a watcher or listener; unknown tokens are ignored.
  void Unwatch(const JobId& id, uint64_t token);

  // Called by the engine for every committed change of `job`.
  void OnChange(const Job& job, bool removed) { OnState(job.id, job.state, removed); }
  // The same, when only the job's id and new state are known (a change
  // committed by another node).
  void OnState(const JobId& id, JobState state, bool removed);
  // Called by the engine after a progress write for `id` commits (the write
  // may have matched nothing, e.g. a stale lease: listeners then find the
  // job unchanged).
  void OnProgress(const JobId& id);
  size_t size() const;  // watchers and listeners
  // Watchers (long-polls) and listeners (event streams) now, without locking.
  size_t waiting() const { return waiters_.load(std::memory_order_relaxed); }
  size_t listening() const { return listeners_.load(std::memory_order_relaxed); }
  // The jobs that have a watcher or a listener now.
  std::vector<JobId> Ids() const;

 private:
  struct Entry {
    uint64_t token;
    Wake wake;
  };
  struct Listener {
    uint64_t token;
    std::shared_ptr<const Wake> wake;  // shared: copied out of the lock on every change
  };
  struct Watchers {
    std::vector<Entry> once;
    std::vector<Listener> every;
  };
  static constexpr size_t kShards = 16;  // spreads lock contention across I/O threads
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<JobId, Watchers, JobIdHash> watchers;
  };
  Shard& ShardFor(const JobId& id) { return shards_[JobIdHash{}(id) % kShards]; }
  // Wakes the listeners of `id`, and with `final` also the one-shot watchers.
  void WakeUp(const JobId& id, bool final);

  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> next_token_{1};
  // Listeners registered in all shards; lets a non-final change of a job skip
  // the lock when nobody listens (the common case: every claim notifies).
  std::atomic<size_t> listeners_{0};
  std::atomic<size_t> waiters_{0};  // one-shot watchers
};

}  // namespace acceptd
