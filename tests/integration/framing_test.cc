// Request framing against the real binary (src/http/request_framing.h,
// RFC 9112): exact bytes on a raw socket, each a submit to the echo queue.
// A request whose framing a proxy could read differently is refused with a
// problem document, the connection closes, and no job is created; the
// well-formed variants next to them are served.
#include <gtest/gtest.h>
#include <boost/beast/core/string.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

constexpr char kSubmit[] =
    "POST /v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n";
constexpr char kSubmitNoHost[] =
    "POST /v1/queues/echo/jobs HTTP/1.1\r\nContent-Type: text/plain\r\n";
constexpr char kChunkedHello[] = "5\r\nhello\r\n0\r\n\r\n";

size_t JobCount(const ServerProcess& s) {
  HttpResponse r = s.Get("/v1/jobs?limit=1000");
  if (r.status != 200) throw std::runtime_error("list: " + Describe(r));
  return r.Json().at("jobs").as_array().size();
}

// Sends `bytes` on a fresh connection and expects `status` as a problem
// document, then the connection closed, and no job created.
void ExpectRefused(const ServerProcess& s, const std::string& bytes, int status) {
  const size_t jobs = JobCount(s);
  RawConnection c(s.port());
  c.Send(bytes);
  auto r = c.ReadResponse(10s);
  ASSERT_TRUE(r.has_value()) << "no response to a refused request";
  ExpectProblem(*r, status);
  EXPECT_FALSE(r->Header("X-Request-Id").empty()) << "refusals carry a request id too";
  if (r->version == 11) {  // HTTP/1.0 closes by default
    EXPECT_TRUE(boost::beast::iequals(r->Header("Connection"), "close")) << Describe(*r);
  }
  EXPECT_TRUE(c.WaitClosed(10s)) << "the connection must close after a framing refusal";
  EXPECT_EQ(JobCount(s), jobs) << "a refused request must not create a job";
}

// Sends `bytes` and expects a 202 whose job echoes `body`.
void ExpectSubmitted(const ServerProcess& s, const std::string& bytes, const std::string& body) {
  RawConnection c(s.port());
  c.Send(bytes);
  auto r = c.ReadResponse(10s);
  ASSERT_TRUE(r.has_value()) << "no response";
  ASSERT_EQ(r->status, 202) << Describe(*r);
  const std::string id = Str(r->Json(), "id");
  ASSERT_EQ(Str(s.WaitTerminal(id), "state"), "succeeded");
  EXPECT_EQ(s.Get("/v1/jobs/" + id + "/result").body, body);
}

std::string Chunked(const std::string& te_fields) {
  return std::string(kSubmit) + te_fields + "\r\n" + kChunkedHello;
}

// Refusals given before routing had no X-Request-Id (the router sets it):
// one given after the header was parsed echoes the client's, as a routed
// answer does; one given before gets a new one.
TEST(FramingTest, RefusalsBeforeRoutingLackedARequestId) {
  ServerProcess s;
  {
    RawConnection c(s.port());
    c.Send(std::string(kSubmit) + "X-Request-Id: client-9\r\nTransfer-Encoding: gzip\r\n\r\n");
    auto r = c.ReadResponse(10s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 501) << Describe(*r);
    EXPECT_EQ(r->Header("X-Request-Id"), "client-9");
  }
  {
    RawConnection c(s.port());
    c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    auto r = c.ReadResponse(10s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 431) << Describe(*r);
    EXPECT_EQ(r->Header("X-Request-Id").size(), 16u) << Describe(*r);
  }
}

// ---- Transfer-Encoding ----------------------------------------------------

TEST(FramingTest, UnknownTransferCodingIs501) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: gzip, chunked2\r\n"), 501);
}

TEST(FramingTest, TransferCodingXchunkedIs501) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: xchunked\r\n"), 501);
}

