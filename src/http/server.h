// HttpServer: accepts HTTP/1.0 and HTTP/1.1 connections and hands each parsed
// request to a RequestHandler. I/O only: no business logic here.
//
// One event loop (io_context) per thread; each accepted connection lives on
// one loop, so connections spread across cores with no shared lock. Every
// read has a deadline and a size limit (a client too slow to send its request
// within request_timeout is disconnected); requests on a connection are
// handled one at a time (pipelined requests queue in the socket), so only one
// write is ever in flight.
//
// A response with a body stream (types.h) is written as it is produced:
// headers first, then each StreamWriter::Write as one chunk (HTTP/1.1) or as
// raw bytes of a close-delimited body (HTTP/1.0). Each write has
// request_timeout to complete; between writes no timeout runs, so a stream
// may stay open as long as it keeps writing (or waits). The connection is not
// read while a stream runs; after it, an HTTP/1.1 keep-alive connection
// serves its next request.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "http/types.h"

namespace acceptd::http {

inline constexpr size_t kDefaultBodyLimit = 1 << 20;
inline constexpr size_t kDefaultHeaderLimit = 16 << 10;
inline constexpr Millis kDefaultRequestTimeout = 30'000;
inline constexpr Millis kDefaultIdleTimeout = 60'000;

struct ServerLimits {
  size_t body_limit = kDefaultBodyLimit;            // larger bodies get 413
  size_t header_limit = kDefaultHeaderLimit;        // larger header blocks get 431
  Millis request_timeout = kDefaultRequestTimeout;  // to receive one whole request
  Millis idle_timeout = kDefaultIdleTimeout;        // keep-alive connection with no request
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

 private:
  struct Loop;
  ServerLimits limits_;
  RequestHandler handler_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<boost::asio::io_context*> contexts_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace acceptd::http
