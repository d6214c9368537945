#include "http/request_framing.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace acceptd::http {
namespace {

using State = HeaderScanner::State;

// ---- HeaderScanner --------------------------------------------------------

constexpr size_t kBytes = 1024;
constexpr size_t kFields = 10;

State ScanAll(std::string_view bytes, HeaderScanner* out = nullptr, size_t max_bytes = kBytes,
              size_t max_fields = kFields) {
  HeaderScanner scanner(max_bytes, max_fields);
  const State state = scanner.Scan(bytes);
  if (out) *out = scanner;
  return state;
}

TEST(HeaderScannerTest, FindsTheEndOfTheHeaderBlock) {
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\r\n";
  HeaderScanner s(kBytes, kFields);
  ASSERT_EQ(s.Scan(head + "body bytes"), State::kComplete);
  EXPECT_EQ(s.skip(), 0u);
  EXPECT_EQ(s.end(), head.size());
  EXPECT_EQ(s.fields(), 2u);
}

TEST(HeaderScannerTest, IsIncompleteUntilTheEmptyLine) {
  for (std::string_view partial :
       {"", "GET / HTTP/1.1", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\nHost: x\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n\r"}) {
    SCOPED_TRACE(partial);
    EXPECT_EQ(ScanAll(partial), State::kIncomplete);
  }
}

TEST(HeaderScannerTest, GivesTheSameAnswerHoweverTheBytesArrive) {
  const std::vector<std::string> inputs = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\rX\r\n\r\n",
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input);
    HeaderScanner whole(kBytes, kFields);
    const State expected = whole.Scan(input);
    for (size_t step = 1; step <= 3; ++step) {
      HeaderScanner trickled(kBytes, kFields);
      State state = State::kIncomplete;
      for (size_t n = 0; n <= input.size() && state == State::kIncomplete; n += step) {
        state = trickled.Scan(std::string_view(input).substr(0, n));
      }
      if (state == State::kIncomplete) state = trickled.Scan(input);
      EXPECT_EQ(state, expected) << "step " << step;
      EXPECT_EQ(trickled.end(), whole.end());
      EXPECT_EQ(trickled.skip(), whole.skip());
    }
  }
}

