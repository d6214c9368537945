#include "engine/status_cache.h"

namespace acceptd {

StatusCache::StatusCache(size_t capacity)
    : capacity_(capacity), shard_capacity_((capacity + kShards - 1) / kShards) {}

std::shared_ptr<const Job> StatusCache::Lookup(const JobId& id, Ticket& ticket) {
  ticket = Ticket{};
  if (capacity_ == 0) return nullptr;
  const size_t hash = Hash(id);
  Shard& shard = ShardFor(hash);
  {
    std::lock_guard lock(shard.mu);
    // Read under the lock: InvalidateAll bumps the era before it empties the
    // shards, so a ticket with the new era was taken after the shard emptied.
    const uint64_t era = era_.load();
    if (trusted_.load()) {
      auto it = shard.index.find(id);
      if (it != shard.index.end()) {
        Slot& slot = shard.slots[it->second];
        slot.referenced = true;
        ++shard.hits;
        return slot.job;
      }
      ticket = Ticket{era, shard.epoch, true};
    }
    ++shard.misses;
  }
  return nullptr;
}

bool StatusCache::Fill(const Ticket& ticket, const Job& job) {
  if (!ticket.valid) return false;
  const size_t hash = Hash(job.id);
  Shard& shard = ShardFor(hash);
  auto copy = std::make_shared<Job>(job);
  copy->payload.clear();  // never needed by a status read
  std::lock_guard lock(shard.mu);
  if (!trusted_.load() || era_.load() != ticket.era) return false;
  if (shard.stamps[StampOf(hash)] > ticket.epoch) return false;  // changed since the read began
  auto it = shard.index.find(job.id);
  if (it != shard.index.end()) {
    // Filled meanwhile by another read that also began after the last change.
    shard.slots[it->second].job = std::move(copy);
    return true;
  }
  size_t i;
  if (!shard.free.empty()) {
    i = shard.free.back();
    shard.free.pop_back();
  } else if (shard.slots.size() < shard_capacity_) {
    i = shard.slots.size();
    shard.slots.emplace_back();
  } else {
    // CLOCK: the first slot not looked up since the hand last passed it.
    for (;;) {
      Slot& s = shard.slots[shard.hand];
      if (!s.referenced) break;
      s.referenced = false;
      shard.hand = (shard.hand + 1) % shard.slots.size();
    }
    i = shard.hand;
    shard.hand = (shard.hand + 1) % shard.slots.size();
    shard.index.erase(shard.slots[i].job->id);
  }
  shard.slots[i] = Slot{std::move(copy), false};
  shard.index.emplace(job.id, i);
  return true;
}

void StatusCache::Shard::Erase(const JobId& id) {
  auto it = index.find(id);
  if (it == index.end()) return;
  slots[it->second] = Slot{};
  free.push_back(it->second);
  index.erase(it);
}

void StatusCache::Invalidate(const JobId& id) {
  if (capacity_ == 0) return;
  const size_t hash = Hash(id);
  Shard& shard = ShardFor(hash);
  std::shared_ptr<const Job> dropped;  // freed outside the lock
  std::lock_guard lock(shard.mu);
  shard.stamps[StampOf(hash)] = ++shard.epoch;
  auto it = shard.index.find(id);
  if (it == shard.index.end()) return;
  dropped = std::move(shard.slots[it->second].job);
  shard.Erase(id);
}

void StatusCache::InvalidateAll() {
  if (capacity_ == 0) return;
  era_.fetch_add(1);
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    shard.index.clear();
    shard.slots.clear();
    shard.free.clear();
    shard.hand = 0;
  }
}

void StatusCache::SetTrusted(bool trusted) {
  trusted_ = trusted;
  InvalidateAll();
}

template <typename Count>
uint64_t StatusCache::SumOverShards(Count count) const {
  uint64_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += count(shard);
  }
  return n;
}

uint64_t StatusCache::hits() const {
  return SumOverShards([](const Shard& shard) { return shard.hits; });
}

uint64_t StatusCache::misses() const {
  return SumOverShards([](const Shard& shard) { return shard.misses; });
}

size_t StatusCache::size() const {
  return SumOverShards([](const Shard& shard) { return shard.index.size(); });
}

}  // namespace acceptd
