#include "core/metrics.h"

#include <thread>

#include <gtest/gtest.h>

namespace acceptd::metrics {
namespace {

TEST(MetricsTest, CountersAddFromManyThreads) {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10'000; ++i) c.Add();
    });
  }
  for (auto& t : threads) t.join();
  c.Add(5);
  EXPECT_EQ(c.Value(), 40'005u);
}

TEST(MetricsTest, HistogramBucketsAreInclusiveUpperBoundsAndCumulative) {
  static constexpr double kBounds[] = {1, 2, 5};
  Histogram h(kBounds);
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 7.0}) h.Observe(v);
  const auto s = h.Read();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 2u);  // <= 1: 0.5 and 1.0 (le is inclusive)
  EXPECT_EQ(s.cumulative[1], 4u);  // <= 2
  EXPECT_EQ(s.cumulative[2], 5u);  // <= 5
  EXPECT_EQ(s.cumulative[3], 6u);  // +Inf
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 16.0);
}

TEST(MetricsTest, ValuesUseThePrometheusFloatSyntax) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(2.5), "2.5");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsTest, TextFormatEscapesLabelValuesAndHelp) {
  MetricsText out;
  out.Family("x_total", "counter", "Help with a \\ and a\nline feed.");
  out.Sample("x_total", {{"queue", "a\"b\\c\nd"}, {"state", "queued"}}, uint64_t{7});
  out.Sample("x_total", {}, int64_t{-1});
  EXPECT_EQ(out.text(),
            "# HELP x_total Help with a \\\\ and a\\nline feed.\n"
            "# TYPE x_total counter\n"
            "x_total{queue=\"a\\\"b\\\\c\\nd\",state=\"queued\"} 7\n"
            "x_total -1\n");
}

TEST(MetricsTest, HistogramTextHasBucketsSumAndCount) {
  static constexpr double kBounds[] = {0.5, 1};
  Histogram h(kBounds);
  h.Observe(0.25);
  h.Observe(3);
  MetricsText out;
  out.Histogram("d_seconds", {{"route", "/a"}}, h.Read());
  EXPECT_EQ(out.text(),
            "d_seconds_bucket{route=\"/a\",le=\"0.5\"} 1\n"
            "d_seconds_bucket{route=\"/a\",le=\"1\"} 1\n"
            "d_seconds_bucket{route=\"/a\",le=\"+Inf\"} 2\n"
            "d_seconds_sum{route=\"/a\"} 3.25\n"
            "d_seconds_count{route=\"/a\"} 2\n");
}

TEST(MetricsTest, StandardBucketsAscend) {
  for (auto bounds : {DurationBuckets(), RequestDurationBuckets(), BatchSizeBuckets()}) {
    EXPECT_TRUE(std::is_sorted(bounds.begin(), bounds.end()));
    EXPECT_TRUE(std::adjacent_find(bounds.begin(), bounds.end()) == bounds.end());
  }
}

}  // namespace
}  // namespace acceptd::metrics
