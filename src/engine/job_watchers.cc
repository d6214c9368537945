#include "engine/job_watchers.h"

#include <algorithm>

namespace acceptd {

uint64_t JobWatchers::Watch(const JobId& id, Wake wake) {
  const uint64_t token = next_token_.fetch_add(1);
  Shard& shard = ShardFor(id);
  std::lock_guard lock(shard.mu);
  shard.watchers[id].once.push_back(Entry{token, std::move(wake)});
  waiters_.fetch_add(1, std::memory_order_relaxed);
  return token;
}

uint64_t JobWatchers::Listen(const JobId& id, Wake wake) {
  const uint64_t token = next_token_.fetch_add(1);
  auto shared = std::make_shared<const Wake>(std::move(wake));
  Shard& shard = ShardFor(id);
  std::lock_guard lock(shard.mu);
  shard.watchers[id].every.push_back(Listener{token, std::move(shared)});
  listeners_.fetch_add(1);
  return token;
}

void JobWatchers::Unwatch(const JobId& id, uint64_t token) {
  Shard& shard = ShardFor(id);
  std::lock_guard lock(shard.mu);
  auto it = shard.watchers.find(id);
  if (it == shard.watchers.end()) return;
  auto& once = it->second.once;
  const size_t once_before = once.size();
  once.erase(std::remove_if(once.begin(), once.end(),
                            [token](const Entry& e) { return e.token == token; }),
             once.end());
  if (once.size() != once_before) {
    waiters_.fetch_sub(once_before - once.size(), std::memory_order_relaxed);
  }
  auto& every = it->second.every;
  const size_t before = every.size();
  every.erase(std::remove_if(every.begin(), every.end(),
                             [token](const Listener& l) { return l.token == token; }),
              every.end());
  if (every.size() != before) listeners_.fetch_sub(before - every.size());
  if (once.empty() && every.empty()) shard.watchers.erase(it);
}

void JobWatchers::OnState(const JobId& id, JobState state, bool removed) {
  WakeUp(id, removed || IsTerminal(state));
}

void JobWatchers::OnProgress(const JobId& id) { WakeUp(id, false); }

void JobWatchers::WakeUp(const JobId& id, bool final) {
  if (!final && listeners_.load() == 0) return;
  std::vector<Entry> once;
  std::vector<std::shared_ptr<const Wake>> every;
  {
    Shard& shard = ShardFor(id);
    std::lock_guard lock(shard.mu);
    auto it = shard.watchers.find(id);
    if (it == shard.watchers.end()) return;
    Watchers& w = it->second;
    if (final) {
      once = std::move(w.once);
      w.once.clear();
      waiters_.fetch_sub(once.size(), std::memory_order_relaxed);
    }
    every.reserve(w.every.size());
    for (const Listener& l : w.every) every.push_back(l.wake);
    if (w.once.empty() && w.every.empty()) shard.watchers.erase(it);
  }
  // Outside the lock: wakers post to other threads.
  for (Entry& e : once) e.wake();
  for (const auto& w : every) (*w)();
}

size_t JobWatchers::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [id, w] : s.watchers) n += w.once.size() + w.every.size();
  }
  return n;
}

std::vector<JobId> JobWatchers::Ids() const {
  std::vector<JobId> ids;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [id, w] : s.watchers) ids.push_back(id);
  }
  return ids;
}

}  // namespace acceptd