TEST(FramingTest, KnownButUnimplementedTransferCodingIs501) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: gzip, chunked\r\n"), 501);
  ExpectRefused(s, Chunked("Transfer-Encoding: gzip\r\n"), 501);
}

TEST(FramingTest, ChunkedTwiceIs400) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: chunked, chunked\r\n"), 400);
}

TEST(FramingTest, TransferEncodingIdentityWithContentLengthIs400) {
  ServerProcess s;
  ExpectRefused(
      s, std::string(kSubmit) + "Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
      400);
  ExpectRefused(
      s, std::string(kSubmit) + "Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello",
      400);
}

TEST(FramingTest, TransferEncodingIdentityAloneIs501) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: identity\r\n"), 501);
}

TEST(FramingTest, TransferEncodingWithEmptyListElementsIs400) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: , chunked\r\n"), 400);
  ExpectRefused(s, Chunked("Transfer-Encoding: chunked,\r\n"), 400);
  ExpectRefused(s, Chunked("Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n"), 400);
}

TEST(FramingTest, ChunkedWithParametersIs400) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: chunked;q=1\r\n"), 400);
}

TEST(FramingTest, QuotedTransferCodingIs400) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: \"chunked\"\r\n"), 400);
}

TEST(FramingTest, MultipleTransferEncodingFieldsAreOneList) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 501);
  ExpectRefused(s, Chunked("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400);
  // Beast refuses a coding after chunked itself.
  ExpectRefused(s, Chunked("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), 400);
}

TEST(FramingTest, TransferEncodingInHttp10Is400) {
  ServerProcess s;
  ExpectRefused(s,
                "POST /v1/queues/echo/jobs HTTP/1.0\r\nContent-Type: text/plain\r\n"
                "Transfer-Encoding: chunked\r\n\r\n" +
                    std::string(kChunkedHello),
                400);
}

TEST(FramingTest, UppercaseChunkedIsAccepted) {
  ServerProcess s;
  ExpectSubmitted(s, Chunked("Transfer-Encoding: CHUNKED\r\n"), "hello");
  ExpectSubmitted(s, Chunked("transfer-encoding:\tChunked \r\n"), "hello");
}

TEST(FramingTest, ChunkExtensionsAreIgnored) {
  ServerProcess s;
  ExpectSubmitted(s,
                  std::string(kSubmit) +
                      "Transfer-Encoding: chunked\r\n\r\n5;name=value;flag\r\nhello\r\n"
                      "6;q=\"quoted; string\"\r\n world\r\n0;last\r\n\r\n",
                  "hello world");
}

TEST(FramingTest, TrailerFieldsAreNotMergedIntoTheHeader) {
  ServerProcess s;
  // Were the trailer merged, the job would carry the key and the second
  // submit (same key, another body) would be refused as a mismatch.
  ExpectSubmitted(s,
                  std::string(kSubmit) +
                      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                      "Idempotency-Key: from-the-trailer\r\n\r\n",
                  "hello");
  HttpResponse r = Http(s.port(), "POST", "/v1/queues/echo/jobs", "other",
                        {{"Content-Type", "text/plain"}, {"Idempotency-Key", "from-the-trailer"}});
  EXPECT_EQ(r.status, 202) << Describe(r);
}

TEST(FramingTest, ContentLengthInTheTrailerIs400) {
  ServerProcess s;
  ExpectRefused(
      s,
      std::string(kSubmit) +
          "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
      400);
}

// ---- Content-Length -------------------------------------------------------

TEST(FramingTest, ContentLengthWithTransferEncodingIs400) {
  ServerProcess s;
  ExpectRefused(s, Chunked("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400);
  ExpectRefused(s, Chunked("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400);
}

TEST(FramingTest, ConflictingContentLengthsAre400) {
  ServerProcess s;
  ExpectRefused(s, std::string(kSubmit) + "Content-Length: 5, 6\r\n\r\nhello!", 400);
  ExpectRefused(s, std::string(kSubmit) + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                400);
}

TEST(FramingTest, RepeatedEqualContentLengthsAre400) {
  ServerProcess s;
  ExpectRefused(s, std::string(kSubmit) + "Content-Length: 5, 5\r\n\r\nhello", 400);
  ExpectRefused(s, std::string(kSubmit) + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
                400);
}

TEST(FramingTest, ContentLengthThatIsNotADecimalNumberIs400) {
  ServerProcess s;
  for (const char* value : {"+5", "-5", "0x5", "5.0", "5 5", "five", ""}) {
    SCOPED_TRACE(value);
    ExpectRefused(s, std::string(kSubmit) + "Content-Length: " + value + "\r\n\r\nhello", 400);
  }
}

TEST(FramingTest, HugeContentLengthIsRefused) {
  ServerProcess s;
  // Beyond 2^64: unparseable, 400. Within it but over body_limit: 413.
  ExpectRefused(s, std::string(kSubmit) + "Content-Length: 99999999999999999999999\r\n\r\nhello",
                400);
  ExpectRefused(s, std::string(kSubmit) + "Content-Length: 18446744073709551615\r\n\r\nhello", 413);
}

TEST(FramingTest, ContentLengthWithSurroundingWhitespaceOrLeadingZerosIsAccepted) {
  ServerProcess s;
  ExpectSubmitted(s, std::string(kSubmit) + "Content-Length:   5  \r\n\r\nhello", "hello");
  ExpectSubmitted(s, std::string(kSubmit) + "Content-Length: 005\r\n\r\nhello", "hello");
}

// ---- Host -----------------------------------------------------------------

TEST(FramingTest, Http11RequestWithoutHostIs400) {
  ServerProcess s;
  ExpectRefused(s, std::string(kSubmitNoHost) + "Content-Length: 5\r\n\r\nhello", 400);
}

TEST(FramingTest, TwoHostHeadersAre400) {
  ServerProcess s;
  ExpectRefused(s, std::string(kSubmit) + "Host: y\r\nContent-Length: 5\r\n\r\nhello", 400);
  ExpectRefused(s, std::string(kSubmit) + "Host: x\r\nContent-Length: 5\r\n\r\nhello", 400);
}

TEST(FramingTest, InvalidHostIs400) {
  ServerProcess s;
  for (const char* host : {"a b", "a,b", "x:port", "user@x", "[::1", "x/y"}) {
    SCOPED_TRACE(host);
    ExpectRefused(
        s, std::string(kSubmitNoHost) + "Host: " + host + "\r\nContent-Length: 5\r\n\r\nhello",
        400);
  }
}

TEST(FramingTest, Http10RequestWithoutHostIsAccepted) {
  ServerProcess s;
  RawConnection c(s.port());
  c.Send(
      "POST /v1/queues/echo/jobs HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: "
      "5\r\n\r\nhello");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 202) << Describe(*r);
}

TEST(FramingTest, Http10RequestWithTwoHostsIs400) {
  ServerProcess s;
  ExpectRefused(
      s,
      "POST /v1/queues/echo/jobs HTTP/1.0\r\nHost: x\r\nHost: y\r\nContent-Length: 5\r\n\r\nhello",
      400);
}

TEST(FramingTest, ValidHostFormsAreAccepted) {
  ServerProcess s;
  for (const char* host :
       {"example.com", "example.com:8000", "127.0.0.1:1", "[::1]:8000", "", "x_y-z.~"}) {
    SCOPED_TRACE(host);
    ExpectSubmitted(
        s, std::string(kSubmitNoHost) + "Host: " + host + "\r\nContent-Length: 2\r\n\r\nok", "ok");
  }
}

// ---- Request target -------------------------------------------------------

TEST(FramingTest, AbsoluteFormTargetIsServed) {
  ServerProcess s;
  ExpectSubmitted(s,
                  "POST http://127.0.0.1/v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\n"
                  "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                  "hello");
  ExpectSubmitted(s,
                  "POST HTTPS://other.example:8443/v1/queues/echo/jobs?priority=1 HTTP/1.1\r\n"
                  "Host: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                  "hello");
  RawConnection c(s.port());
  c.Send(
      "GET http://x HTTP/1.1\r\nHost: x\r\n\r\nGET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto root = c.ReadResponse();
  auto health = c.ReadResponse();
  ASSERT_TRUE(root && health);
  EXPECT_EQ(root->status, 404) << "an empty path is '/'";
  EXPECT_EQ(health->status, 200) << Describe(*health);
}

TEST(FramingTest, BadAbsoluteFormTargetIs400) {
  ServerProcess s;
  for (const char* target :
       {"http://", "http:///v1/queues/echo/jobs", "http://user@x/v1/queues/echo/jobs",
        "ftp://x/v1/queues/echo/jobs", "v1/queues/echo/jobs", "x:/v1/queues/echo/jobs"}) {
    SCOPED_TRACE(target);
    ExpectRefused(
        s,
        std::string("POST ") + target +
            " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        400);
  }
}

TEST(FramingTest, TargetWithFragmentOrBadEscapeOrNonAsciiIs400) {
  ServerProcess s;
  for (const char* target : {"/v1/queues/echo/jobs#x", "/v1/queues/echo/jobs?x=%zz",
                             "/v1/queues/echo/jobs?x=%4", "/v1/queues/echo/jobs?x=\xc3\xa9"}) {
    SCOPED_TRACE(target);
    ExpectRefused(
        s,
        std::string("POST ") + target +
            " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        400);
  }
}

TEST(FramingTest, AsteriskTargetIsOnlyForOptions) {
  ServerProcess s;
  ExpectRefused(s, "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400);
  RawConnection c(s.port());
  c.Send("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->status, 400) << Describe(*r);
}

// ---- Header lines ---------------------------------------------------------

TEST(FramingTest, ObsFoldedHeaderLineIs400) {
  ServerProcess s;
  ExpectRefused(s, std::string(kSubmit) + "X-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\nhello",
                400);
  ExpectRefused(s, std::string(kSubmit) + "X-Folded: a\r\n\tb\r\nContent-Length: 5\r\n\r\nhello",
                400);
  // Folding Transfer-Encoding is the smuggling variant.
  ExpectRefused(s, std::string(kSubmit) + "Transfer-Encoding:\r\n chunked\r\n\r\n" + kChunkedHello,
                400);
}

TEST(FramingTest, WhitespaceBeforeTheFirstHeaderLineIs400) {
  ServerProcess s;
  ExpectRefused(s,
                "POST /v1/queues/echo/jobs HTTP/1.1\r\n Host: x\r\nContent-Type: text/plain\r\n"
                "Content-Length: 5\r\n\r\nhello",
                400);
}

TEST(FramingTest, WhitespaceBeforeTheColonIs400) {
  ServerProcess s;
  ExpectRefused(s, std::string(kSubmit) + "Content-Length : 5\r\n\r\nhello", 400);
  ExpectRefused(s, std::string(kSubmit) + "Transfer-Encoding : chunked\r\n\r\n" + kChunkedHello,
                400);
}

TEST(FramingTest, BareLfLineEndsAre400) {
  ServerProcess s;
  ExpectRefused(s, "POST /v1/queues/echo/jobs HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello", 400);
  ExpectRefused(s, std::string(kSubmit) + "Content-Length: 5\n\r\nhello", 400);
}

TEST(FramingTest, BareCrIs400) {
  ServerProcess s;
  ExpectRefused(s, std::string(kSubmit) + "X-A: a\rb\r\nContent-Length: 5\r\n\r\nhello", 400);
}

TEST(FramingTest, ControlCharactersInHeaderValuesAre400) {
  ServerProcess s;
  ExpectRefused(
      s, std::string(kSubmit) + std::string("X-A: a\0b\r\n", 10) + "Content-Length: 5\r\n\r\nhello",
      400);
  ExpectRefused(s,
                std::string(kSubmit) +
                    "X-A: a\x01"
                    "b\r\nContent-Length: 5\r\n\r\nhello",
                400);
  ExpectRefused(s,
                std::string(kSubmit) +
                    "Transfer-Encoding: \x0b"
                    "chunked\r\n\r\n" +
                    kChunkedHello,
                400);
}

TEST(FramingTest, LeadingEmptyLineBeforeTheRequestLineIsIgnored) {
  ServerProcess s;
  ExpectSubmitted(s, "\r\n" + std::string(kSubmit) + "Content-Length: 5\r\n\r\nhello", "hello");
}

TEST(FramingTest, TooManyHeaderFieldsAre431) {
  ServerProcess s(ServerOptions().Set("max_header_count", "10"));
  std::string many;
  for (int i = 0; i < 8; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  // Host, Content-Type, 8 more and Content-Length: 11 fields.
  ExpectRefused(s, std::string(kSubmit) + many + "Content-Length: 5\r\n\r\nhello", 431);
  // 10 are fine.
  many.clear();
  for (int i = 0; i < 7; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  ExpectSubmitted(s, std::string(kSubmit) + many + "Content-Length: 5\r\n\r\nhello", "hello");
}

// ---- Request line and chunks ----------------------------------------------

TEST(FramingTest, UnsupportedHttpVersionIs505) {
  ServerProcess s;
  ExpectRefused(s, "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505);
  ExpectRefused(s, "GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n", 505);
  ExpectRefused(s, "GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", 505);
  ExpectRefused(s, "GET /healthz HTTP/11\r\nHost: x\r\n\r\n", 400);
}

TEST(FramingTest, MalformedRequestLineIs400) {
  ServerProcess s;
  for (const char* line :
       {"GET  /healthz HTTP/1.1", "GET /healthz  HTTP/1.1", "GET /healthz HTTP/1.1 ",
        "GET /healthz", "GET /healthz http/1.1", "G(T /healthz HTTP/1.1"}) {
    SCOPED_TRACE(line);
    ExpectRefused(s, std::string(line) + "\r\nHost: x\r\n\r\n", 400);
  }
}

TEST(FramingTest, MalformedChunkSizesAre400) {
  ServerProcess s;
  for (const char* body :
       {"0x5\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n",
        "5 5\r\nhello\r\n0\r\n\r\n", "g\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n",
        "10000000000000000\r\nhello\r\n0\r\n\r\n"}) {
    SCOPED_TRACE(body);
    const std::string bytes = std::string(kSubmit) + "Transfer-Encoding: chunked\r\n\r\n" + body;
    const size_t jobs = JobCount(s);
    RawConnection c(s.port());
    c.Send(bytes);
    auto r = c.ReadResponse(10s);
    ASSERT_TRUE(r.has_value()) << "no response";
    EXPECT_TRUE(r->status == 400 || r->status == 413) << Describe(*r);
    EXPECT_TRUE(c.WaitClosed(10s));
    EXPECT_EQ(JobCount(s), jobs);
  }
}

TEST(FramingTest, RefusalEndsTheConnectionEvenWithPipelinedRequestsBehind) {
  ServerProcess s;
  RawConnection c(s.port());
  // Were the first body read as no body (its coding not understood), the
  // bytes behind it would be served as a second, smuggled request.
  c.Send(std::string(kSubmit) + "Transfer-Encoding: gzip\r\n\r\n" + kSubmit +
         "Content-Length: 8\r\n\r\nsmuggled");
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  ExpectProblem(*r, 501);
  EXPECT_FALSE(c.ReadResponse(2s).has_value()) << "nothing after the refusal";
  EXPECT_EQ(JobCount(s), 0u);
}

}  // namespace
}  // namespace acceptd::itest
