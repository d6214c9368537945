// acceptd::client::Client: a blocking C++ client for the Asynchronous
// Request-Reply pattern, as served by acceptd and by any server that follows
// it (submit -> 202 + Location + Retry-After; status monitor -> 202 while
// pending, 302/303 + Location to the result when done, 200 when finished
// without a result).
//
// What it speaks: HTTP/1.1 over TCP (http://) or over TLS (https://, OpenSSL
// through Boost.Beast). One keep-alive connection is reused while requests go
// to the same origin (scheme, host and port); a request to another origin (an
// absolute Location, including one that switches between http and https)
// reconnects. Connecting (TCP connect plus the TLS handshake) and each request
// are bounded by ClientOptions::timeout (a long-poll adds its wait to that).
// Host names are resolved with the system resolver, which has its own timeout.
//
// TLS: the server's certificate is verified by default, against the system
// trust store plus ClientOptions::ca_file, and must name the URL's host (a DNS
// name, or an IP address for an address literal; RFC 6125). Host names are
// sent as SNI; address literals are not (RFC 6066). TLS 1.2 is the minimum.
// ClientOptions::insecure_skip_verify turns verification off (testing only).
//
// Generic servers: Status, Wait and FetchResult follow the URLs the server
// hands out (Location, resolved against the URL of the request that returned
// it, RFC 3986) and never build paths of their own from an absolute or
// relative URL. Only a bare job id (no '/' and no scheme) is turned into
// acceptd's `/v1/jobs/{id}` under ClientOptions::base_url; Submit, Cancel,
// List and Queues use acceptd's routes.
//
// Errors are values: every method returns Result<T> and never throws.
//   - the server could not be reached, or the connection broke:
//       kUnavailable, detail "cannot connect to http://host:port: <reason>" or
//       "request to <url> failed: <reason>";
//   - the TLS handshake failed (an untrusted certificate, one that does not
//       name the host, no common protocol version, a timeout): kUnavailable,
//       detail "TLS handshake with https://host:port failed: <reason>", e.g.
//       "certificate verify failed (self-signed certificate)";
//   - the server answered an error status (4xx/5xx, or an unexpected one):
//       the code mapped from the status (400 kInvalidArgument, 404 kNotFound,
//       409 kConflict, 410 kGone, 413 kPayloadTooLarge, 422
//       kIdempotencyMismatch, 503 kQueueFull when the problem's code is
//       queue_full else kUnavailable, other 5xx kInternal, other 4xx
//       kInvalidArgument), detail "<title> (<status>): <detail>" taken from an
//       RFC 9457 problem document when there is one;
//   - a bad argument (malformed URL, empty queue, a ca_file that cannot be
//       loaded): kInvalidArgument. ca_file is loaded at the first https
//       request, before any connection is made.
// `detail` is always one line, fit to print after "acceptd: ".
//
// Thread safety: a Client is not thread-safe (it owns one connection); use
// one per thread. Methods block the calling thread. Interrupt() alone may be
// called from any thread, to end a blocking request (a long-poll) early.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "core/error.h"

