// Metrics: counters and histograms cheap enough for the submit and poll
// paths, and the Prometheus text exposition format (version 0.0.4) that
// shows them on GET /metrics.
//
// There is no registry. Each component owns its metrics as plain members,
// counts into them where the event happens, and writes them into a
// MetricsText when a scrape asks (the component knows its label values:
// queue names, route templates). What a scrape does not ask for costs
// nothing.
//
// Cost: Counter::Add and Histogram::Observe are relaxed atomic additions,
// no lock and no allocation; a histogram finds its bucket among a dozen
// bounds. Values are read without stopping the writers, so one scrape may
// see a counter a few events ahead of a histogram's count; each value on
// its own only grows, which is what Prometheus requires of counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace acceptd::metrics {

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A gauge someone sets or moves (connections open, waiters).
class Gauge {
 public:
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Observations counted into fixed buckets (upper bounds, inclusive, in the
// unit observed: seconds for durations), plus their sum and count.
class Histogram {
 public:
  // `bounds`: ascending and finite; +Inf is implied.
  explicit Histogram(std::span<const double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (= count)
    uint64_t count = 0;
    double sum = 0;
  };
  // The buckets as Prometheus shows them (cumulative); `count` is the +Inf
  // bucket's, so the two always agree.
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1: the last is +Inf
  std::atomic<double> sum_{0};
};

// Bucket bounds used across acceptd (seconds): from 100 µs (a poll, a
// commit) to an hour (a long job, a long wait in a queue).
std::span<const double> DurationBuckets();
// Request durations: 100 µs to 60 s (a long-poll waits up to max_wait).
std::span<const double> RequestDurationBuckets();
// Operations per store commit: 1 to 4096.
std::span<const double> BatchSizeBuckets();

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// The text exposition format: a family's HELP and TYPE lines, then its
// samples. Names must match [a-zA-Z_:][a-zA-Z0-9_:]* (the caller's
// constants); label values and help texts are escaped here.
class MetricsText {
 public:
  // "counter", "gauge" or "histogram". Once per family, before its samples.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, double value);
  void Sample(std::string_view name, Labels labels, uint64_t value);
  void Sample(std::string_view name, Labels labels, int64_t value);
  // `name`_bucket{..., le="..."} for each bound and +Inf, `name`_sum, `name`_count.
  void Histogram(std::string_view name, Labels labels, const Histogram::Snapshot& h);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Name(std::string_view name, Labels labels, std::string_view le = {});
  std::string out_;
};

// `value` in the format's float syntax: shortest round-trip decimal, +Inf, -Inf, NaN.
std::string FormatValue(double value);

}  // namespace acceptd::metrics
