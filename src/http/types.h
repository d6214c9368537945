// The HTTP message types shared by the server, the router and the API.
//
// A Response is a whole Beast response (status, headers, string body). For
// the rare response whose body is produced over time (Server-Sent Events), a
// handler also sets Response::stream: the server then writes the status line
// and headers, ignores body(), and hands the connection's writer to the
// stream, which writes the body piece by piece (see BodyStream below). An
// ordinary response leaves `stream` empty, which costs one empty
// std::function (no allocation, no extra coroutine) per request.
#pragma once

#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>

namespace acceptd::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Status = beast_http::status;
using Verb = beast_http::verb;
using Field = beast_http::field;

// Writes the pieces of a streamed response body to the client. Owned by the
// server's connection; valid only while the BodyStream it was given to runs,
// and used only from that connection's executor (one write at a time).
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends `data` to the client (an HTTP/1.1 chunk, or raw bytes on a
  // close-delimited HTTP/1.0 body) and suspends until it is written.
  // Returns false if the client is gone or did not take the bytes within the
  // server's write timeout; every later Write then returns false at once, and
  // the stream should return. Empty `data` writes nothing and returns true.
  virtual boost::asio::awaitable<bool> Write(std::string_view data) = 0;
};

// Produces a streamed body through the writer, then returns; the body ends
// when it returns. Runs on the connection's executor, after the headers were
// sent, so it can no longer change the status or headers. Must not throw
// (if it does, the server logs it and drops the connection). While it runs
// the server does not read from the connection, so a client that went away
// is noticed only at the next Write: a long stream should write something
// (e.g. a comment) every few seconds.
using BodyStream = std::function<boost::asio::awaitable<void>(StreamWriter&)>;

// A Beast response<string_body> plus an optional body stream.
//
// Framing of a streamed body (the server sets it; handlers must not set
// Content-Length or Transfer-Encoding): HTTP/1.1 uses chunked transfer coding
// and, if the client asked for keep-alive, the connection serves the next
// request after the last chunk; HTTP/1.0 gets a close-delimited body and the
// connection closes when the stream returns.
class Response : public beast_http::response<beast_http::string_body> {
 public:
  using Base = beast_http::response<beast_http::string_body>;
  using Base::Base;
  Response() = default;
  Response(Base&& base) : Base(std::move(base)) {}  // NOLINT(google-explicit-constructor)

  BodyStream stream;  // empty: body() is the whole body
};

// What the connection knows about the other end of a request.
struct Peer {
  bool loopback = true;  // connected from 127.0.0.0/8 or ::1 (or IPv4-mapped loopback)
};

// Produces the response to one request. Must not throw; runs on the
// connection's I/O thread and may suspend (e.g. to await a durable commit).
using RequestHandler = std::function<boost::asio::awaitable<Response>(Request&, const Peer&)>;

}  // namespace acceptd::http