namespace acceptd::client {

using Millis = std::chrono::milliseconds;
using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view kDefaultServer = "http://127.0.0.1:8000";
// Connect, write and read limit of one request (a long-poll adds its wait).
inline constexpr Millis kDefaultTimeout{30'000};
// How long one long-poll asks the server to hold (`?wait=N`); acceptd caps
// it at its server.max_wait (60 s by default).
inline constexpr Millis kDefaultPollWait{30'000};
// Sleep between polls when a pending answer has no usable Retry-After.
inline constexpr Millis kDefaultRetryAfter{1'000};
// Bounds on the sleep taken from Retry-After: never spin, never sleep for
// longer than a minute at a time (the next answer may say more).
inline constexpr Millis kMinRetryAfter{100};
inline constexpr Millis kMaxRetryAfter{60'000};
// Largest response body read (results can be large; the server's own limit
// on submits is 1 MiB by default).
inline constexpr uint64_t kMaxResponseBody = 256ull << 20;
// Redirects followed by FetchResult (a result may live elsewhere).
inline constexpr int kMaxRedirects = 5;

struct ClientOptions {
  // Where acceptd's routes live: "http://host[:port][/prefix]".
  std::string base_url = std::string(kDefaultServer);
  Millis timeout = kDefaultTimeout;
  std::string user_agent = "acceptd-client/0.1";
  // PEM file of CA certificates trusted for https, in addition to the system
  // trust store (e.g. a private CA, or a self-signed server certificate).
  // Empty: the system trust store only.
  std::string ca_file;
  // For testing only: accept any server certificate (no chain, expiry or
  // host-name check). The connection is still encrypted but not
  // authenticated, so anyone on the path can read and alter it.
  bool insecure_skip_verify = false;
  // An acceptd API key, sent as `Authorization: Bearer <key>` on requests to
  // base_url's origin only (scheme, host and port): a Location pointing
  // elsewhere never receives it. Empty: no Authorization header.
  std::string api_key;
  // How Wait sleeps (the fallback when a server does not hold a long-poll).
  // Injected so tests can observe the sleeps without taking them.
  std::function<void(Millis)> sleep;  // empty: std::this_thread::sleep_for
};

// One HTTP response, as received.
struct HttpResponse {
  int status = 0;
  std::string reason;
  Headers headers;
  std::string body;
  std::string url;  // the absolute URL that answered

  // The first header of that name (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

struct Progress {
  int percent = 0;
  std::string message;
};

// What the server said about a job: the answer of a submit, a status
// request, a long-poll or a cancel.
struct JobStatus {
  int http_status = 0;                // 202 pending; 302/303 succeeded; 200 finished
  boost::json::value document;        // the body parsed as JSON (null if it is not JSON)
  std::string body;                   // the body as received
  std::string id;                     // document "id", or ""
  std::string state;                  // document "state"; "succeeded" for a 302/303 without one
  std::optional<Progress> progress;   // document "progress" when it is an object
  std::string status_url;             // absolute URL of the status monitor
  std::string result_url;             // absolute Location of a 302/303, else ""
  std::optional<Millis> retry_after;  // Retry-After, if present and valid
  bool replayed = false;              // Idempotent-Replayed: true (a repeated Idempotency-Key)

  // 202 (or 201): the job is queued or running.
  bool pending() const { return http_status == 202 || http_status == 201; }
  bool succeeded() const { return !pending() && (!result_url.empty() || state == "succeeded"); }
  bool terminal() const { return !pending(); }
};

// The bytes of a result.
struct JobResult {
  int http_status = 0;
  std::string content_type;
  std::string body;
  std::string url;  // absolute URL the bytes came from (after redirects)
};

// Query options and headers of a submit; unset members are not sent.
struct SubmitOptions {
  std::string idempotency_key;  // Idempotency-Key header
  std::string callback;         // ?callback=<url>: webhook on completion
  std::optional<int> max_attempts;
  std::optional<int> priority;
  std::optional<double> timeout_seconds;  // per attempt
  std::optional<double> delay_seconds;
  std::optional<double> prefer_wait_seconds;  // Prefer: wait=N (303/200 if done in time)
};

struct WaitOptions {
  // Give up at this time and return the last pending status (not an error).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // The hold asked of the server per request (`?wait=N`); zero: no `wait`
  // parameter at all, poll by Retry-After only. A short hold (say 1 s) gives
  // on_progress a chance to see progress, which does not end a long-poll.
  Millis poll_wait = kDefaultPollWait;
  // Called with every pending answer (and not with the final one).
  std::function<void(const JobStatus&)> on_progress;
};

struct ListOptions {
  std::string queue;
  std::string state;
  std::optional<int> limit;
  std::string cursor;
};

class Client {
 public:
  // No connection is made until the first request. A malformed base_url is
  // reported by the first request (kInvalidArgument).
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }

  // POST {base}/v1/queues/{queue}/jobs with `body` as the payload (and
  // `content_type`, unless empty). Success: 202 (pending, status_url from
  // Location), or, with prefer_wait_seconds, 303/200 when finished in time.
  // A 503 (queue full, shutting down) is an error (kQueueFull/kUnavailable).
  Result<JobStatus> Submit(std::string_view queue, std::string body,
                           std::string_view content_type = {}, const SubmitOptions& options = {});

  // One GET of the status monitor, without following its 302/303 (the
  // Location is returned as result_url). `job` is a status URL (absolute,
  // or relative to base_url) or a bare acceptd job id.
  Result<JobStatus> Status(std::string_view job);

  // Polls the status monitor until the job is terminal or options.deadline
  // passes; the final status (result_url set when it succeeded), or the last
  // pending one at the deadline. Each request long-polls with `?wait=N`;
  // when a pending answer comes back well before N (a server that ignores
  // `wait`), sleeps its Retry-After (default 1 s, within [100 ms, 60 s], and
  // never past the deadline) before asking again.
  Result<JobStatus> Wait(std::string_view job, const WaitOptions& options = {});

  // GET of a result URL (absolute, or relative to base_url) or, for a bare
  // job id, of {base}/v1/jobs/{id}/result; follows up to kMaxRedirects
  // redirects. 200: the bytes; otherwise an error (acceptd: 409 kConflict
  // while the job has no result).
  Result<JobResult> FetchResult(std::string_view result);

  // POST {status url}/cancel (acceptd's route). 200: canceled; 202: cancel
  // requested for a running job. A finished job is kConflict.
  Result<JobStatus> Cancel(std::string_view job);

  // GET {base}/v1/jobs and GET {base}/v1/queues: the JSON body as parsed.
  Result<boost::json::value> List(const ListOptions& options = {});
  Result<boost::json::value> Queues();

  // Any request: `url` absolute or relative to base_url. Any HTTP status is
  // a success here; only transport failures and bad URLs are errors.
  // `extra_timeout` is added to options().timeout for this request.
  Result<HttpResponse> Send(std::string_view method, std::string_view url, std::string body = {},
                            const Headers& headers = {}, Millis extra_timeout = Millis{0});

  // Thread-safe, and final: the request in progress (if any) and every later
  // one fail at once with kUnavailable, detail "request to <url>
  // interrupted". A request whose response was already read is unaffected.
  // For a worker that stops long-polling when it is asked to shut down.
  void Interrupt();
  bool interrupted() const;

 private:
  struct Connection;
  Result<std::string> ApiUrl(std::initializer_list<std::string_view> segments) const;
  Result<std::string> JobUrl(std::string_view job) const;
  void Sleep(Millis d) const;

  ClientOptions options_;
  std::unique_ptr<Connection> conn_;
};

// ---------------------------------------------------------------------------
// Pure helpers (exposed for tests and the CLI).

// The Retry-After value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date in
// IMF-fixdate, RFC 850 or asctime form, as a delay from `now` (a date in the
// past is 0). nullopt if malformed. Very large values saturate at a day.
std::optional<Millis> ParseRetryAfter(std::string_view value,
                                      std::chrono::system_clock::time_point now);

// `reference` (a URL or a relative reference such as "/v1/jobs/x" or
// "../r") resolved against the absolute `base` (RFC 3986 §5). Only
// http/https bases are accepted.
Result<std::string> ResolveUrl(std::string_view base, std::string_view reference);

// `url` with the query parameter `key` set to `value` (replacing any).
Result<std::string> WithQueryParam(std::string_view url, std::string_view key,
                                   std::string_view value);

// Seconds as the shortest decimal with at most millisecond precision:
// 30000 ms -> "30", 500 ms -> "0.5", 1250 ms -> "1.25".
std::string FormatSeconds(Millis d);

// The Error for a non-success HTTP response (see the mapping above).
Error ErrorFromResponse(const HttpResponse& response);

}  // namespace acceptd::client