TEST(HeaderScannerTest, SkipsEmptyLinesBeforeTheRequestLine) {
  HeaderScanner s(kBytes, kFields);
  ASSERT_EQ(s.Scan("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), State::kComplete);
  EXPECT_EQ(s.skip(), 4u);
  EXPECT_EQ(s.end(), 4u + std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n").size());
}

TEST(HeaderScannerTest, RefusesObsFold) {
  HeaderScanner s(kBytes, kFields);
  EXPECT_EQ(s.Scan("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"), State::kRefused);
  EXPECT_EQ(s.refusal().status, Status::bad_request);
  EXPECT_NE(s.refusal().detail.find("folding"), std::string::npos) << s.refusal().detail;
  EXPECT_EQ(ScanAll("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"), State::kRefused);
}

TEST(HeaderScannerTest, RefusesWhitespaceBeforeTheFirstField) {
  EXPECT_EQ(ScanAll("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), State::kRefused);
}

TEST(HeaderScannerTest, RefusesBareLfAtOnce) {
  HeaderScanner s(kBytes, kFields);
  // Refused at the first LF, without waiting for the rest.
  EXPECT_EQ(s.Scan("GET / HTTP/1.1\nHo"), State::kRefused);
  EXPECT_EQ(s.refusal().status, Status::bad_request);
  EXPECT_EQ(ScanAll("GET / HTTP/1.1\r\nHost: x\n\r\n"), State::kRefused);
  EXPECT_EQ(ScanAll("\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), State::kRefused);
}

TEST(HeaderScannerTest, RefusesBareCr) {
  EXPECT_EQ(ScanAll("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n"), State::kRefused);
  EXPECT_EQ(ScanAll("GET / HTTP/1.1\r\nHost: x\r\n\rX"), State::kRefused);
}

TEST(HeaderScannerTest, RefusesNul) {
  constexpr char kWithNul[] = "GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n";
  EXPECT_EQ(ScanAll(std::string_view(kWithNul, sizeof kWithNul - 1)), State::kRefused);
}

TEST(HeaderScannerTest, CountsFieldLines) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < kFields; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(ScanAll(head + "\r\n"), State::kComplete);
  HeaderScanner s(kBytes, kFields);
  EXPECT_EQ(s.Scan(head + "X-One-More: v\r\n"), State::kRefused);  // before the block ends
  EXPECT_EQ(s.refusal().status, Status::request_header_fields_too_large);
}

TEST(HeaderScannerTest, LimitsTheBlockSize) {
  const std::string start = "GET / HTTP/1.1\r\nX: ";
  const std::string end = "\r\n\r\n";
  const std::string exact = start + std::string(kBytes - start.size() - end.size(), 'v') + end;
  ASSERT_EQ(exact.size(), kBytes);
  EXPECT_EQ(ScanAll(exact), State::kComplete);
  const std::string over = start + std::string(kBytes - start.size() - end.size() + 1, 'v') + end;
  HeaderScanner s(kBytes, kFields);
  EXPECT_EQ(s.Scan(over), State::kRefused);
  EXPECT_EQ(s.refusal().status, Status::request_header_fields_too_large);
  // No end in sight: refused as soon as the limit is reached.
  EXPECT_EQ(ScanAll(std::string(kBytes, 'G')), State::kRefused);
  EXPECT_EQ(ScanAll(std::string(kBytes - 1, 'G')), State::kIncomplete);
  // Leading empty lines count too.
  std::string empty_lines;
  while (empty_lines.size() < kBytes) empty_lines += "\r\n";
  EXPECT_EQ(ScanAll(empty_lines), State::kRefused);
}

TEST(HeaderScannerTest, StaysInItsFinalState) {
  HeaderScanner s(kBytes, kFields);
  ASSERT_EQ(s.Scan("GET / HTTP/1.1\nX"), State::kRefused);
  EXPECT_EQ(s.Scan("GET / HTTP/1.1\nX\r\n\r\n"), State::kRefused);
}

TEST(RequestLineRefusalTest, UnsupportedVersionsAre505OtherGarbage400) {
  EXPECT_EQ(RequestLineRefusal("GET / HTTP/2.0").status, Status::http_version_not_supported);
  EXPECT_EQ(RequestLineRefusal("GET / HTTP/0.9").status, Status::http_version_not_supported);
  EXPECT_EQ(RequestLineRefusal("GET / HTTP/1.2").status, Status::http_version_not_supported);
  EXPECT_EQ(RequestLineRefusal("GET / HTTP/1.1").status, Status::bad_request);
  EXPECT_EQ(RequestLineRefusal("GET / http/2.0").status, Status::bad_request);
  EXPECT_EQ(RequestLineRefusal("GET / HTTP/20").status, Status::bad_request);
  EXPECT_EQ(RequestLineRefusal("HTTP/2.0").status, Status::bad_request);
  EXPECT_EQ(RequestLineRefusal("").status, Status::bad_request);
}

TEST(HeaderScannerTest, RemembersTheEndOfTheRequestLine) {
  HeaderScanner s(kBytes, kFields);
  ASSERT_EQ(s.Scan("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), State::kComplete);
  EXPECT_EQ(s.request_line_end(), 2u + 16u);
}

// ---- CheckRequestFraming ----------------------------------------------------

// A header as Beast parses it from `head` (which must end with the empty line).
RequestHeader Parse(std::string_view head) {
  beast_http::request_parser<beast_http::empty_body> parser;
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  EXPECT_FALSE(ec) << ec.message() << " parsing " << head;
  EXPECT_TRUE(parser.is_header_done()) << head;
  return parser.get().base();
}

// A header built field by field, for combinations Beast itself refuses.
RequestHeader Build(unsigned version, std::string_view target,
                    const std::vector<std::pair<Field, std::string>>& fields,
                    Verb method = Verb::post) {
  RequestHeader h;
  h.method(method);
  h.target(target);
  h.version(version);
  for (const auto& [f, v] : fields) h.insert(f, v);
  return h;
}

std::optional<unsigned> StatusOf(const RequestHeader& h) {
  auto r = CheckRequestFraming(h);
  if (!r) return std::nullopt;
  EXPECT_FALSE(r->detail.empty());
  return static_cast<unsigned>(r->status);
}

std::optional<unsigned> StatusOf(std::string_view head) { return StatusOf(Parse(head)); }

TEST(CheckRequestFramingTest, AcceptsOrdinaryRequests) {
  EXPECT_EQ(StatusOf("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), std::nullopt);
  EXPECT_EQ(
      StatusOf(
          "POST /v1/queues/echo/jobs?delay=1 HTTP/1.1\r\nHost: x:80\r\nContent-Length: 5\r\n\r\n"),
      std::nullopt);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            std::nullopt);
  EXPECT_EQ(StatusOf("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n"),
            std::nullopt);
  EXPECT_EQ(StatusOf("GET /a HTTP/1.0\r\n\r\n"), std::nullopt);
  EXPECT_EQ(StatusOf("GET /a%20b HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"), std::nullopt);
}

TEST(CheckRequestFramingTest, OnlyHttp1) {
  EXPECT_EQ(StatusOf(Build(20, "/", {{Field::host, "x"}})), 505u);
  EXPECT_EQ(StatusOf(Build(9, "/", {{Field::host, "x"}})), 505u);
  EXPECT_EQ(StatusOf(Build(12, "/", {{Field::host, "x"}})), std::nullopt);
}

TEST(CheckRequestFramingTest, Host) {
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\n\r\n"), 400u);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400u);
  EXPECT_EQ(StatusOf("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400u);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nHost:\r\n\r\n"), std::nullopt);  // empty is allowed
  for (const char* bad :
       {"a b", "a,b", "a:b", "u@a", "[::1", "[]", "[::1]x", "a/b", "a:123456", "%zz", "a\"b"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(StatusOf(Build(11, "/", {{Field::host, bad}})), 400u);
  }
  for (const char* good : {"a", "a:1", "a:", "127.0.0.1:65535", "[::1]", "[::ffff:1.2.3.4]:80",
                           "a%41b", "a_b~c!$&'()*+;="}) {
    SCOPED_TRACE(good);
    EXPECT_EQ(StatusOf(Build(11, "/", {{Field::host, good}})), std::nullopt);
  }
}

TEST(CheckRequestFramingTest, Target) {
  const std::vector<std::pair<Field, std::string>> host = {{Field::host, "x"}};
  EXPECT_EQ(StatusOf(Build(11, "/a", host)), std::nullopt);
  EXPECT_EQ(StatusOf(Build(11, "http://h/a", host)), std::nullopt);
  EXPECT_EQ(StatusOf(Build(11, "HtTp://h:80", host)), std::nullopt);
  EXPECT_EQ(StatusOf(Build(11, "https://[::1]:8443/a?b", host)), std::nullopt);
  EXPECT_EQ(StatusOf(Build(11, "*", host, Verb::options)), std::nullopt);
  for (const char* bad :
       {"*", "a", "http://", "http:///a", "http://u@h/a", "http://u:p@h/", "http://h:x/",
        "ftp://h/a", "//h/a#", "/a#b", "/a%2", "/a%g0", "/\x80", "mailto:x"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(StatusOf(Build(11, bad, host)), 400u);
  }
}

TEST(CheckRequestFramingTest, ContentLength) {
  EXPECT_EQ(StatusOf(Build(11, "/", {{Field::host, "x"}, {Field::content_length, "0"}})),
            std::nullopt);
  EXPECT_EQ(StatusOf(Build(11, "/", {{Field::host, "x"}, {Field::content_length, "007"}})),
            std::nullopt);
  for (const char* bad : {"", "5, 5", "5,5", "+5", "-1", "5 5", "0x5", "5;"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(StatusOf(Build(11, "/", {{Field::host, "x"}, {Field::content_length, bad}})), 400u);
  }
  // Beast takes equal repeated values; acceptd does not.
  EXPECT_EQ(StatusOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"), 400u);
  EXPECT_EQ(
      StatusOf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
      400u);
}

TEST(CheckRequestFramingTest, TransferEncoding) {
  auto te = [](std::vector<std::string> values, unsigned version = 11) {
    std::vector<std::pair<Field, std::string>> fields = {{Field::host, "x"}};
    for (auto& v : values) fields.emplace_back(Field::transfer_encoding, std::move(v));
    return StatusOf(Build(version, "/", fields));
  };
  EXPECT_EQ(te({"chunked"}), std::nullopt);
  EXPECT_EQ(te({"Chunked"}), std::nullopt);
  EXPECT_EQ(te({"gzip, chunked2"}), 501u);
  EXPECT_EQ(te({"xchunked"}), 501u);
  EXPECT_EQ(te({"gzip, chunked"}), 501u);
  EXPECT_EQ(te({"identity"}), 501u);
  EXPECT_EQ(te({"chunked, gzip"}), 501u);
  EXPECT_EQ(te({"gzip", "chunked"}), 501u);
  EXPECT_EQ(te({"chunked, chunked"}), 400u);
  EXPECT_EQ(te({"chunked", "chunked"}), 400u);
  EXPECT_EQ(te({", chunked"}), 400u);
  EXPECT_EQ(te({"chunked,"}), 400u);
  EXPECT_EQ(te({"chunked, ,"}), 400u);
  EXPECT_EQ(te({""}), 400u);
  EXPECT_EQ(te({"chunked;a=b"}), 400u);
  EXPECT_EQ(te({"\"chunked\""}), 400u);
  EXPECT_EQ(te({"chun ked"}), 400u);
  EXPECT_EQ(te({"chunked"}, 10), 400u);  // not in HTTP/1.0
  EXPECT_EQ(te({" chunked\t"}), std::nullopt);
  // With Content-Length, whatever the coding.
  EXPECT_EQ(StatusOf(Build(11, "/",
                           {{Field::host, "x"},
                            {Field::transfer_encoding, "identity"},
                            {Field::content_length, "5"}})),
            400u);
  EXPECT_EQ(
      StatusOf(
          "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n"),
      400u);
}

TEST(NormalizeRequestTargetTest, AbsoluteFormBecomesOriginFormAndSetsHost) {
  struct Case {
    const char* target;
    const char* origin;
    const char* host;
  };
  for (const Case& c : std::vector<Case>{{"http://h:1/a/b?c=d", "/a/b?c=d", "h:1"},
                                         {"http://h", "/", "h"},
                                         {"HTTPS://h?x=1", "/?x=1", "h"},
                                         {"http://[::1]:80/v1", "/v1", "[::1]:80"}}) {
    SCOPED_TRACE(c.target);
    RequestHeader h = Build(11, c.target, {{Field::host, "other"}});
    ASSERT_FALSE(CheckRequestFraming(h).has_value());
    NormalizeRequestTarget(h);
    EXPECT_EQ(h.target(), c.origin);
    EXPECT_EQ(h[Field::host], c.host);
    EXPECT_EQ(h.count(Field::host), 1u);
  }
}

TEST(NormalizeRequestTargetTest, LeavesOriginFormAloneAndServesHttp1xAs11) {
  RequestHeader h = Build(12, "/a?b", {{Field::host, "x"}});
  NormalizeRequestTarget(h);
  EXPECT_EQ(h.target(), "/a?b");
  EXPECT_EQ(h[Field::host], "x");
  EXPECT_EQ(h.version(), 11u);
}

}  // namespace
}  // namespace acceptd::http
