#include "loadgen/client.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "core/job.h"

namespace bench {

Target ParseTarget(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("target must be HOST:PORT: " + text);
  std::string host = text.substr(0, colon);
  int port = std::stoi(text.substr(colon + 1));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec || port <= 0 || port > 65535) {
    throw std::invalid_argument("target must be a numeric HOST:PORT: " + text);
  }
  return Target{text, tcp::endpoint(address, static_cast<uint16_t>(port))};
}

std::string GetRequest(const Target& t, std::string_view path) {
  std::string r;
  r.reserve(64 + path.size() + t.host.size());
  r.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(t.host).append("\r\n\r\n");
  return r;
}

std::string PostRequest(const Target& t, std::string_view path, std::string_view content_type,
                        std::string_view body) {
  std::string r;
  r.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ").append(t.host);
  r.append("\r\nContent-Type: ").append(content_type);
  r.append("\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  r.append(body);
  return r;
}

std::string JsonPayload(size_t bytes) {
  // Same shape as bench/lua/submit.lua's body.
  const std::string head = R"({"bench":"acceptd","pad":")";
  const std::string tail = R"("})";
  bytes = std::max(bytes, head.size() + tail.size());
  return head + std::string(bytes - head.size() - tail.size(), 'x') + tail;
}

std::string IdFromLocation(std::string_view location) {
  auto slash = location.rfind('/');
  if (slash == std::string_view::npos) return "";
  std::string_view id = location.substr(slash + 1);
  if (!acceptd::JobId::Parse(id)) return "";
  return std::string(id);
}

Conn::Conn(asio::any_io_executor ex) : stream_(std::move(ex)) {}

asio::awaitable<void> Conn::Connect(const tcp::endpoint& ep) {
  co_await stream_.socket().async_connect(ep, asio::use_awaitable);
  stream_.socket().set_option(tcp::no_delay(true));
}

asio::awaitable<void> Conn::Write(std::string_view raw) {
  co_await asio::async_write(stream_.socket(), asio::buffer(raw.data(), raw.size()),
                             asio::use_awaitable);
}

asio::awaitable<Response> Conn::Read() {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  co_await http::async_read(stream_, buffer_, parser, asio::use_awaitable);
  used_ = true;
  co_return parser.release();
}

void Conn::Close() {
  boost::system::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

double Samples::Percentile(double p) {
  if (v_.empty()) return std::nan("");
  if (!sorted_) {
    std::sort(v_.begin(), v_.end());
    sorted_ = true;
  }
  // Nearest rank: the smallest sample with at least p% of samples <= it.
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v_.size())));
  rank = std::clamp<size_t>(rank, 1, v_.size());
  return v_[rank - 1];
}

double Samples::Mean() const {
  if (v_.empty()) return std::nan("");
  return std::accumulate(v_.begin(), v_.end(), 0.0) / static_cast<double>(v_.size());
}

int64_t ProcessRssBytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // kB
  }
  return -1;
}

void EmitLine(const std::string& path, const std::string& line) {
  if (path.empty() || path == "-") {
    std::cout << line << "\n" << std::flush;
    return;
  }
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
  if (!out) throw std::runtime_error("cannot append to " + path);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace bench
