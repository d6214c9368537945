#include "api/request_options.h"

#include <gtest/gtest.h>

namespace acceptd::api {
namespace {

QueryParamList Params(std::string_view target) {
  auto p = QueryParams(target);
  EXPECT_TRUE(p.has_value()) << target;
  return p.value_or(QueryParamList{});
}

TEST(QueryParamsTest, DecodesInOrderKeepingRepeats) {
  EXPECT_TRUE(Params("/v1/jobs").empty());
  const QueryParamList want = {{"a", "1"}, {"b", " x"}, {"a", "2"}};
  EXPECT_EQ(Params("/v1/jobs?a=1&b=%20x&a=2"), want);
  EXPECT_EQ(QueryParams("/v1/jobs?a=%zz"), std::nullopt);
}

TEST(ParseIntTest, WholeTextOnly) {
  EXPECT_EQ(ParseInt("-5"), -5);
  EXPECT_EQ(ParseInt("+5"), std::nullopt);
  EXPECT_EQ(ParseInt(" 5"), std::nullopt);
  EXPECT_EQ(ParseInt("5s"), std::nullopt);
  EXPECT_EQ(ParseInt("99999999999999999999"), std::nullopt);
}

TEST(SubmitOptionsTest, ReadsEveryOptionLastValueWins) {
  SubmitOptions o;
  auto bad = ParseSubmitOptions(
      Params("/q?max_attempts=5&timeout=1.5&delay=0&priority=-7&priority=9&callback="
             "https%3A%2F%2Fexample.com%2Fhook"),
      true, o);
  ASSERT_FALSE(bad.has_value()) << bad->option << ": " << bad->why;
  EXPECT_EQ(o.max_attempts, 5);
  EXPECT_EQ(o.timeout, 1500);
  EXPECT_EQ(o.delay, 0);
  EXPECT_EQ(o.priority, 9);
  EXPECT_EQ(o.callback_url, "https://example.com/hook");
  EXPECT_TRUE(o.callback.tls);
  EXPECT_EQ(o.callback.host, "example.com");
}

TEST(SubmitOptionsTest, TheFirstBadOptionIsTheError) {
  struct Case {
    const char* query;
    const char* option;
  };
  for (const Case& c :
       {Case{"/q?max_attempts=0", "max_attempts"}, Case{"/q?max_attempts=1001", "max_attempts"},
        Case{"/q?timeout=0", "timeout"}, Case{"/q?timeout=604800.001", "timeout"},
        Case{"/q?delay=31536000.001", "delay"}, Case{"/q?delay=-1", "delay"},
        Case{"/q?priority=1000001", "priority"}, Case{"/q?priority=1e3", "priority"},
        Case{"/q?callback=ftp%3A%2F%2Fx%2F", "callback"},
        Case{"/q?colour=red&max_attempts=0", "colour"}}) {
    SubmitOptions o;
    auto bad = ParseSubmitOptions(Params(c.query), true, o);
    ASSERT_TRUE(bad.has_value()) << c.query;
    EXPECT_EQ(bad->option, c.option) << c.query;
    EXPECT_FALSE(bad->why.empty());
  }
}

TEST(SubmitOptionsTest, CallbackRefusedUnlessEnabled) {
  SubmitOptions o;
  auto bad = ParseSubmitOptions(Params("/q?callback=https%3A%2F%2Fexample.com%2F"), false, o);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->option, "callback");
  EXPECT_TRUE(o.callback_url.empty());
}

TEST(PreferredWaitTest, ReadsWaitAmongOtherPreferences) {
  EXPECT_EQ(PreferredWait(""), 0);
  EXPECT_EQ(PreferredWait("wait=10"), 10'000);
  EXPECT_EQ(PreferredWait("respond-async, wait=2.5"), 2'500);
  EXPECT_EQ(PreferredWait("handling=lenient;wait=3"), 3'000);
  EXPECT_EQ(PreferredWait("nowait=3"), 0);            // not the `wait` preference
  EXPECT_EQ(PreferredWait("wait=x, wait=7"), 7'000);  // a malformed one is ignored
  EXPECT_EQ(PreferredWait("wait=-1"), 0);
}

TEST(RequestedWaitTest, QueryWinsOverPrefer) {
  EXPECT_EQ(RequestedWait("/v1/jobs/x?wait=4", "wait=9"), 4'000);
  EXPECT_EQ(RequestedWait("/v1/jobs/x?wait=1&wait=2", ""), 2'000);
  EXPECT_EQ(RequestedWait("/v1/jobs/x", "wait=9"), 9'000);
  EXPECT_EQ(RequestedWait("/v1/jobs/x?wait=soon", "wait=9"), std::nullopt);
  EXPECT_EQ(RequestedWait("/v1/jobs/x?wait=%zz", ""), std::nullopt);
}

TEST(IdempotencyKeyTest, TokenOrQuotedVisibleAscii) {
  EXPECT_EQ(ParseIdempotencyKey("order-42"), "order-42");
  EXPECT_EQ(ParseIdempotencyKey("\"order-42\""), "order-42");
  EXPECT_EQ(ParseIdempotencyKey(std::string(255, 'k')), std::string(255, 'k'));
  EXPECT_EQ(ParseIdempotencyKey(std::string(256, 'k')), std::nullopt);
  EXPECT_EQ(ParseIdempotencyKey("\"\""), std::nullopt);
  EXPECT_EQ(ParseIdempotencyKey("a b"), std::nullopt);
  EXPECT_EQ(ParseIdempotencyKey("caf\xc3\xa9"), std::nullopt);
}

TEST(TimeOptionTest, Rfc3339OrUnixMillis) {
  EXPECT_EQ(ParseTimeOption("1700000000123"), 1'700'000'000'123);
  EXPECT_EQ(ParseTimeOption("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseTimeOption("2023-11-14T22:13:20.123Z"), 1'700'000'000'123);
  EXPECT_EQ(ParseTimeOption("2023-11-14T22:13:20.1Z"), 1'700'000'000'100);
  EXPECT_EQ(ParseTimeOption("2023-11-14T22:13:20.123456Z"), 1'700'000'000'123);
  EXPECT_EQ(ParseTimeOption("2023-11-15T00:13:20+02:00"), 1'700'000'000'000);
  EXPECT_EQ(ParseTimeOption("2023-11-14T21:13:20-01:00"), 1'700'000'000'000);
  EXPECT_EQ(ParseTimeOption("2000-02-29T00:00:00Z"), 951'782'400'000);
  for (const char* bad : {"", "yesterday", "2023-11-14", "2023-11-14T22:13:20",
                          "2023-13-01T00:00:00Z", "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zx",
                          "2023-11-14T25:00:00Z", "2023-11-14T22:13:20+0200"}) {
    EXPECT_EQ(ParseTimeOption(bad), std::nullopt) << bad;
  }
}

TEST(ListOptionsTest, ReadsSearchFiltersAndTheCursorFollowsTheOrder) {
  ListParams p;
  EXPECT_FALSE(ParseListOptions(*QueryParams("/v1/jobs?queue=q&state=failed&limit=7&cursor=9&"
                                             "id=01AB&q=a%20b&field=c.d&value=42&"
                                             "created_after=5&created_before=2023-11-14T22:13:20Z"),
                                p));
  EXPECT_EQ(p.queue, "q");
  EXPECT_EQ(p.state, JobState::kFailed);
  EXPECT_EQ(p.limit, 7);
  EXPECT_EQ(p.before_seq, 9);
  EXPECT_EQ(p.after_seq, std::nullopt);
  EXPECT_EQ(p.id_prefix, "01ab");
  EXPECT_EQ(p.text, "a b");
  ASSERT_TRUE(p.field.has_value());
  EXPECT_EQ(p.field->path, (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(p.field->value, "42");
  EXPECT_EQ(p.created_after, 5);
  EXPECT_EQ(p.created_before, 1'700'000'000'000);
  EXPECT_TRUE(p.IsSearch());

  ListParams o;
  EXPECT_FALSE(ParseListOptions(*QueryParams("/v1/jobs?cursor=9&order=oldest&q=&id=&field="), o));
  EXPECT_EQ(o.order, ListOrder::kOldest);
  EXPECT_EQ(o.after_seq, 9);
  EXPECT_EQ(o.before_seq, std::nullopt);
  EXPECT_FALSE(o.IsSearch()) << "empty search boxes are no filter";
}

TEST(ListOptionsTest, TheFirstBadOptionIsTheError) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"?id=0g", "id"},
      {"?id=" + std::string(33, '0'), "id"},
      {"?field=a..b&value=1", "field"},
      {"?field=.a&value=1", "field"},
      {"?field=a%22b&value=1", "field"},
      {"?field=a", "value"},
      {"?value=1", "value"},
      {"?order=new", "order"},
      {"?created_after=soon", "created_after"},
      {"?limit=0", "limit"},
      {"?cursor=-1", "cursor"},
      {"?nope=1", "nope"},
  };
  for (const auto& [query, option] : bad) {
    ListParams p;
    auto err = ParseListOptions(*QueryParams("/v1/jobs" + query), p);
    ASSERT_TRUE(err.has_value()) << query;
    EXPECT_EQ(err->option, option) << query;
  }
}

}  // namespace
}  // namespace acceptd::api
