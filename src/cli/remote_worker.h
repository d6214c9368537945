// RemoteWorker: runs an acceptd::Handler (core/handler.h) on the jobs of an
// external queue (`handler = "external"`) of a remote acceptd, over the
// lease protocol (client/lease_client.h, docs/workers.md). `acceptd worker`
// runs the exec handler in it; any other Handler runs the same way.
//
// Each of `concurrency` loops long-polls for one job, runs it with
// Handler::Run on its own thread, and reports the outcome:
//   - success                                  -> complete (result bytes + content type);
//                                                 a result larger than the server takes
//                                                 (413) -> fail, not retryable;
//   - failure                                  -> fail {"detail","retryable","code"}
//                                                 (code: the failure's type;
//                                                 retry_after, if the handler set one);
//   - a cancel requested (heartbeat answer)    -> release (the job ends canceled);
//   - the attempt timed out                    -> fail, retryable, code "timeout";
//   - shutdown (see Stop)                      -> release (the attempt is not spent);
//   - the lease went stale (409 on heartbeat)  -> nothing: the result is dropped.
// While a job runs, a heartbeat thread extends its lease every third of the
// lease duration, and carries the progress the handler reported
// (ReportProgress, coalesced: the latest report goes with the next
// heartbeat, which comes at most kProgressInterval after it). A heartbeat
// answer with cancel_requested, or a 409 (stale lease), makes
// JobContext::cancelled() true; so does the attempt's timeout (the
// Acceptd-Timeout-Seconds of the lease answer, counted from that answer).
//
// Errors: a lease request the server cannot answer now (unreachable, 5xx,
// 503, 408, 429) is retried after a pause that doubles from backoff_min to
// backoff_max (with +-20% jitter), and is logged. An answer retrying cannot
// change (404 unknown queue, 409 a queue that is not external, 401/403 a
// missing or refused key, 400) ends Run with that error. A complete, fail
// or release that cannot reach the server is retried the same way for as
// long as the lease lasts; after that the server hands the job out again.
//
// Thread safety: Stop() may be called from any thread; Run() once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "client/lease_client.h"
#include "core/error.h"
#include "core/handler.h"

namespace acceptd::cli {

using client::Millis;

inline constexpr Millis kDefaultWorkerBackoffMin{1'000};
inline constexpr Millis kDefaultWorkerBackoffMax{30'000};
inline constexpr Millis kDefaultWorkerShutdownGrace{30'000};
// The latest progress report waits at most this long for a heartbeat.
inline constexpr Millis kProgressInterval{1'000};
// A heartbeat that could not reach the server is tried again this soon
// (sooner if a third of the lease is shorter).
inline constexpr Millis kHeartbeatRetry{1'000};
// When a lease answer does not say how long the lease lasts (or says 0) and
// no lease duration was asked for: the shortest the server grants.
inline constexpr Millis kAssumedLeaseDuration{1'000};

struct RemoteWorkerOptions {
  client::ClientOptions client;  // server URL, API key, TLS
  std::string queue;
  int concurrency = 1;
  client::LeaseOptions lease;  // wait per lease request; lease duration asked (else the queue's)
  // After Stop(): how long running jobs may take to finish before they are
  // cancelled and their leases released.
  Millis shutdown_grace = kDefaultWorkerShutdownGrace;
  Millis backoff_min = kDefaultWorkerBackoffMin;
  Millis backoff_max = kDefaultWorkerBackoffMax;
  // One line per event (a job's outcome, a retried error, shutdown). Empty:
  // stderr, each line prefixed with the time and "acceptd worker: ".
  std::function<void(std::string_view)> log;
};

struct RemoteWorkerStats {
  int64_t leased = 0;
  int64_t completed = 0;
  int64_t failed = 0;    // fail sent (retryable or not)
  int64_t released = 0;  // cancel requested, or shutdown
  int64_t dropped = 0;   // the lease went stale, or an outcome could not be reported
};

class RemoteWorker {
 public:
  RemoteWorker(std::shared_ptr<Handler> handler, RemoteWorkerOptions options);
  ~RemoteWorker();
  RemoteWorker(const RemoteWorker&) = delete;
  RemoteWorker& operator=(const RemoteWorker&) = delete;

  // Runs the lease loops until Stop() (then success) or a lease answer that
  // retrying cannot change (then that error, after the same shutdown as
  // Stop()). Returns when every loop has ended: running jobs finished, or
  // cancelled after shutdown_grace and released.
  Result<void> Run();

  // Stops leasing at once (a long-poll in flight is interrupted; a job
  // leased at that moment is released); running jobs may finish within
  // shutdown_grace. A second call ends the grace now. Thread-safe; not
  // async-signal-safe (call it from a thread that waits for signals).
  void Stop();

  RemoteWorkerStats stats() const;

 private:
  class JobRun;
  void Loop(client::LeaseClient& poll);
  void RunJob(client::LeaseClient& c, client::LeasedJob job);
  void Heartbeats(client::LeaseClient& c, const client::LeasedJob& job, JobRun& run);
  void Report(client::LeaseClient& c, const client::LeasedJob& job, JobRun& run,
              HandlerOutcome outcome, Millis took);
  // Calls `call` until it succeeds, fails for good, or the lease ends.
  template <typename F>
  auto Retrying(JobRun& run, std::string_view what, F&& call) -> decltype(call());
  void Fatal(Error error);
  void Log(std::string_view line) const;
  // Sleeps up to `d`, less if stopping; false if stopping.
  bool PauseUnlessStopping(Millis d);
  Millis Jitter(Millis d);

  std::shared_ptr<Handler> handler_;
  RemoteWorkerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // stopping_, loops_ and cut_grace_ changes
  bool stopping_ = false;
  bool cut_grace_ = false;       // a second Stop(): no more grace
  bool cancel_running_ = false;  // the grace is over: cancel what runs, and what starts
  int loops_ = 0;                // lease loops still running
  std::optional<Error> fatal_;
  std::vector<std::unique_ptr<client::LeaseClient>> polls_;
  std::set<JobRun*> running_;
  uint64_t jitter_state_;

  std::atomic<int64_t> leased_{0}, completed_{0}, failed_{0}, released_{0}, dropped_{0};
};

}  // namespace acceptd::cli
