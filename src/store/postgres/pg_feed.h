// ChangeFeed: the PostgreSQL store's change feed (JobStore::Subscribe).
//
// A thread of its own LISTENs on channel `acceptd_changes` over a dedicated
// connection (not one of the pool's) and hands the changes that other nodes
// committed to the listener, a batch per wake-up. The notifications are
// sent by the jobs table's row triggers (pg_schema.cc) when their
// transaction commits; each carries its origin node, and the changes of
// `node` itself are skipped.
//
// The feed starts not live: on_state(true) comes once LISTEN works, which is
// proven by a probe notification that must come back within
// kProbeTimeout. If it never does (NOTIFY does not reach this session, as
// behind a transaction-mode pooler), the feed logs a warning, reports
// on_state(false) and tries again every kProbeRetry: nodes poll meanwhile.
// A feed that cannot connect at first reports on_state(false) too.
// A lost connection reports on_state(false) and is made again with backoff
// (100 ms doubling to 5 s), then LISTENs and probes again.
//
// Destroying the feed stops the thread (no listener call after that).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/job_store.h"

namespace acceptd::pg {

class ChangeFeed final : public ChangeSubscription {
 public:
  static constexpr std::chrono::milliseconds kProbeTimeout{1'000};
  static constexpr std::chrono::seconds kProbeRetry{30};
  static constexpr const char* kChannel = "acceptd_changes";

  ChangeFeed(std::vector<std::string> keywords, std::vector<std::string> values, std::string node,
             ChangeListener listener);
  ~ChangeFeed() override;

 private:
  void Run();
  // Waits up to `d` or until Stop: false when stopping.
  bool Sleep(std::chrono::milliseconds d);
  void SetLive(bool live);

  std::vector<std::string> keywords_, values_;
  std::string node_;
  ChangeListener listener_;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::optional<bool> live_;  // feed thread only: what on_state said last
  bool warned_unavailable_ = false;
  std::thread thread_;
};

// Parses one notification payload into `out`, skipping changes whose origin
// is `self`. Returns the origin ("" if the payload is not one of ours).
std::string ParseChanges(const std::string& payload, const std::string& self,
                         std::vector<JobChange>* out);

}  // namespace acceptd::pg
