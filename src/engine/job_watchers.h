// JobWatchers: wake-ups for clients waiting on a job (long-poll), fed by the
// engine's commits. A watcher costs a map entry and a callback: no thread and
// no store polling.
//
// Thread-safe. Watch() registers `wake`, called at most once, from the engine
// thread, when the job reaches a terminal state or disappears (deleted). Call
// Unwatch() when done waiting; waking and unwatching may race harmlessly.
// Only changes committed by this process are seen: a job finished by another
// node sharing the store does not wake local watchers (they time out).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/job.h"

namespace acceptd {

class JobWatchers {
 public:
  using Wake = std::function<void()>;

  uint64_t Watch(const JobId& id, Wake wake);
  void Unwatch(const JobId& id, uint64_t token);
  // Called by the engine for every committed change of `job`.
  void OnChange(const Job& job, bool removed);
  size_t size() const;

 private:
  struct Entry {
    uint64_t token;
    Wake wake;
  };
  static constexpr size_t kShards = 16;  // spreads lock contention across I/O threads
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<JobId, std::vector<Entry>, JobIdHash> watchers;
  };
  Shard& ShardFor(const JobId& id) { return shards_[JobIdHash{}(id) % kShards]; }

  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> next_token_{1};
};

}  // namespace acceptd
