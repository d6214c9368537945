#include "http/server.h"

#include <array>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "http/problem.h"
#include "http/request_framing.h"
#include "http/request_id.h"

namespace acceptd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
constexpr auto kNoThrow = asio::as_tuple(use_awaitable);
constexpr std::chrono::seconds kErrorWriteTimeout{5};
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr size_t kLingerBytes = 4 << 20;
constexpr size_t kReadChunk = 4096;
constexpr size_t kRequestLineTail = 15;  // fits std::string's small buffer: no allocation
// Connections beyond max_connections: answered with 503 while fewer than
// this many are being answered, each for at most kRefuseLinger after its
// answer; closed unanswered beyond (see RefuseConnection).
constexpr size_t kMaxRefusing = 256;
// Connections taken from the backlog per wake-up of the accept loop.
constexpr size_t kAcceptBurst = 256;
constexpr std::chrono::seconds kRefuseLinger{1};

struct HttpServer::Loop {
  asio::io_context ctx{1};
};

namespace {

// Writes an error response, then closes gracefully: the client may still be
// sending the request we refused (a body over the limit), and closing with
// unread bytes makes the kernel send a reset that can destroy the response
// before the client reads it. So: half-close, then drain for up to `linger`.
//
// Every answer carries a request id: a refusal given before the header could
// be parsed gets a new one (see Echoing for the others).
asio::awaitable<void> WriteAndClose(beast::tcp_stream& stream, Response res, unsigned version,
                                    std::chrono::seconds linger = kLingerTimeout) {
  if (res.find(kRequestIdField) == res.end()) res.set(kRequestIdField, NewRequestId());
  res.version(version == 10 ? 10 : 11);
  res.keep_alive(false);
  res.prepare_payload();
  stream.expires_after(kErrorWriteTimeout);
  auto [ec, n] = co_await beast_http::async_write(stream, res, kNoThrow);
  if (ec) co_return;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(linger);
  std::array<char, 4096> sink;
  for (size_t drained = 0; drained < kLingerBytes;) {
    auto [rec, got] = co_await stream.async_read_some(asio::buffer(sink), kNoThrow);
    if (rec) break;
    drained += got;
  }
}

// The StreamWriter of one streamed response body: HTTP/1.1 chunks, or raw
// bytes for an HTTP/1.0 close-delimited body. Each write gets its own
// deadline, so a stream may stay open indefinitely while the client reads.
class ConnectionWriter final : public StreamWriter {
 public:
  ConnectionWriter(beast::tcp_stream& stream, bool chunked, Millis timeout)
      : stream_(stream), chunked_(chunked), timeout_(timeout) {}

  asio::awaitable<bool> Write(std::string_view data) override {
    if (failed_) co_return false;
    if (data.empty()) co_return true;  // an empty chunk would end the body
    stream_.expires_after(std::chrono::milliseconds(timeout_));
    beast::error_code ec;
    if (chunked_) {
      // A named local, not a temporary in the co_await: GCC 12 may destroy
      // such temporaries twice (see api/await_engine.h), and a chunk owns
      // shared state.
      auto chunk = beast_http::make_chunk(asio::buffer(data.data(), data.size()));
      std::tie(ec, std::ignore) = co_await asio::async_write(stream_, chunk, kNoThrow);
    } else {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(stream_, asio::buffer(data.data(), data.size()), kNoThrow);
    }
    if (ec) failed_ = true;
    co_return !failed_;
  }

  bool failed() const { return failed_; }

