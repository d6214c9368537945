#include "engine/job_watchers.h"

#include <algorithm>

namespace acceptd {

uint64_t JobWatchers::Watch(const JobId& id, Wake wake) {
  const uint64_t token = next_token_.fetch_add(1);
  Shard& shard = ShardFor(id);
  std::lock_guard lock(shard.mu);
  shard.watchers[id].push_back(Entry{token, std::move(wake)});
  return token;
}

void JobWatchers::Unwatch(const JobId& id, uint64_t token) {
  Shard& shard = ShardFor(id);
  std::lock_guard lock(shard.mu);
  auto it = shard.watchers.find(id);
  if (it == shard.watchers.end()) return;
  auto& entries = it->second;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [token](const Entry& e) { return e.token == token; }),
                entries.end());
  if (entries.empty()) shard.watchers.erase(it);
}

void JobWatchers::OnChange(const Job& job, bool removed) {
  if (!removed && !IsTerminal(job.state)) return;
  std::vector<Entry> woken;
  {
    Shard& shard = ShardFor(job.id);
    std::lock_guard lock(shard.mu);
    auto it = shard.watchers.find(job.id);
    if (it == shard.watchers.end()) return;
    woken = std::move(it->second);
    shard.watchers.erase(it);
  }
  for (Entry& e : woken) e.wake();  // outside the lock: wakers post to other threads
}

size_t JobWatchers::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [id, entries] : s.watchers) n += entries.size();
  }
  return n;
}

}  // namespace acceptd
