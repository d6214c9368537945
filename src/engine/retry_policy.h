// The retry schedule: exponential backoff with jitter, a pure function.
//
// The delay before attempt n+1 (after attempt n failed, n >= 1) is
//   min(max, base * 2^(n-1)) * (1 + jitter * (2u - 1)),  u uniform in [0, 1)
// clamped to [0, max]. With base = 1 s, max = 300 s: ~1, 2, 4, 8, ... 256, 300 s.
// Jitter spreads retries of jobs that failed together (thundering herd).
#pragma once

#include "engine/queue_config.h"

namespace acceptd {

// `failed_attempt` is the attempt number that just failed (1-based);
// `unit_random` is in [0, 1).
Millis BackoffDelay(const BackoffPolicy& policy, int failed_attempt, double unit_random);
// The same with a fresh random draw (a thread-local generator): what the
// engine uses for job retries and callback redeliveries alike.
Millis BackoffDelay(const BackoffPolicy& policy, int failed_attempt);

}  // namespace acceptd
