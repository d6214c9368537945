// The one outgoing HTTP(S) client of acceptd: completion callbacks and the
// compatibility routes' redirects (webhooks/http_post.h, under the SSRF guard)
// and handler = "http" (workers/http/, an operator-chosen backend) send
// through Send() below. Do not write a second one.
//
// One call is one request and its response, within one total deadline
// (resolve, connect, TLS handshake, write, read). The URL is read by
// webhooks::ParseCallbackUrl (absolute http/https, no credentials, no
// ambiguous hosts). With an AddressPolicy every address the host resolves to
// must pass it and each endpoint is checked once more as it is connected
// (resolver.h); without one the host is resolved and connected as given.
// https verifies the certificate chain against the system trust store and
// the host name (SNI for names) unless verify_tls is false. A 3xx is
// returned as it is, never followed.
//
// Keep-alive: with a ConnectionPool the request asks to keep the connection
// open and a connection whose response was read whole goes back to the pool,
// to serve the next request to the same scheme, host and port. Without one
// every request has its own connection ("Connection: close"), as callbacks
// have always had. See ConnectionPool for the retry rule on a reused
// connection the server had closed.
//
// Thread safety: Send() runs on the calling coroutine's executor. A
// ConnectionPool may only be used by coroutines of one single-threaded
// io_context (its connections are bound to it). AbortSignal::Abort() may be
// called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "webhooks/address_policy.h"
#include "webhooks/resolver.h"

namespace acceptd::outbound {

inline constexpr Millis kDefaultRequestTimeout = 10'000;
inline constexpr size_t kDefaultMaxIdlePerHost = 8;
// A server closes idle connections after its own timeout (nginx: 75 s,
// Node: 5 s); one idle this long is not offered again.
inline constexpr Millis kDefaultMaxIdleTime = 30'000;

struct HttpRequest {
  std::string method = "POST";  // any token; "GET", "HEAD", "PUT", ... by name
  std::string url;
  // Sent after acceptd's own (Host, User-Agent, Content-Type): a name given
  // here replaces acceptd's value.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type;                 // empty: no Content-Type header
  Millis timeout = kDefaultRequestTimeout;  // the whole exchange
  // nullopt: only the status line and headers are read (the connection is
  // then not reused). Otherwise the body is read too, up to this many bytes;
  // a longer one is an error (kPayloadTooLarge), never truncated.
  std::optional<size_t> max_response_body;
  // May the request be sent twice? nullopt: by its method (RFC 9110 9.2.2:
  // GET, HEAD, OPTIONS, TRACE, PUT, DELETE are idempotent). See ConnectionPool.
  std::optional<bool> idempotent;
};

struct HttpResponse {
  int status = 0;
  std::string content_type;        // as the server sent it; "" if it sent none
  std::string retry_after;         // as the server sent it; "" if it sent none
  std::string body;                // "" unless max_response_body was set
  bool reused_connection = false;  // served over a pooled connection
};

// Where a request meets the network. Production uses the defaults; tests
// inject scripted DNS answers and observe every connection attempt.
struct NetworkSeams {
  const webhooks::HostResolver* resolver = nullptr;  // nullptr: SystemResolver()
  // Called with each endpoint just before acceptd connects to it (after the
  // guard, if any, passed it), on the connecting thread; false skips that
  // endpoint.
  std::function<bool(const boost::asio::ip::tcp::endpoint&)> before_connect;
};

// Idle keep-alive connections, a few per scheme/host/port (the oldest is
// closed when a host has more), each offered again for at most max_idle_time.
//
// A pooled connection may have been closed by the server meanwhile. Before
// reuse, one that has anything to read (the server's FIN, a TLS close_notify,
// an unsolicited 408) is dropped without being used. If a reused connection
// still fails before any byte of the response arrived, the request is sent
// once more on a fresh connection when that cannot run it twice:
//  - an idempotent request: when writing it failed, or the connection ended
//    before the first byte of the response;
//  - any other (POST, PATCH): only when writing it failed (the server had
//    closed the connection, so it did not take the request). A connection
//    that ends after the request was written may have run it: that is
//    reported as an error, and the caller decides (handler = "http" lets the
//    engine retry, with the same Idempotency-Key).
// A timeout or an abort is never retried.
class ConnectionPool {
 public:
  struct Options {
    size_t max_idle_per_host = kDefaultMaxIdlePerHost;
    Millis max_idle_time = kDefaultMaxIdleTime;
  };
  ConnectionPool() : ConnectionPool(Options{}) {}
  explicit ConnectionPool(Options options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  size_t idle() const;  // connections idle now, all hosts
  // Closes the idle connections that are too old or that the server closed
  // (the check made before any reuse); returns idle().
  size_t Prune();
  int connections_opened() const;  // fresh connections made through this pool
  int reuses() const;              // requests sent over a pooled connection

  struct Connection;  // defined in http_client.cc

 private:
  friend struct PoolAccess;
  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::shared_ptr<Connection>>> idle_;  // by host key
  int opened_ = 0;
  int reuses_ = 0;
};

// Aborts a request in flight from another thread (a cancelled job): the
// request's connection is closed on its executor, so Send() returns
// promptly with kUnavailable "aborted". A signal serves one Send().
class AbortSignal : public std::enable_shared_from_this<AbortSignal> {
 public:
  // Must be owned by a std::shared_ptr.
  void Abort();
  bool aborted() const;

 private:
  friend struct AbortAccess;
  mutable std::mutex mu_;
  bool aborted_ = false;
  std::optional<boost::asio::any_io_executor> executor_;
  std::function<void()> close_;  // closes the current connection; on executor_
};

struct ClientOptions {
  // The SSRF guard (callbacks); nullptr: none (an operator-chosen URL).
  const webhooks::AddressPolicy* policy = nullptr;
  NetworkSeams seams;
  bool verify_tls = true;          // false: any certificate, any name (test backends only)
  ConnectionPool* pool = nullptr;  // nullptr: one connection per request
};

// The server's answer (any status), or:
//  - kInvalidArgument: the URL is malformed or the guard refused its address;
//  - kUnavailable: no answer (resolve, connect, TLS, write or read failed,
//    the deadline passed: the detail says which; or aborted);
//  - kPayloadTooLarge: the response body exceeds max_response_body.
// The detail names the problem, never the response's bytes.
boost::asio::awaitable<Result<HttpResponse>> Send(HttpRequest request, ClientOptions options,
                                                  std::shared_ptr<AbortSignal> abort = nullptr);

}  // namespace acceptd::outbound
