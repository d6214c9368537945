// The client library's pure pieces: Retry-After parsing (both RFC 9110
// forms), URL resolution of Locations, query parameters, seconds formatting
// and the mapping of error answers to Error values.
#include <chrono>

#include <gtest/gtest.h>

#include "client/client.h"

namespace acceptd::client {
namespace {

using std::chrono::system_clock;

// 1994-11-06T08:49:37Z, the RFC 9110 example date.
system_clock::time_point ExampleDate() { return system_clock::from_time_t(784111777); }

TEST(ClientRetryAfterTest, DelaySeconds) {
  const auto now = system_clock::now();
  EXPECT_EQ(ParseRetryAfter("1", now), Millis(1000));
  EXPECT_EQ(ParseRetryAfter("0", now), Millis(0));
  EXPECT_EQ(ParseRetryAfter(" 120 ", now), Millis(120'000));
}

TEST(ClientRetryAfterTest, HugeDelaySaturatesAtADay) {
  const auto now = system_clock::now();
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), Millis(86'400'000));
  EXPECT_EQ(ParseRetryAfter("86401", now), Millis(86'400'000));
}

TEST(ClientRetryAfterTest, MalformedIsNullopt) {
  const auto now = system_clock::now();
  for (const char* bad : {"", "  ", "-1", "1.5", "abc", "1s", "Sun, 06 Nov 1994",
                          "Sun, 06 Nov 1994 08:49:37 UTC+1"}) {
    EXPECT_EQ(ParseRetryAfter(bad, now), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ClientRetryAfterTest, HttpDateInAllThreeForms) {
  const auto now = ExampleDate() - std::chrono::seconds(5);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), Millis(5000));
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), Millis(5000));
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now), Millis(5000));
}

TEST(ClientRetryAfterTest, HttpDateInThePastIsZero) {
  const auto now = ExampleDate() + std::chrono::hours(1);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), Millis(0));
}

TEST(ClientUrlTest, ResolvesAbsolutePathAgainstTheRequestUrl) {
  auto r = ResolveUrl("http://127.0.0.1:8000/v1/queues/greeting/jobs", "/v1/jobs/abc");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, "http://127.0.0.1:8000/v1/jobs/abc");
}

TEST(ClientUrlTest, ResolvesRelativePathsAndDotSegments) {
  auto r = ResolveUrl("http://h:1/api/ops/7?wait=3", "result");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://h:1/api/ops/result");
  r = ResolveUrl("http://h:1/api/ops/7", "../things/7");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://h:1/api/things/7");
  r = ResolveUrl("http://h:1/a/b", "?page=2");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://h:1/a/b?page=2");
}

TEST(ClientUrlTest, AbsoluteLocationWinsEvenOnAnotherHost) {
  auto r = ResolveUrl("http://h:1/v1/jobs/x", "http://blobs.example:9000/r/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://blobs.example:9000/r/x");
  r = ResolveUrl("http://h:1/v1/jobs/x", "//other:2/p");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://other:2/p");
}

TEST(ClientUrlTest, RejectsBadBases) {
  EXPECT_FALSE(ResolveUrl("not a url", "/x"));
  EXPECT_FALSE(ResolveUrl("/relative/base", "/x"));
  EXPECT_FALSE(ResolveUrl("ftp://h/x", "/x"));
  auto r = ResolveUrl("foo", "/x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().detail.find("foo"), std::string::npos) << r.error().detail;
}

TEST(ClientUrlTest, WithQueryParamAddsOrReplaces) {
  auto r = WithQueryParam("http://h/v1/jobs/x", "wait", "30");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://h/v1/jobs/x?wait=30");
  r = WithQueryParam("http://h/status?token=a%20b&wait=1", "wait", "0.5");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "http://h/status?token=a%20b&wait=0.5");
}

TEST(ClientFormatSecondsTest, ShortestDecimal) {
  EXPECT_EQ(FormatSeconds(Millis(30'000)), "30");
  EXPECT_EQ(FormatSeconds(Millis(500)), "0.5");
  EXPECT_EQ(FormatSeconds(Millis(1250)), "1.25");
  EXPECT_EQ(FormatSeconds(Millis(1001)), "1.001");
  EXPECT_EQ(FormatSeconds(Millis(0)), "0");
  EXPECT_EQ(FormatSeconds(Millis(-5)), "0");
}

HttpResponse Problem(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.reason = "Reason";
  r.headers = {{"Content-Type", "application/problem+json"}};
  r.body = std::move(body);
  r.url = "http://h/v1/jobs/x";
  return r;
}

TEST(ClientErrorTest, ProblemDocumentBecomesOneLine) {
  Error e =
      ErrorFromResponse(Problem(404, R"({"type":"about:blank","title":"Not Found","status":404,)"
                                     R"("detail":"no such\njob","code":"not_found"})"));
  EXPECT_EQ(e.code, ErrorCode::kNotFound);
  EXPECT_EQ(e.detail, "Not Found (404): no such job");
}

TEST(ClientErrorTest, StatusesMapToCodes) {
  EXPECT_EQ(ErrorFromResponse(Problem(400, "{}")).code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorFromResponse(Problem(409, "{}")).code, ErrorCode::kConflict);
  EXPECT_EQ(ErrorFromResponse(Problem(410, "{}")).code, ErrorCode::kGone);
  EXPECT_EQ(ErrorFromResponse(Problem(413, "{}")).code, ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(ErrorFromResponse(Problem(422, "{}")).code, ErrorCode::kIdempotencyMismatch);
  EXPECT_EQ(ErrorFromResponse(Problem(503, R"({"code":"queue_full"})")).code,
            ErrorCode::kQueueFull);
  EXPECT_EQ(ErrorFromResponse(Problem(503, R"({"code":"unavailable"})")).code,
            ErrorCode::kUnavailable);
  EXPECT_EQ(ErrorFromResponse(Problem(500, "oops")).code, ErrorCode::kInternal);
  EXPECT_EQ(ErrorFromResponse(Problem(418, "")).code, ErrorCode::kInvalidArgument);
}

TEST(ClientErrorTest, NonProblemBodyNamesTheUrl) {
  Error e = ErrorFromResponse(Problem(500, "<html>oops</html>"));
  EXPECT_EQ(e.detail, "Reason (500) from http://h/v1/jobs/x");
}

TEST(ClientTest, BadBaseUrlIsAnErrorNotAnException) {
  ClientOptions o;
  o.base_url = "nonsense";
  Client c(o);
  auto st = c.Status("0123");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace acceptd::client
