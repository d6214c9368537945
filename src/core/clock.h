// Clock: the one source of wall-clock time for the engine and the store.
//
// Times are Unix milliseconds (UnixMillis). Production code uses SystemClock;
// tests inject FakeClock and move it by hand. Implementations are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace acceptd {

using UnixMillis = int64_t;
using Millis = int64_t;  // a duration in milliseconds

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixMillis Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixMillis Now() const override;
  static SystemClock& Instance();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixMillis start = 1'700'000'000'000) : now_(start) {}
  UnixMillis Now() const override { return now_.load(); }
  void Advance(Millis by) { now_ += by; }
  void Set(UnixMillis to) { now_ = to; }

 private:
  std::atomic<UnixMillis> now_;
};

// "2026-11-24T13:05:07.123Z" (RFC 3339, UTC, milliseconds).
std::string FormatRfc3339(UnixMillis t);

// Seconds (fractions allowed, e.g. "1.5") to milliseconds; nullopt unless the
// text is a finite, non-negative number.
std::optional<Millis> ParseSeconds(std::string_view text);

}  // namespace acceptd
