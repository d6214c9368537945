#include "core/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace acceptd::metrics {

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double value) {
  // The first bound at or above the value: bounds are inclusive ("le").
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  buckets_[static_cast<size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::span<const double> DurationBuckets() {
  static constexpr double kBounds[] = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,    0.25,  0.5,    1,     2.5,  5,
                                       10,     30,     60,    300,    900,   3600};
  return kBounds;
}

std::span<const double> RequestDurationBuckets() {
  static constexpr double kBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                       1,      2.5,     5,      10,    30,     60};
  return kBounds;
}

std::span<const double> BatchSizeBuckets() {
  static constexpr double kBounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  return kBounds;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Whole numbers without an exponent or a fraction up to 2^53, as counters read.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

namespace {

// HELP: backslash and line feed escaped. Label values: also the double quote.
void AppendEscaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (quote) {
          out += "\\\"";
          break;
        }
        [[fallthrough]];
      default:
        out += c;
    }
  }
}

}  // namespace

void MetricsText::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  AppendEscaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void MetricsText::Name(std::string_view name, Labels labels, std::string_view le) {
  out_ += name;
  if (labels.size() == 0 && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += key;
    out_ += "=\"";
    AppendEscaped(out_, value, true);
    out_ += '"';
  }
  if (!le.empty()) {
    if (!first) out_ += ',';
    out_ += "le=\"";
    out_ += le;
    out_ += '"';
  }
  out_ += '}';
}

void MetricsText::Sample(std::string_view name, Labels labels, double value) {
  Name(name, labels);
  out_ += ' ';
  out_ += FormatValue(value);
  out_ += '\n';
}

void MetricsText::Sample(std::string_view name, Labels labels, uint64_t value) {
  Name(name, labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void MetricsText::Sample(std::string_view name, Labels labels, int64_t value) {
  Name(name, labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void MetricsText::Histogram(std::string_view name, Labels labels, const Histogram::Snapshot& h) {
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i <= h.bounds.size(); ++i) {
    const std::string le = i < h.bounds.size() ? FormatValue(h.bounds[i]) : "+Inf";
    Name(bucket, labels, le);
    fmt::format_to(std::back_inserter(out_), " {}\n", h.cumulative[i]);
  }
  Sample(std::string(name) + "_sum", labels, h.sum);
  Sample(std::string(name) + "_count", labels, h.count);
}

}  // namespace acceptd::metrics
