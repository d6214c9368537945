// Regression: Beast 1.81's chunked parser asserted `n >= 5` when a body whose
// only chunk is the final one arrived a byte at a time ("0\r\n", then one more
// byte). The assertion is wrong (boostorg/beast#2861); in a build with
// assertions on (the ASan build) it aborted the process, so a slow client
// could stop a Debug server. src/core/boost_assert.cc lets it pass; this test
// aborts without it in such a build.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace {

namespace beast_http = boost::beast::http;

TEST(BeastFinalChunkAssertTest, FinalChunkArrivingByteByByteIsParsed) {
  const std::string header =
      "POST /v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "0\r\n\r\n";
  beast_http::request_parser<beast_http::string_body> parser;
  parser.eager(true);
  boost::system::error_code ec;
  ASSERT_EQ(parser.put(boost::asio::buffer(header), ec), header.size());
  ASSERT_FALSE(ec) << ec.message();
  // The server hands the parser everything not yet consumed, each time a few
  // more bytes have arrived.
  std::string buffer;
  for (size_t i = 0; i < body.size(); ++i) {
    buffer += body[i];
    const size_t used = parser.put(boost::asio::buffer(buffer), ec);
    buffer.erase(0, used);
    if (ec == beast_http::error::need_more) {
      ec = {};
      continue;
    }
    ASSERT_FALSE(ec) << "after " << (i + 1) << " bytes: " << ec.message();
  }
  EXPECT_TRUE(parser.is_done());
  EXPECT_TRUE(parser.get().body().empty());
}

TEST(BeastFinalChunkAssertTest, ATrailerThatIsNoFieldIsStillRefused) {
  // The fuzzer's input: the final chunk, then a byte that cannot start a trailer.
  beast_http::request_parser<beast_http::string_body> parser;
  parser.eager(true);
  boost::system::error_code ec;
  const std::string header = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_EQ(parser.put(boost::asio::buffer(header), ec), header.size());
  std::string buffer;
  for (char c : std::string_view("0\r\n)\r\n\r\n")) {
    buffer += c;
    const size_t used = parser.put(boost::asio::buffer(buffer), ec);
    buffer.erase(0, used);
    if (ec != beast_http::error::need_more) break;
    ec = {};
  }
  EXPECT_TRUE(ec) << "a malformed trailer was accepted";
  EXPECT_FALSE(parser.is_done());
}

}  // namespace
