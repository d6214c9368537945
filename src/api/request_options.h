// Pure parsers of the options the v1 API reads from a request: the query
// string, the submit options (?delay=&priority=&max_attempts=&timeout=
// &callback=), the long-poll time (?wait= / `Prefer: wait=N`) and the
// Idempotency-Key header (docs/api.md).
//
// No I/O and no engine: a callback URL is only taken apart here; whether its
// host resolves to an address the SSRF guard allows is the handler's check
// (it needs DNS). None of these functions throws; all are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "store/job_store.h"
#include "webhooks/address_policy.h"

namespace acceptd::api {

inline constexpr int kMaxAttemptsLimit = 1000;
inline constexpr Millis kMaxTimeout = 7LL * 24 * 3600 * 1000;
inline constexpr Millis kMaxDelay = 365LL * 24 * 3600 * 1000;
inline constexpr int64_t kMaxPriority = 1'000'000;
inline constexpr size_t kMaxIdempotencyKey = 255;

using QueryParamList = std::vector<std::pair<std::string, std::string>>;

// The percent-decoded query parameters of a request target ("/p?a=1&b=%20"),
// in order (repeats kept). Empty when the target has no '?'; nullopt when
// the target is not a valid origin-form (RFC 9112 3.2.1).
std::optional<QueryParamList> QueryParams(std::string_view target);

// A base-10 integer spelling the whole of `s` ("-5"; not "+5", " 5", "5s");
// nullopt otherwise or when it does not fit in int64_t.
std::optional<int64_t> ParseInt(std::string_view s);

// The options of a submit (POST /v1/queues/{queue}/jobs); unset: the
// queue's default.
struct SubmitOptions {
  std::optional<int> max_attempts;  // 1..kMaxAttemptsLimit
  std::optional<Millis> timeout;    // 1..kMaxTimeout ms
  std::optional<Millis> delay;      // 0..kMaxDelay ms
  std::optional<int> priority;      // -kMaxPriority..kMaxPriority
  std::string callback_url;         // empty: none; else parsed into `callback`
  webhooks::CallbackTarget callback;
};

// A query option refused: a 400 problem naming `option`, saying `why`
// (safe to show to the client).
struct OptionError {
  std::string option;
  std::string why;
};

// Reads the submit options from `params` in order: the first bad option is
// the error (an unknown key is one; `callback` is one unless
// `callbacks_enabled`); a repeated option takes its last value. On error
// `out` holds the options read before it.
std::optional<OptionError> ParseSubmitOptions(const QueryParamList& params, bool callbacks_enabled,
                                              SubmitOptions& out);

inline constexpr int kDefaultListLimit = 50;
inline constexpr int kMaxListLimit = 1000;

// A time given as RFC 3339 ("2026-12-05T12:00:00Z", fractions and offsets
// allowed) or as unix milliseconds ("1796472000000"); nullopt otherwise.
std::optional<UnixMillis> ParseTimeOption(std::string_view s);

// The options of GET /v1/jobs (docs/api.md) into `out` (whose tenant the
// caller sets): queue, state, limit, cursor, order, id, q, field + value,
// created_after, created_before. The first bad option is the error (an
// unknown key is one); a repeated option takes its last value. Empty id, q
// and field are no filter (a search form's empty boxes). The cursor follows
// `order`: before_seq when newest, after_seq when oldest.
std::optional<OptionError> ParseListOptions(const QueryParamList& params, ListParams& out);

// The `wait=N` preference (seconds, RFC 7240) of a Prefer header value, in
// ms; 0 if there is none. A malformed value is ignored, as RFC 7240 asks
// of preferences: another `wait=` in the header may still count.
Millis PreferredWait(std::string_view prefer);

// The long-poll time a status request asks for: the last `?wait=N` of the
// target if any (nullopt when it is malformed, or the query string is),
// else PreferredWait(prefer).
std::optional<Millis> RequestedWait(std::string_view target, std::string_view prefer);

// An Idempotency-Key header value: a token or a quoted string (the IETF
// draft's sf-string), 1..kMaxIdempotencyKey visible ASCII characters. The
// key without its quotes; nullopt if malformed.
std::optional<std::string> ParseIdempotencyKey(std::string_view value);

}  // namespace acceptd::api
