// HttpServer: accepts HTTP/1.0 and HTTP/1.1 connections and hands each parsed
// request to a RequestHandler. I/O only: no business logic here.
//
// One event loop (io_context) per thread; each accepted connection lives on
// one loop, so connections spread across cores with no shared lock. Requests
// on a connection are handled one at a time (pipelined requests queue in the
// socket), so only one write is ever in flight.
//
// Limits, for a server exposed to clients that are slow or hostile (see
// ServerLimits; docs/operations.md):
//  - Deadlines. A new connection's first request header must arrive within
//    header_timeout of the accept; on a keep-alive connection the next
//    request may take idle_timeout to start, and its header must then arrive
//    within header_timeout of its first byte. The body must arrive within
//    request_timeout of the header's end. Expiry closes the connection
//    without an answer (a client that trickles bytes gets no more time).
//  - Sizes. Header blocks over header_limit bytes or max_header_count
//    fields get 431, bodies over body_limit 413.
//  - Connections. At most max_connections are served at once; a connection
//    accepted beyond that is answered 503 with Retry-After and closed at
//    once, rather than left waiting in the listen backlog, so that a client
//    learns at once that it should retry (slots free up as slow connections
//    hit their deadlines).
//  - Framing. Every request header passes request_framing.h before a handler
//    sees it; a refusal is a problem document and closes the connection.
//
// A response with a body stream (types.h) is written as it is produced:
// headers first, then each StreamWriter::Write as one chunk (HTTP/1.1) or as
// raw bytes of a close-delimited body (HTTP/1.0). Each write has
// request_timeout to complete; between writes no timeout runs, so a stream
// may stay open as long as it keeps writing (or waits). The connection is not
// read while a stream runs; after it, an HTTP/1.1 keep-alive connection
// serves its next request.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "http/request_framing.h"
#include "http/types.h"

namespace acceptd::http {

inline constexpr size_t kDefaultBodyLimit = 1 << 20;
inline constexpr size_t kDefaultHeaderLimit = 16 << 10;
inline constexpr Millis kDefaultRequestTimeout = 30'000;
inline constexpr Millis kDefaultIdleTimeout = 60'000;
inline constexpr Millis kDefaultHeaderTimeout = 10'000;
inline constexpr size_t kDefaultMaxConnections = 10'000;
inline constexpr int kOverloadRetryAfterSeconds =
    1;  // Retry-After of the 503 beyond max_connections

struct ServerLimits {
  size_t body_limit = kDefaultBodyLimit;             // larger bodies get 413
  size_t header_limit = kDefaultHeaderLimit;         // larger header blocks get 431
  size_t max_header_count = kDefaultMaxHeaderCount;  // more header fields get 431
  Millis header_timeout = kDefaultHeaderTimeout;     // to receive a request's header
  Millis request_timeout = kDefaultRequestTimeout;   // to receive its body; to write a response
  Millis idle_timeout = kDefaultIdleTimeout;         // keep-alive connection with no request
  size_t max_connections = kDefaultMaxConnections;   // open at once; 503 beyond
};

class HttpServer {
 public:
  HttpServer(ServerLimits limits, RequestHandler handler, int threads);
  ~HttpServer();

  // Binds host:port (port 0 picks one) on every loop. Returns the bound port.
  Result<uint16_t> Listen(const std::string& host, uint16_t port);
  // Starts the loops on their threads.
  void Start();
  // Stops accepting, ends all connections and joins the threads. Idempotent.
  void Stop();
  // Client connections being served now (for metrics), and over-limit ones
  // being refused (answered 503 and closed).
  size_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }
  size_t refusing_connections() const {
    return refusing_connections_.load(std::memory_order_relaxed);
  }

 private:
  struct Loop;
  ServerLimits limits_;
  RequestHandler handler_;
  // Connections being served, and over-limit ones being refused; shared by
  // the acceptor and every loop. Declared before loops_ so that they outlive
  // the sessions destroyed with the loops.
  std::atomic<size_t> open_connections_{0};
  std::atomic<size_t> refusing_connections_{0};
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<boost::asio::io_context*> contexts_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace acceptd::http
