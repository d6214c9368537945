// handler = "http": an async facade in front of a slow synchronous backend.
// Each attempt is one request to the queue's `url` (docs/http_handler.md):
// the payload as the body with its content type, the configured method and
// headers, and
//   Idempotency-Key: <job id>   the same for every attempt of a job
//   Acceptd-Job-Id:  <job id>
//   Acceptd-Attempt: <n>        1 for the first attempt
// so the backend can tell a retry from a first attempt.
//
// Outcomes:
//   2xx                         succeeded: the response body, its Content-Type
//                               (application/octet-stream if it sent none)
//   408, 429, 5xx               retryable ("backend_status"); a Retry-After
//                               (seconds or HTTP-date) sets the next delay
//   no answer (DNS, connect,    retryable ("backend_unreachable")
//   TLS, reset, timeout)
//   other 1xx, 3xx, 4xx         failed, not retried ("backend_status"); the
//                               status and the start of the body in the error
//   body > max_result_bytes     failed, not retried ("result_too_large")
// Redirects are not followed.
//
// The requests go through the one outgoing client (outbound/http_client.h),
// without the callbacks' SSRF guard: the operator chose the URL. One I/O
// thread per queue, started by the first attempt, serves all its requests and
// keeps up to `concurrency` idle connections open for the next attempts.
// Run() blocks its worker thread until the answer, and aborts the request
// within ~20 ms once the attempt is cancelled or timed out.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/handler.h"
#include "engine/queue_config.h"

namespace acceptd {

// The factory registered as "http": checks the queue's http settings (a
// malformed url, a header acceptd sets itself) and returns kInvalidArgument
// whose detail names the key ("config key 'queues.render.url': ...").
Result<std::shared_ptr<Handler>> MakeHttpHandler(const QueueConfig& queue);

// A Retry-After value as a delay from `now`: delay-seconds ("120") or an
// HTTP-date (IMF-fixdate, RFC 850 or asctime form; a date in the past is 0).
// nullopt if it is neither.
std::optional<Millis> ParseRetryAfter(std::string_view value, UnixMillis now);

}  // namespace acceptd
