// PostgresStore: the JobStore backend for several acceptd nodes sharing one
// PostgreSQL database (docs/store_contract.md, "The PostgreSQL backend").
//
// Same semantics as SqliteStore, enforced by the database so that any number
// of store objects (nodes) can share it: every state change is one
// conditional statement guarded by the expected state and lease token;
// claims use FOR UPDATE SKIP LOCKED; a trigger checks each state change
// against core's transition table (copied into the database by the
// migration); queue depth limits and idempotency keys are exact across
// nodes (pg_schema.cc says how). Commit() returns after PostgreSQL's COMMIT
// succeeded, and Open refuses a server that does not make commits durable
// (fsync = off, synchronous_commit = off) unless StoreOptions says
// unsafe_durability.
//
// Connections come from a pool of StoreOptions::pool_size (pg_pool.h); any
// failure of a connection or of the server is kUnavailable (503 with
// Retry-After), and a write that did not commit is never reported as
// committed. Reads and BeginWrite retry once on a fresh connection when a
// pooled one turns out to be dead (nothing was written through it).
//
// Subscribe() starts a change feed: a thread LISTENing on a connection of
// its own (pg_feed.cc). RemoteCalls() is true. Thread-safe like every store.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/job_store.h"
#include "store/postgres/pg_pool.h"

namespace acceptd {

class PostgresStore final : public JobStore {
 public:
  // Opens a store on the database named by `url` (a libpq connection URI or
  // keyword/value string; parts left out come from the PG* environment).
  // Connects once, checks durability, and migrates (or, with
  // !options.migrate, checks) the schema.
  static Result<std::unique_ptr<PostgresStore>> Open(const std::string& url,
                                                     const StoreOptions& options);
  // Applies the schema (acceptd migrate): returns the version.
  static Result<int> Migrate(const std::string& url);
  ~PostgresStore() override;

  void SetTransitionObserver(TransitionObserver observer) override;
  Result<std::unique_ptr<WriteTx>> BeginWrite() override;
  Result<Job> Get(const JobId& id) override;
  std::vector<Result<Job>> GetMany(const std::vector<JobId>& ids) override;
  Result<StoredResult> GetResult(const JobId& id) override;
  Result<StoredPayload> GetPayload(const JobId& id) override;
  Result<JobPage> List(const ListParams& params) override;
  Result<AttemptHistory> GetAttempts(const JobId& id) override;
  Result<std::vector<QueueThroughput>> Throughput(UnixMillis since, Millis step,
                                                  int buckets) override;
  Result<std::vector<QueueCounts>> Counts() override;
  Result<std::vector<QueueValue>> OldestReady() override;
  Result<std::vector<std::string>> PausedQueues() override;
  Result<NodeList> Nodes() override;
  Result<std::vector<ScheduleState>> ScheduleStates() override;
  Status Ping() override;
  bool RemoteCalls() const override { return true; }
  std::unique_ptr<ChangeSubscription> Subscribe(ChangeListener listener) override;

  const std::string& node_name() const { return node_; }
  // Backend pids of the pool's connections (tests terminate them).
  std::vector<int> BackendPids() { return pool_->BackendPids(); }

 private:
  class Tx;
  PostgresStore(std::vector<std::string> keywords, std::vector<std::string> values,
                std::string node, const StoreOptions& options);
  // Runs `f(conn)` on a pooled connection; once more on a fresh one if a
  // pooled connection failed with kUnavailable (it had died while idle).
  template <typename F>
  auto WithConn(F&& f) -> decltype(f(std::declval<pg::Conn&>()));
  void OnNotice(const PGresult* r);

  std::vector<std::string> keywords_, values_;  // connection parameters
  std::string node_;
  StoreOptions options_;
  std::unique_ptr<pg::Pool> pool_;
  std::mutex write_mu_;                     // held by the open Tx
  TransitionObserver transition_observer_;  // called with write_mu_ held
  std::atomic<bool> observing_{false};
};

// Connection parameters for libpq from a URL: the URL itself (expanded by
// libpq, PG* variables fill the gaps) plus acceptd's defaults for what the
// URL leaves out (connect_timeout, TCP keepalives, application_name).
void PostgresConnectParams(const std::string& url, const std::string& node,
                           std::vector<std::string>* keywords, std::vector<std::string>* values);

}  // namespace acceptd
