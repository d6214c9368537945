#include "engine/retry_policy.h"

#include <gtest/gtest.h>

#include <climits>
#include <cmath>

namespace acceptd {
namespace {

constexpr double kUnitRandoms[] = {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999};

TEST(RetryPolicyTest, DocumentedScheduleWithoutJitter) {
  // base = 1 s, max = 300 s: 1, 2, 4, ... 256, 300, 300 s.
  BackoffPolicy p{1'000, 300'000, 0.0};
  const Millis expected[] = {1'000,  2'000,   4'000,   8'000,   16'000,  32'000,
                             64'000, 128'000, 256'000, 300'000, 300'000, 300'000};
  for (int attempt = 1; attempt <= 12; ++attempt) {
    for (double u : kUnitRandoms) {
      EXPECT_EQ(BackoffDelay(p, attempt, u), expected[attempt - 1])
          << "attempt " << attempt << " u " << u;
    }
  }
}

TEST(RetryPolicyTest, DefaultPolicyIsTheDocumentedOne) {
  BackoffPolicy p;
  EXPECT_EQ(p.base, 1'000);
  EXPECT_EQ(p.max, 300'000);
  EXPECT_DOUBLE_EQ(p.jitter, 0.2);
  // u = 0.5 is the middle of the jitter range: no jitter at all.
  EXPECT_EQ(BackoffDelay(p, 1, 0.5), 1'000);
  EXPECT_EQ(BackoffDelay(p, 9, 0.5), 256'000);
  EXPECT_EQ(BackoffDelay(p, 10, 0.5), 300'000);
}

TEST(RetryPolicyTest, JitterStaysWithinItsBoundsAndTheCap) {
  BackoffPolicy p{1'000, 300'000, 0.2};
  for (int attempt = 1; attempt <= 15; ++attempt) {
    const double nominal = std::min(1'000.0 * std::pow(2.0, attempt - 1), 300'000.0);
    for (double u : kUnitRandoms) {
      Millis d = BackoffDelay(p, attempt, u);
      EXPECT_GE(d, std::floor(nominal * 0.8)) << "attempt " << attempt << " u " << u;
      EXPECT_LE(d, std::ceil(nominal * 1.2)) << "attempt " << attempt << " u " << u;
      EXPECT_LE(d, 300'000) << "never above max, jitter included";
      EXPECT_GE(d, 0);
    }
  }
  // The extremes of u reach the bounds.
  EXPECT_EQ(BackoffDelay(p, 1, 0.0), 800);
  EXPECT_NEAR(static_cast<double>(BackoffDelay(p, 1, 0.999999)), 1'200.0, 1.0);
  // At the cap, jitter can only shorten the delay.
  EXPECT_EQ(BackoffDelay(p, 20, 0.0), 240'000);
  EXPECT_EQ(BackoffDelay(p, 20, 0.999999), 300'000);
}

TEST(RetryPolicyTest, JitterSpreadsDelays) {
  BackoffPolicy p{10'000, 300'000, 0.5};
  EXPECT_LT(BackoffDelay(p, 2, 0.1), BackoffDelay(p, 2, 0.9));
  EXPECT_EQ(BackoffDelay(p, 2, 0.1), 12'000);  // 20 s * (1 + 0.5 * (0.2 - 1))
  EXPECT_EQ(BackoffDelay(p, 2, 0.9), 28'000);  // 20 s * (1 + 0.5 * (1.8 - 1))
}

TEST(RetryPolicyTest, MonotonicBeforeTheCapForAnyFixedRandom) {
  for (double jitter : {0.0, 0.2, 0.5, 1.0}) {
    BackoffPolicy p{500, 1'000'000, jitter};
    for (double u : kUnitRandoms) {
      Millis prev = -1;
      for (int attempt = 1; attempt <= 30; ++attempt) {
        Millis d = BackoffDelay(p, attempt, u);
        EXPECT_GE(d, prev) << "jitter " << jitter << " u " << u << " attempt " << attempt;
        if (u > 0.0 && jitter < 1.0 && 500.0 * std::pow(2.0, attempt - 1) < 1'000'000 / 2.0) {
          EXPECT_GT(d, prev) << "strictly growing well before the cap";
        }
        prev = d;
      }
    }
  }
}

TEST(RetryPolicyTest, OutOfRangeInputsAreClamped) {
  // Jitter outside 0..1 is clamped.
  BackoffPolicy wild{1'000, 300'000, 5.0};
  EXPECT_EQ(BackoffDelay(wild, 1, 0.0), 0);
  EXPECT_LE(BackoffDelay(wild, 1, 0.999999), 2'000);
  BackoffPolicy negative{1'000, 300'000, -1.0};
  EXPECT_EQ(BackoffDelay(negative, 3, 0.0), 4'000);
  // Attempts below 1 count as the first; huge attempts hit the cap, no overflow.
  BackoffPolicy p{1'000, 300'000, 0.0};
  EXPECT_EQ(BackoffDelay(p, 0, 0.5), 1'000);
  EXPECT_EQ(BackoffDelay(p, -5, 0.5), 1'000);
  EXPECT_EQ(BackoffDelay(p, 64, 0.5), 300'000);
  EXPECT_EQ(BackoffDelay(p, 1'000, 0.5), 300'000);
  EXPECT_EQ(BackoffDelay(p, INT_MAX, 0.5), 300'000);
  // max below base: every delay is max.
  BackoffPolicy small_max{1'000, 300, 0.0};
  EXPECT_EQ(BackoffDelay(small_max, 1, 0.5), 300);
  // A zero base retries at once.
  BackoffPolicy zero{0, 300'000, 0.2};
  EXPECT_EQ(BackoffDelay(zero, 5, 0.9), 0);
}

}  // namespace
}  // namespace acceptd
