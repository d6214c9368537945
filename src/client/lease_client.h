// acceptd::client::LeaseClient: the worker side of acceptd's lease protocol
// (docs/workers.md): lease a job of an external queue, heartbeat while it
// runs, then complete, fail or release it. `acceptd worker` is built on it;
// so can any C++ worker be.
//
//   POST /v1/queues/{queue}/leases?wait=N&lease=S   200 a job (LeasedJob) | 204 none
//   POST {lease}/heartbeat?lease=S  [{"percent","message"}]  -> cancel_requested, lease_seconds
//   POST {lease}/complete   result bytes + Content-Type
//   POST {lease}/fail       {"detail","retryable","code","retry_after"} (problem+json)
//   POST {lease}/release    gives the job back without spending the attempt
//
// {lease} is the lease's URL: the Location of the lease answer (absolute, or
// relative to base_url), or a bare lease id, which names
// {base}/v1/leases/{id}.
//
// Errors are values, as in client.h (same transport errors, same mapping of
// statuses), except:
//   - 409 on a call that names a lease (heartbeat, complete, fail, release):
//       kStaleLease, the detail of the server's problem document: the lease
//       expired and was re-leased, or the job finished, was canceled or
//       deleted. Nothing was changed; stop working on the job.
//   - 409 on Lease: kConflict (the queue is not external: its jobs run inside
//       the server).
//   - 408 and 429: kUnavailable (try again later), like 503.
// IsRetryable() says which errors a worker should back off and retry.
//
// Thread safety: as Client: one LeaseClient per thread, except Interrupt(),
// which any thread may call (it ends a blocking long-poll at once).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "client/client.h"
#include "core/error.h"

namespace acceptd::client {

// How long one lease request asks the server to hold when no job is there;
// the server caps it at 60 s.
inline constexpr Millis kDefaultLeaseWait{30'000};
inline constexpr Millis kMaxLeaseWait{60'000};

// One leased job: what the 200 answer of a lease request carried.
struct LeasedJob {
  std::string lease;      // Acceptd-Lease: the opaque lease id
  std::string lease_url;  // absolute URL of the lease (Location, else {base}/v1/leases/{id})
  std::string job_id;     // Acceptd-Job-Id (32 hex)
  int attempt = 1;        // Acceptd-Attempt, 1 for the first
  int max_attempts = 0;   // Acceptd-Max-Attempts; 0 when not sent
  // Acceptd-Lease-Seconds: the lease runs out this long after the answer
  // unless a heartbeat extends it.
  Millis lease_duration{0};
  // Acceptd-Timeout-Seconds: the attempt's timeout, counted from the answer;
  // nullopt when not sent. No heartbeat extends the lease past it.
  std::optional<Millis> timeout;
  std::string content_type;  // of the payload ("" when none was sent)
  std::string payload;
};

struct LeaseOptions {
  Millis wait = kDefaultLeaseWait;  // ?wait=; zero answers at once
  std::optional<Millis> lease;      // ?lease=; nullopt: the queue's lease_duration
};

// The answer to a heartbeat.
struct HeartbeatReply {
  bool cancel_requested = false;  // stop, then Release: the job ends canceled
  // The lease now runs out this long after the answer (nullopt: not said).
  std::optional<Millis> lease_duration;
};

// The answer to complete, fail and release: the job's status document.
struct LeaseOutcome {
  std::string state;  // "succeeded", "queued" (to be retried), "failed", "canceled"; "" if absent
  boost::json::value document;
};

class LeaseClient {
 public:
  // No connection is made until the first request.
  explicit LeaseClient(ClientOptions options = {});

  const ClientOptions& options() const { return client_.options(); }

  // Long-polls for one job of `queue`. A job: the LeasedJob. No job within
  // options.wait: nullopt. Errors: 404 unknown queue (kNotFound), 409 the
  // queue is not external (kConflict), 503 shutting down (kUnavailable),
  // kInvalidArgument for a 200 answer that lacks the lease or job id
  // headers, or an interrupted request (kUnavailable).
  Result<std::optional<LeasedJob>> Lease(std::string_view queue, const LeaseOptions& options = {});

  // Extends the lease (by `lease`, or by the queue's lease_duration) and
  // reports `progress` when given. kStaleLease: stop working on the job.
  Result<HeartbeatReply> Heartbeat(std::string_view lease,
                                   std::optional<Millis> lease_duration = {},
                                   const std::optional<Progress>& progress = {});

  // The job succeeded with `result` (of `content_type`, unless empty).
  // kStaleLease: the result was not taken; kPayloadTooLarge: it is larger
  // than the server's limit (nothing changed: fail the job instead).
  Result<LeaseOutcome> Complete(std::string_view lease, std::string result,
                                std::string_view content_type);

  // The attempt failed: retried with the queue's backoff when `retryable`
  // and attempts remain, else the job failed. `detail` becomes the job's
  // error.message, `code` its error.type (a slug of letters, digits and
  // '_'; anything else, or empty, is left out: the server's default is
  // "worker_error"); `retry_after` asks for that delay before the next
  // attempt instead of the queue's backoff (a backend's Retry-After).
  Result<LeaseOutcome> Fail(std::string_view lease, std::string_view detail, bool retryable,
                            std::string_view code = {},
                            std::optional<Millis> retry_after = std::nullopt);

  // Gives the job back without spending the attempt (or lets a requested
  // cancel take effect).
  Result<LeaseOutcome> Release(std::string_view lease);

  // See Client::Interrupt.
  void Interrupt() { client_.Interrupt(); }

 private:
  Result<std::string> LeaseUrl(std::string_view lease, std::string_view action) const;
  Result<LeaseOutcome> Finish(std::string_view lease, std::string_view action, std::string body,
                              std::string_view content_type);

  Client client_;
};

// ---------------------------------------------------------------------------
// Pure pieces (unit-tested).

// Seconds in a header ("30", "2.5") as a duration; nullopt unless a finite,
// non-negative number (at most a day).
std::optional<Millis> ParseSecondsHeader(std::string_view value);

// The answer of a lease request: a job (200), none (204), or the error.
Result<std::optional<LeasedJob>> ParseLeaseResponse(HttpResponse response);

// The answer of a heartbeat (200 JSON) or the error (409: kStaleLease).
Result<HeartbeatReply> ParseHeartbeatResponse(const HttpResponse& response);

// The answer of complete, fail or release (200 JSON) or the error.
Result<LeaseOutcome> ParseLeaseOutcome(const HttpResponse& response);

// The heartbeat body for `progress`: {"percent":P,"message":M}.
std::string HeartbeatBody(const Progress& progress);

// The fail body: {"detail":D,"retryable":R[,"code":C][,"retry_after":S]},
// "code" only when C is a slug the server takes (1-64 letters, digits and
// '_'), "retry_after" in seconds.
std::string FailBody(std::string_view detail, bool retryable, std::string_view code,
                     std::optional<Millis> retry_after = std::nullopt);

// The Error of a non-success answer to a lease call (see above):
// `names_lease` for the calls after the lease itself.
Error LeaseErrorFromResponse(const HttpResponse& response, bool names_lease);

// True for errors that a worker should retry after a pause: the server
// could not be reached or answered 5xx, 503, 408 or 429.
bool IsRetryable(const Error& error);

}  // namespace acceptd::client
