// Configuration of queues and of the engine, with the defaults that apply
// when a key is not set. Validation lives with the config-file loader
// (src/cli/server_config.cc); these are plain values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/handler_config.h"

namespace acceptd {

inline constexpr int kDefaultConcurrency = 4;
inline constexpr int64_t kDefaultMaxDepth = 10'000;
inline constexpr int kDefaultMaxAttempts = 3;
inline constexpr Millis kDefaultTimeout = 30'000;
inline constexpr Millis kDefaultRetention = 86'400'000;
inline constexpr Millis kDefaultBackoffBase = 1'000;
inline constexpr Millis kDefaultBackoffMax = 300'000;
inline constexpr double kDefaultBackoffJitter = 0.2;

inline constexpr Millis kDefaultLeaseDuration = 30'000;
inline constexpr Millis kDefaultShutdownGrace = 30'000;
inline constexpr Millis kDefaultRetryAfter = 1'000;
inline constexpr Millis kDefaultRetryAfterMax = 60'000;
inline constexpr Millis kDefaultPromoteInterval = 250;
inline constexpr Millis kDefaultPurgeInterval = 60'000;
inline constexpr Millis kDefaultTombstoneRetention = 86'400'000;
inline constexpr int kDefaultCallbackMaxAttempts = 10;
inline constexpr Millis kDefaultCallbackTimeout = 10'000;
inline constexpr Millis kDefaultCallbackBackoffBase = 2'000;
inline constexpr Millis kDefaultCallbackBackoffMax = 600'000;
inline constexpr int kDefaultCallbackConcurrency = 32;
inline constexpr Millis kDefaultCallbackPollInterval = 1'000;
inline constexpr int kDefaultReadThreads = 4;
inline constexpr Millis kDefaultWatchPollInterval = 500;
inline constexpr size_t kDefaultStatusCacheSize = 65'536;

struct BackoffPolicy {
  Millis base = kDefaultBackoffBase;      // delay before the 2nd attempt
  Millis max = kDefaultBackoffMax;        // cap on any delay
  double jitter = kDefaultBackoffJitter;  // +/- fraction of the delay, 0..1
};

struct QueueConfig {
  std::string name;
  std::string handler;  // a name in the handler registry
  int concurrency = kDefaultConcurrency;
  int64_t max_depth = kDefaultMaxDepth;  // queued + running
  int max_attempts = kDefaultMaxAttempts;
  Millis timeout = kDefaultTimeout;  // per attempt
  Millis retention = kDefaultRetention;
  BackoffPolicy backoff;
  // handler = "external" only: the lease a worker gets when it does not ask
  // for another (0: the engine's lease_duration). In-process attempts use the
  // engine's, which its renewer keeps extending.
  Millis lease_duration = 0;
  ExecConfig exec;         // handler = "exec"
  HttpHandlerConfig http;  // handler = "http"
};

// Delivery of completion callbacks: attempt n+1 follows a failed attempt n
// after BackoffDelay(backoff, n) (~2 s, 4 s, 8 s, ... 10 min); after
// max_attempts failures the delivery is given up (visible in the job).
struct CallbackPolicy {
  int max_attempts = kDefaultCallbackMaxAttempts;
  Millis timeout = kDefaultCallbackTimeout;  // one attempt, connect to response
  BackoffPolicy backoff{kDefaultCallbackBackoffBase, kDefaultCallbackBackoffMax,
                        kDefaultBackoffJitter};
  int concurrency = kDefaultCallbackConcurrency;  // attempts in flight per node
  // How often to look for due deliveries that no local event announced
  // (retries, other nodes' jobs, deliveries pending at start-up).
  Millis poll_interval = kDefaultCallbackPollInterval;
};

inline constexpr Millis kDefaultNodeHeartbeatInterval = 10'000;
inline constexpr Millis kNodeForgetAfter = 24 * 3600'000;

struct EngineOptions {
  std::string node_id;  // lease owner name; must be unique among live nodes
  Millis lease_duration = kDefaultLeaseDuration;
  Millis shutdown_grace = kDefaultShutdownGrace;
  Millis retry_after = kDefaultRetryAfter;         // least advised poll interval (and 503s')
  Millis retry_after_max = kDefaultRetryAfterMax;  // most advised poll interval
  Millis promote_interval = kDefaultPromoteInterval;
  Millis purge_interval = kDefaultPurgeInterval;
  // How long a purged job's id answers 410 Gone before it answers 404.
  Millis tombstone_retention = kDefaultTombstoneRetention;
  CallbackPolicy callbacks;
  // Threads that run reads for a store whose calls go over the network
  // (JobStore::RemoteCalls), so that no event loop waits on the database.
  // An embedded store's reads run on the caller's thread.
  int read_threads = kDefaultReadThreads;
  // While the store has no live change feed (JobStore::Subscribe): how often
  // the jobs that long-polls and event streams wait on here are re-read, to
  // see changes committed by other nodes. 0: never. Unset: every
  // kDefaultWatchPollInterval with a store on a database server, never with
  // an embedded one (one node, as a rule: re-reading every watched job, up
  // to 10,000 long-polls, twice a second would be pure cost; processes that
  // share one SQLite file on a host set it).
  std::optional<Millis> watch_poll_interval;
  // Jobs whose status the engine keeps in memory for polls (StatusCache):
  // the most recently polled ones, up to this many (a few hundred bytes
  // each). 0: every poll reads the store. Used with a single node's store
  // (embedded, watch_poll_interval 0) or while the change feed is live.
  size_t status_cache_size = kDefaultStatusCacheSize;
  // How often this node records itself in the store (WriteTx::TouchNode) for
  // GET /v1/nodes; a node unseen for 3 intervals is shown as not alive, one
  // unseen for kNodeForgetAfter is forgotten.
  Millis node_heartbeat_interval = kDefaultNodeHeartbeatInterval;
};

}  // namespace acceptd
