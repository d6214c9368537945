// StatusCache: the jobs that status polls read, kept in memory so that a poll
// whose answer cannot have changed costs no store read.
//
// Correct by construction, given one rule its owner (the engine) keeps:
// every committed change of a job is followed by Invalidate(id) (or
// InvalidateAll), after the change is visible to store reads and before it is
// reported to anyone. An entry is only ever filled from a store read, and a
// read can only fill if no invalidation of its job happened since the read
// began: Lookup hands out a Ticket (the shard's invalidation counter) before
// the read, and Fill refuses the document if the job's slot was invalidated
// after that (a read that began before a commit may return the old row; the
// commit's invalidation comes after the read began, so the fill is refused).
// Slots are hashed (kStampSlots per shard): an invalidation of another job in
// the same slot refuses a fill needlessly, never wrongly.
//
// Untrusted (SetTrusted(false): other writers' changes may go unannounced,
// e.g. a change feed that is down) it answers nothing and refuses every fill;
// every change of trust empties it and refuses fills of reads begun before.
//
// Bounded: at most `capacity` jobs (CLOCK eviction per shard); 0 disables it.
// Thread-safe; 16 shards, each a mutex held for a map look-up and a
// shared_ptr copy, so HTTP threads polling different jobs rarely meet.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/job.h"

namespace acceptd {

class StatusCache {
 public:
  // What a store read must show to Fill (see above).
  struct Ticket {
    uint64_t era = 0;
    uint64_t epoch = 0;
    bool valid = false;  // false: do not fill (untrusted, disabled)
  };

  explicit StatusCache(size_t capacity);
  StatusCache(const StatusCache&) = delete;
  StatusCache& operator=(const StatusCache&) = delete;

  // The cached job, or nullptr and `ticket` set for the store read to follow.
  std::shared_ptr<const Job> Lookup(const JobId& id, Ticket& ticket);
  // Stores `job` (as a read begun with `ticket` returned it) unless refused.
  // Returns whether it was stored.
  bool Fill(const Ticket& ticket, const Job& job);
  // `id` changed (or may have): drops it and refuses fills of reads begun before.
  void Invalidate(const JobId& id);
  // The same for every job.
  void InvalidateAll();
  // See above. Starts trusted.
  void SetTrusted(bool trusted);
  bool trusted() const { return trusted_.load(); }

  size_t capacity() const { return capacity_; }
  size_t size() const;
  // Look-ups answered / missed since start (metrics, tests).
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kStampSlots = 64;
  struct Slot {
    std::shared_ptr<const Job> job;  // null: free
    bool referenced = false;         // CLOCK: looked up since the hand passed
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<JobId, size_t, JobIdHash> index;  // id -> slots[i]
    std::vector<Slot> slots;
    std::vector<size_t> free;
    size_t hand = 0;
    uint64_t epoch = 0;  // invalidations so far
    // The epoch of the last invalidation of the jobs hashed to each slot.
    std::array<uint64_t, kStampSlots> stamps{};
    uint64_t hits = 0;  // per shard: a shared counter would be the contention
    uint64_t misses = 0;
    void Erase(const JobId& id);
  };
  static size_t Hash(const JobId& id) { return JobIdHash{}(id); }
  Shard& ShardFor(size_t hash) { return shards_[hash % kShards]; }
  static size_t StampOf(size_t hash) { return (hash / kShards) % kStampSlots; }

  const size_t capacity_;
  const size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
  std::atomic<bool> trusted_{true};
  // Bumped by InvalidateAll and every change of trust.
  std::atomic<uint64_t> era_{1};
  // The sum of `count(shard)` over the shards, each read under its lock.
  template <typename Count>
  uint64_t SumOverShards(Count count) const;
};

}  // namespace acceptd