 private:
  beast::tcp_stream& stream_;
  bool chunked_;
  Millis timeout_;
  bool failed_ = false;
};

// Sends a response whose body comes from res.stream (see types.h for the
// framing). Returns true if the connection may serve another request.
// A separate coroutine so that ordinary requests never pay for its frame.
asio::awaitable<bool> WriteStreamed(beast::tcp_stream& stream, Response res, unsigned version,
                                    bool keep_alive, const ServerLimits& limits) {
  BodyStream body = std::move(res.stream);
  const bool chunked = version == 11;
  beast_http::response<beast_http::empty_body> head(std::move(res.base()));
  head.version(chunked ? 11 : 10);
  head.erase(Field::content_length);
  if (chunked) {
    head.keep_alive(keep_alive);
    head.chunked(true);
  } else {
    head.keep_alive(false);  // the end of the body is the end of the connection
    keep_alive = false;
  }
  beast_http::response_serializer<beast_http::empty_body> sr(head);
  stream.expires_after(std::chrono::milliseconds(limits.request_timeout));
  auto [ec, n] = co_await beast_http::async_write_header(stream, sr, kNoThrow);
  if (ec) co_return false;
  ConnectionWriter writer(stream, chunked, limits.request_timeout);
  try {
    co_await body(writer);
  } catch (const std::exception& e) {
    spdlog::error("response stream threw: {}", e.what());  // a bug; the body is cut short
    co_return false;
  }
  if (writer.failed()) co_return false;
  if (chunked) {
    stream.expires_after(std::chrono::milliseconds(limits.request_timeout));
    auto last = beast_http::make_chunk_last();  // a named local, as in Write()
    std::tie(ec, n) = co_await asio::async_write(stream, last, kNoThrow);
    if (ec) co_return false;
  }
  co_return keep_alive;
}

Response BodyTooLarge(const ServerLimits& limits) {
  return Problem(Status::payload_too_large,
                 fmt::format("request body exceeds the limit of {} bytes", limits.body_limit));
}

Response Refused(const Refusal& refusal) { return Problem(refusal.status, refusal.detail); }

// A refusal given once the request's header was parsed echoes the client's
// X-Request-Id, as a routed answer would.
Response Echoing(Response res, const RequestHeader& req) {
  res.set(kRequestIdField, RequestIdFor(req[kRequestIdField]));
  return res;
}

// Decrements a connection count when the connection's coroutine ends (or is
// destroyed with its loop).
class CountedConnection {
 public:
  explicit CountedConnection(std::atomic<size_t>& count) : count_(count) {}
  ~CountedConnection() { count_.fetch_sub(1, std::memory_order_relaxed); }
  CountedConnection(const CountedConnection&) = delete;
  CountedConnection& operator=(const CountedConnection&) = delete;

 private:
  std::atomic<size_t>& count_;
};

// Reads until `buffer` holds a whole request header block, as `scanner`
// sees it; nullopt if the connection ended or a deadline passed first (the
// caller then closes it without an answer). The header deadline runs from
// `header_deadline_now` (a fresh connection: counted from the accept) or
// else from the first byte of the request; before that byte, a keep-alive
// connection may idle for idle_timeout.
asio::awaitable<std::optional<HeaderScanner::State>> ReadHeaderBlock(beast::tcp_stream& stream,
                                                                     beast::flat_buffer& buffer,
                                                                     HeaderScanner& scanner,
                                                                     const ServerLimits& limits,
                                                                     bool header_deadline_now) {
  bool deadline_running = header_deadline_now || buffer.size() > 0;
  stream.expires_after(
      std::chrono::milliseconds(deadline_running ? limits.header_timeout : limits.idle_timeout));
  for (;;) {
    const auto data = buffer.data();
    const auto state =
        scanner.Scan(std::string_view(static_cast<const char*>(data.data()), data.size()));
    if (state != HeaderScanner::State::kIncomplete) co_return state;
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kReadChunk), kNoThrow);
    if (ec) co_return std::nullopt;  // closed, reset, or the deadline (Beast closed the socket)
    buffer.commit(n);
    if (!deadline_running) {
      // Its first byte: from now on the request has header_timeout, however
      // slowly the rest arrives.
      stream.expires_after(std::chrono::milliseconds(limits.header_timeout));
      deadline_running = true;
    }
  }
}

