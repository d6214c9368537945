#include "http/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "http/problem.h"

namespace acceptd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
constexpr auto kNoThrow = asio::as_tuple(use_awaitable);

struct HttpServer::Loop {
  asio::io_context ctx{1};
  std::optional<tcp::acceptor> acceptor;
};

namespace {

// Writes an error response and tells the caller to close the connection.
asio::awaitable<void> WriteAndClose(beast::tcp_stream& stream, Response res, unsigned version) {
  res.version(version == 10 ? 10 : 11);
  res.keep_alive(false);
  res.prepare_payload();
  stream.expires_after(std::chrono::seconds(5));
  co_await beast_http::async_write(stream, res, kNoThrow);
}

asio::awaitable<void> Session(tcp::socket socket, const ServerLimits& limits,
                              const RequestHandler& handler) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
    parser.body_limit(limits.body_limit);
    // A connection may wait idle for its next request, but once bytes arrive
    // the whole request must come within request_timeout (slow clients).
    stream.expires_after(std::chrono::milliseconds(buffer.size() > 0 ? limits.request_timeout
                                                                     : limits.idle_timeout));
    auto [ec, n] = co_await beast_http::async_read_header(stream, buffer, parser, kNoThrow);
    if (ec == beast_http::error::header_limit) {
      co_await WriteAndClose(
          stream,
          Problem(Status::request_header_fields_too_large,
                  fmt::format("request headers exceed {} bytes", limits.header_limit)),
          11);
      break;
    }
    if (ec == beast_http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted) {
      break;
    }
    if (ec) {
      co_await WriteAndClose(stream, Problem(Status::bad_request, "malformed HTTP request"), 11);
      break;
    }
    const unsigned version = parser.get().version();
    if (auto len = parser.content_length(); len && *len > limits.body_limit) {
      co_await WriteAndClose(
          stream,
          Problem(Status::payload_too_large,
                  fmt::format("request body exceeds the limit of {} bytes", limits.body_limit)),
          version);
      break;
    }
    if (beast::iequals(parser.get()[Field::expect], "100-continue") && version == 11) {
      beast_http::response<beast_http::empty_body> cont{Status::continue_, 11};
      co_await beast_http::async_write(stream, cont, kNoThrow);
    }
    stream.expires_after(std::chrono::milliseconds(limits.request_timeout));
    std::tie(ec, n) = co_await beast_http::async_read(stream, buffer, parser, kNoThrow);
    if (ec == beast_http::error::body_limit) {
      co_await WriteAndClose(
          stream,
          Problem(Status::payload_too_large,
                  fmt::format("request body exceeds the limit of {} bytes", limits.body_limit)),
          version);
      break;
    }
    if (ec == beast::error::timeout) {
      co_await WriteAndClose(
          stream, Problem(Status::request_timeout, "the request was not received in time"),
          version);
      break;
    }
    if (ec) {
      if (ec != asio::error::eof && ec != beast_http::error::end_of_stream &&
          ec != beast_http::error::partial_message && ec != asio::error::connection_reset) {
        co_await WriteAndClose(stream, Problem(Status::bad_request, "malformed HTTP request"),
                               version);
      }
      break;
    }
    Request req = parser.release();
    const bool keep_alive = req.keep_alive();
    Response res = co_await handler(req);
    res.version(version == 10 ? 10 : 11);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    stream.expires_after(std::chrono::milliseconds(limits.request_timeout));
    auto [wec, wn] = co_await beast_http::async_write(stream, res, kNoThrow);
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> AcceptLoop(tcp::acceptor& acceptor, const ServerLimits& limits,
                                 const RequestHandler& handler) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: back off briefly, keep serving.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(kNoThrow);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), Session(std::move(socket), limits, handler),
                   asio::detached);
  }
}

}  // namespace

HttpServer::HttpServer(ServerLimits limits, RequestHandler handler, int threads)
    : limits_(limits), handler_(std::move(handler)) {
  for (int i = 0; i < std::max(threads, 1); ++i) loops_.push_back(std::make_unique<Loop>());
}

HttpServer::~HttpServer() { Stop(); }

Result<uint16_t> HttpServer::Listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return Error::InvalidArgument(fmt::format("invalid listen address '{}'", host));
  tcp::endpoint endpoint(address, port);
  for (auto& loop : loops_) {
    tcp::acceptor acceptor(loop->ctx);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec.assign(errno, boost::system::system_category());
      }
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error::Unavailable(
          fmt::format("cannot listen on {}:{}: {}", host, endpoint.port(), ec.message()),
          "cannot listen");
    }
    endpoint = acceptor.local_endpoint();  // later loops share the port picked by the first
    loop->acceptor.emplace(std::move(acceptor));
  }
  return endpoint.port();
}

void HttpServer::Start() {
  for (auto& loop : loops_) {
    if (loop->acceptor) {
      asio::co_spawn(loop->ctx, AcceptLoop(*loop->acceptor, limits_, handler_), asio::detached);
    }
    threads_.emplace_back([l = loop.get()] {
      auto guard = asio::make_work_guard(l->ctx);
      l->ctx.run();
    });
  }
}

void HttpServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& loop : loops_) loop->ctx.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace acceptd::http
