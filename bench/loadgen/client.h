// A minimal HTTP/1.1 keep-alive client for the benchmark, on Boost.Beast and
// Asio coroutines. Requests are pre-serialized strings (cheap to build and to
// pipeline); responses are parsed by Beast. One io_context thread drives all
// connections: the load generator is pinned to one core.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Response = http::response<http::string_body>;

struct Target {
  std::string host;  // for the Host header
  tcp::endpoint endpoint;
};
// "HOST:PORT" (numeric host) to an endpoint; throws std::invalid_argument.
Target ParseTarget(const std::string& text);

// Raw request text.
std::string GetRequest(const Target& t, std::string_view path);
std::string PostRequest(const Target& t, std::string_view path, std::string_view content_type,
                        std::string_view body);
// The benchmark payload: a JSON object of exactly `bytes` bytes (at least 32).
std::string JsonPayload(size_t bytes);
// The 32-hex job id at the end of a Location header ("/v1/jobs/<id>"), or "".
std::string IdFromLocation(std::string_view location);

class Conn {
 public:
  explicit Conn(asio::any_io_executor ex);
  // Throws boost::system::system_error.
  asio::awaitable<void> Connect(const tcp::endpoint& ep);
  asio::awaitable<void> Write(std::string_view raw);
  asio::awaitable<Response> Read();
  asio::awaitable<Response> RoundTrip(std::string_view raw) {
    co_await Write(raw);
    co_return co_await Read();
  }
  void Close();
  bool open() const { return stream_.socket().is_open(); }
  // Whether a response was read on it: a server gives a connection that has
  // not sent a request yet its header timeout only, but a used keep-alive
  // connection its (longer) idle timeout.
  bool used() const { return used_; }

 private:
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool used_ = false;
};

// Latency samples in microseconds; percentiles by sorting (runs are short).
class Samples {
 public:
  void Add(double us) { v_.push_back(us); }
  size_t size() const { return v_.size(); }
  // p in [0, 100]; NaN when empty.
  double Percentile(double p);
  double Mean() const;

 private:
  std::vector<double> v_;
  bool sorted_ = false;
};

// Current resident set size of a process in bytes (VmRSS), or -1.
int64_t ProcessRssBytes(int pid);

// Appends one line to `path` (or prints it when path is empty or "-").
void EmitLine(const std::string& path, const std::string& line);

double Seconds(Clock::duration d);

}  // namespace bench