asio::awaitable<void> Session(tcp::socket socket, const ServerLimits& limits,
                              const RequestHandler& handler, std::atomic<size_t>& open) {
  CountedConnection counted(open);
  Peer peer;
  {
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    const auto address = remote.address();
    peer.loopback =
        !ec && (address.is_loopback() ||
                (address.is_v6() && address.to_v6().is_v4_mapped() &&
                 asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback()));
  }
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (bool first_request = true;; first_request = false) {
    HeaderScanner scanner(limits.header_limit, limits.max_header_count);
    auto scanned = co_await ReadHeaderBlock(stream, buffer, scanner, limits, first_request);
    if (!scanned) break;
    if (*scanned == HeaderScanner::State::kRefused) {
      co_await WriteAndClose(stream, Refused(scanner.refusal()), 11);
      break;
    }
    buffer.consume(scanner.skip());  // empty lines before the request line
    // Kept for the answer to a version Beast cannot parse: its last bytes.
    std::string request_line;
    if (const size_t line = scanner.request_line_end() - scanner.skip(); line >= 2) {
      const auto data = buffer.data();
      const std::string_view whole(static_cast<const char*>(data.data()), line - 2);
      request_line = whole.substr(whole.size() - std::min<size_t>(whole.size(), kRequestLineTail));
    }
    // The whole header block is in the buffer: this parses it without I/O.
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
    parser.body_limit(limits.body_limit);
    auto [ec, n] = co_await beast_http::async_read_header(stream, buffer, parser, kNoThrow);
    if (ec == beast_http::error::header_limit) {  // the scanner should have refused it already
      co_await WriteAndClose(
          stream,
          Problem(Status::request_header_fields_too_large,
                  fmt::format("request headers exceed {} bytes", limits.header_limit)),
          11);
      break;
    }
    if (ec == beast_http::error::body_limit) {  // Content-Length over the limit
      co_await WriteAndClose(stream, Echoing(BodyTooLarge(limits), parser.get()),
                             parser.get().version());
      break;
    }
    if (ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      break;
    }
    if (ec == beast_http::error::bad_version) {  // maybe a version other than 1.0 and 1.1
      co_await WriteAndClose(stream, Refused(RequestLineRefusal(request_line)), 11);
      break;
    }
    if (ec) {
      co_await WriteAndClose(stream, Problem(Status::bad_request, "malformed HTTP request"), 11);
      break;
    }
    if (auto refusal = CheckRequestFraming(parser.get())) {
      co_await WriteAndClose(stream, Echoing(Refused(*refusal), parser.get()),
                             parser.get().version());
      break;
    }
    NormalizeRequestTarget(parser.get());
    const unsigned version = parser.get().version();
    if (beast::iequals(parser.get()[Field::expect], "100-continue") && version == 11) {
      beast_http::response<beast_http::empty_body> cont{Status::continue_, 11};
      co_await beast_http::async_write(stream, cont, kNoThrow);
    }
    if (!parser.is_done()) {  // a body follows; a GET's request is complete already
      // Beast merges the trailer fields of a chunked body into the header,
      // where they would pass for fields checked above (Host, say). RFC 9110
      // §6.5.1 lets a recipient discard trailers: acceptd has no use for
      // them, so the header as received is put back after the body.
      std::optional<RequestHeader> header;
      if (parser.chunked()) header.emplace(parser.get().base());
      stream.expires_after(std::chrono::milliseconds(limits.request_timeout));
      std::tie(ec, n) = co_await beast_http::async_read(stream, buffer, parser, kNoThrow);
      if (ec == beast_http::error::body_limit) {  // chunked body over the limit
        co_await WriteAndClose(stream, Echoing(BodyTooLarge(limits), parser.get()), version);
        break;
      }
      // A timeout has closed the socket already (Beast's tcp_stream): nothing to answer.
      if (ec) {
        if (ec != asio::error::eof && ec != beast_http::error::end_of_stream &&
            ec != beast_http::error::partial_message && ec != asio::error::connection_reset &&
            ec != beast::error::timeout) {
          co_await WriteAndClose(
              stream, Echoing(Problem(Status::bad_request, "malformed HTTP request"), parser.get()),
              version);
        }
        break;
      }
      if (header) parser.get().base() = std::move(*header);
    }
    Request req = parser.release();
    const bool keep_alive = req.keep_alive();
    Response res;
    try {
      res = co_await handler(req, peer);
    } catch (const std::exception& e) {
      // Handlers report errors as responses; this is a bug. Answer anyway.
      spdlog::error("request handler threw: {}", e.what());
      res = Problem(Status::internal_server_error, "internal error");
    }
    if (res.stream) {
      if (!co_await WriteStreamed(stream, std::move(res), version, keep_alive, limits)) break;
      continue;
    }
    res.version(version == 10 ? 10 : 11);
    res.keep_alive(keep_alive);
    if (res.result() == Status::no_content || res.result() == Status::not_modified) {
      res.erase(Field::content_length);  // RFC 9110 8.6: no Content-Length on 204/304
    } else {
      res.prepare_payload();
    }
    stream.expires_after(std::chrono::milliseconds(limits.request_timeout));
    auto [wec, wn] = co_await beast_http::async_write(stream, res, kNoThrow);
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

// Answers a connection accepted beyond max_connections with 503 and closes
// it. These are counted apart: past kMaxRefusing at once (a flood), further
// ones are closed unanswered, so refusing costs a bounded number of sockets.
asio::awaitable<void> RefuseConnection(tcp::socket socket, std::atomic<size_t>& refusing) {
  CountedConnection counted(refusing);
  beast::tcp_stream stream(std::move(socket));
  Response res =
      Problem(Status::service_unavailable, "the server has too many open connections; retry later");
  res.set(Field::retry_after, std::to_string(kOverloadRetryAfterSeconds));
  co_await WriteAndClose(stream, std::move(res), 11, kRefuseLinger);
}

// Starts serving an accepted connection on `target`, or refuses it beyond
// max_connections. Only the accept loop calls this, so checking then adding
// cannot overshoot; sessions ending meanwhile only make room.
void Admit(tcp::socket socket, asio::io_context& target, const ServerLimits& limits,
           const RequestHandler& handler, std::atomic<size_t>& open,
           std::atomic<size_t>& refusing) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  if (open.load(std::memory_order_relaxed) >= limits.max_connections) {
    if (refusing.load(std::memory_order_relaxed) >= kMaxRefusing) {
      socket.close(ec);
      return;
    }
    refusing.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(target, RefuseConnection(std::move(socket), refusing), asio::detached);
    return;
  }
  open.fetch_add(1, std::memory_order_relaxed);
  asio::co_spawn(target, Session(std::move(socket), limits, handler, open), asio::detached);
}

// One acceptor; accepted connections are dealt round-robin to the loops, each
// then served entirely by its own loop. (SO_REUSEPORT would spread accepts
// too, but it would also let a second server silently share the port.)
//
// Each wake-up drains the backlog (up to kAcceptBurst connections) with
// non-blocking accepts, as nginx's multi_accept does. One accept per wake-up
// meant one per pass of the event loop: when the loop was busy (a burst of
// load), each pass ran hundreds of handlers, and a burst of new connections
// waited in the backlog for 1-2 s while the connections already accepted were
// served in milliseconds (issue 11's end-to-end p99.9 stall).
asio::awaitable<void> AcceptLoop(tcp::acceptor& acceptor,
                                 const std::vector<asio::io_context*>& loops,
                                 const ServerLimits& limits, const RequestHandler& handler,
                                 std::atomic<size_t>& open, std::atomic<size_t>& refusing) {
  size_t next = 0;
  auto next_loop = [&]() -> asio::io_context& {
    asio::io_context& target = *loops[next];
    next = (next + 1) % loops.size();
    return target;
  };
  for (;;) {
    asio::io_context& target = next_loop();
    auto [ec, socket] = co_await acceptor.async_accept(target, kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and the like: back off briefly, keep serving.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(kNoThrow);
      continue;
    }
    Admit(std::move(socket), target, limits, handler, open, refusing);
    for (size_t i = 1; i < kAcceptBurst; ++i) {
      tcp::socket more(*loops[next]);
      acceptor.accept(more, ec);  // the acceptor is non-blocking: would_block once drained
      if (ec) break;              // drained, or an error the next async_accept reports
      asio::io_context& more_target = next_loop();
      Admit(std::move(more), more_target, limits, handler, open, refusing);
    }
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
  tcp::acceptor acceptor(loops_.front()->ctx);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) acceptor.non_blocking(true, ec);  // AcceptLoop drains the backlog
  if (ec) {
    return Error::Unavailable(fmt::format("cannot listen on {}:{}: {}", host, port, ec.message()),
                              "cannot listen");
  }
  const uint16_t bound = acceptor.local_endpoint().port();
  acceptor_.emplace(std::move(acceptor));
  return bound;
}

void HttpServer::Start() {
  std::vector<asio::io_context*> contexts;
  for (auto& loop : loops_) contexts.push_back(&loop->ctx);
  contexts_ = std::move(contexts);
  if (acceptor_) {
    asio::co_spawn(loops_.front()->ctx,
                   AcceptLoop(*acceptor_, contexts_, limits_, handler_, open_connections_,
                              refusing_connections_),
                   asio::detached);
  }
  for (auto& loop : loops_) {
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
