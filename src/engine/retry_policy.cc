#include "engine/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace acceptd {

Millis BackoffDelay(const BackoffPolicy& policy, int failed_attempt, double unit_random) {
  const int exponent = std::clamp(failed_attempt - 1, 0, 62);
  const double raw = std::ldexp(static_cast<double>(policy.base), exponent);
  const double capped = std::min(raw, static_cast<double>(policy.max));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double factor = 1.0 + jitter * (2.0 * unit_random - 1.0);
  const double delay = std::clamp(capped * factor, 0.0, static_cast<double>(policy.max));
  return static_cast<Millis>(std::llround(delay));
}

Millis BackoffDelay(const BackoffPolicy& policy, int failed_attempt) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return BackoffDelay(policy, failed_attempt,
                      std::uniform_real_distribution<double>(0.0, 1.0)(rng));
}

}  // namespace acceptd
