#include "outbound/http_client.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace acceptd::outbound {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr char kUserAgent[] = "acceptd/0.1";
// Larger than Beast's 8 KiB default: backends behind proxies send long
// header sections (cookies, tracing).
constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;

// One client TLS context per verification mode for the process: OpenSSL lets
// many connections share one, and loading the trust store once is cheaper.
asio::ssl::context& ClientTls(bool verify) {
  static asio::ssl::context* verifying = [] {
    auto* ctx = new asio::ssl::context(asio::ssl::context::tls_client);
    ctx->set_default_verify_paths();
    ctx->set_verify_mode(asio::ssl::verify_peer);
    return ctx;
  }();
  static asio::ssl::context* trusting = [] {
    auto* ctx = new asio::ssl::context(asio::ssl::context::tls_client);
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }();
  return verify ? *verifying : *trusting;
}

bool IsIdempotent(std::string_view method) {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    if (method == m) return true;
  }
  return false;
}

Error Unavailable(std::string detail) { return Error::Unavailable(detail, detail); }

}  // namespace

struct ConnectionPool::Connection {
  explicit Connection(const asio::any_io_executor& ex) { plain.emplace(ex); }
  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  std::optional<beast::tcp_stream> plain;                   // http, or before the handshake
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;  // https after the handshake
  beast::flat_buffer buffer;
  SteadyTime idle_since;
};

using Connection = ConnectionPool::Connection;

// The pool's and the abort signal's internals, for Send() only.
struct PoolAccess {
  // Drops idle connections that are too old or that have something to read
  // (the server closed them, or sent what no request asked for).
  static std::shared_ptr<Connection> Take(ConnectionPool& pool, const std::string& key) {
    std::lock_guard lock(pool.mu_);
    auto it = pool.idle_.find(key);
    if (it == pool.idle_.end()) return nullptr;
    auto& idle = it->second;
    const SteadyTime oldest =
        std::chrono::steady_clock::now() - std::chrono::milliseconds(pool.options_.max_idle_time);
    while (!idle.empty()) {
      std::shared_ptr<Connection> c = std::move(idle.back());  // the most recent: the warmest
      idle.pop_back();
      if (Usable(*c, oldest)) {
        ++pool.reuses_;
        return c;
      }
    }
    return nullptr;
  }
  // Young enough, and nothing to read: a server that closed the connection
  // (FIN, TLS close_notify) or answered what was not asked (a 408) made it
  // readable.
  static bool Usable(Connection& c, SteadyTime oldest) {
    if (c.idle_since < oldest || c.buffer.size() != 0) return false;
    char byte;
    const ssize_t n = ::recv(c.tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  static SteadyTime Oldest(const ConnectionPool& pool) {
    return std::chrono::steady_clock::now() -
           std::chrono::milliseconds(pool.options_.max_idle_time);
  }
  static void Put(ConnectionPool& pool, const std::string& key, std::shared_ptr<Connection> c) {
    if (pool.options_.max_idle_per_host == 0) return;
    c->idle_since = std::chrono::steady_clock::now();
    std::lock_guard lock(pool.mu_);
    auto& idle = pool.idle_[key];
    idle.push_back(std::move(c));
    if (idle.size() > pool.options_.max_idle_per_host) idle.erase(idle.begin());
  }
  static void CountOpened(ConnectionPool& pool) {
    std::lock_guard lock(pool.mu_);
    ++pool.opened_;
  }
};

struct AbortAccess {
  // Binds the signal to the request's executor; false if already aborted.
  static bool Arm(AbortSignal& s, const asio::any_io_executor& ex) {
    std::lock_guard lock(s.mu_);
    s.executor_ = ex;
    return !s.aborted_;
  }
  // What Abort() runs on the executor: closes `c` while it serves the
  // request (nullptr: nothing to close).
  static void Watch(AbortSignal& s, const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(s.mu_);
    if (!c) {
      s.close_ = nullptr;
      return;
    }
    s.close_ = [weak = std::weak_ptr<Connection>(c)] {
      if (auto conn = weak.lock()) conn->tcp().close();
    };
  }
};

ConnectionPool::ConnectionPool(Options options) : options_(options) {}
ConnectionPool::~ConnectionPool() = default;

size_t ConnectionPool::idle() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}
size_t ConnectionPool::Prune() {
  std::lock_guard lock(mu_);
  const SteadyTime oldest = PoolAccess::Oldest(*this);
  size_t n = 0;
  for (auto& [key, list] : idle_) {
    std::erase_if(list, [&](const std::shared_ptr<Connection>& c) {
      return !PoolAccess::Usable(*c, oldest);
    });
    n += list.size();
  }
  return n;
}
int ConnectionPool::connections_opened() const {
  std::lock_guard lock(mu_);
  return opened_;
}
int ConnectionPool::reuses() const {
  std::lock_guard lock(mu_);
  return reuses_;
}

void AbortSignal::Abort() {
  std::lock_guard lock(mu_);
  if (aborted_) return;
  aborted_ = true;
  if (!executor_) return;  // not started: Send() sees the flag
  // The connection belongs to its executor's thread: it is closed there,
  // which ends the pending operation with operation_aborted.
  asio::post(*executor_, [self = shared_from_this(), this] {
    std::function<void()> close;
    {
      std::lock_guard inner(mu_);
      close = close_;
    }
    if (close) close();
  });
}

bool AbortSignal::aborted() const {
  std::lock_guard lock(mu_);
  return aborted_;
}

namespace {

struct Exchanged {
  std::optional<Result<HttpResponse>> result;  // nullopt: stale connection, send again
  bool reusable = false;                       // the response was read whole, keep-alive
};

bool Aborted(const std::shared_ptr<AbortSignal>& abort) { return abort && abort->aborted(); }

// A connection to the target's host, within the deadline; TLS shaken hands.
asio::awaitable<Result<std::shared_ptr<Connection>>> Connect(
    const webhooks::CallbackTarget& target, const ClientOptions& options, SteadyTime deadline,
    const std::shared_ptr<AbortSignal>& abort) {
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  const Millis remaining =
      std::max<Millis>(1, std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count());
  const webhooks::HostResolver& resolver =
      options.seams.resolver ? *options.seams.resolver : webhooks::SystemResolver();
  std::vector<tcp::endpoint> endpoints;
  if (options.policy) {
    auto allowed = co_await webhooks::ResolveAllowed(target, *options.policy, remaining, resolver);
    if (!allowed) co_return std::move(allowed).error();
    endpoints = std::move(*allowed);
  } else if (target.address) {
    endpoints.emplace_back(*target.address, target.port);
  } else {
    auto found = co_await resolver.Lookup(target.host, remaining);
    if (!found) co_return std::move(found).error();
    for (const asio::ip::address& a : *found) endpoints.emplace_back(a, target.port);
    if (endpoints.empty()) {
      co_return Error::InvalidArgument(fmt::format("the host '{}' does not resolve", target.host));
    }
  }
  if (Aborted(abort)) co_return Unavailable("aborted");

  // The guard once more at the point of connecting: the allow-list and the
  // refused ranges apply to the address actually connected, whatever path
  // led to it.
  auto may_connect = [&](const boost::system::error_code&, const tcp::endpoint& e) {
    if (options.policy && !options.policy->Check(e.address())) return false;
    return !options.seams.before_connect || options.seams.before_connect(e);
  };
  auto conn = std::make_shared<Connection>(ex);
  if (abort) AbortAccess::Watch(*abort, conn);
  conn->plain->expires_at(deadline);
  auto [cec, endpoint] = co_await conn->plain->async_connect(endpoints, may_connect, kNoThrow);
  if (Aborted(abort)) co_return Unavailable("aborted");
  if (cec) {
    co_return Unavailable(fmt::format("connecting to {}: {}", target.host, cec.message()));
  }
  if (!target.tls) co_return conn;

  conn->tls.emplace(std::move(*conn->plain), ClientTls(options.verify_tls));
  conn->plain.reset();
  if (abort) AbortAccess::Watch(*abort, conn);  // the socket moved into the TLS stream
  // SNI carries host names only (RFC 6066); an address literal is verified
  // against the certificate's IP entries without it.
  if (!target.address &&
      !SSL_set_tlsext_host_name(conn->tls->native_handle(), target.host.c_str())) {
    co_return Unavailable("TLS: cannot set the server name");
  }
  if (options.verify_tls) {
    conn->tls->set_verify_callback(asio::ssl::host_name_verification(target.host));
  }
  auto [hec] = co_await conn->tls->async_handshake(asio::ssl::stream_base::client, kNoThrow);
  if (Aborted(abort)) co_return Unavailable("aborted");
  if (hec) co_return Unavailable("TLS handshake: " + hec.message());
  co_return conn;
}

template <typename Body>
void Configure(http::response_parser<Body>& parser) {
  parser.header_limit(kMaxResponseHeaderBytes);
}

HttpResponse ResponseOf(const http::response_header<>& h) {
  HttpResponse r;
  r.status = static_cast<int>(h.result_int());
  r.content_type = std::string(h[http::field::content_type]);
  r.retry_after = std::string(h[http::field::retry_after]);
  return r;
}

// Writes the request and reads the response on an open connection.
template <typename Stream>
asio::awaitable<Exchanged> Exchange(Stream& stream, Connection& conn,
                                    const http::request<http::string_body>& req,
                                    const HttpRequest& request, bool reused, bool idempotent,
                                    SteadyTime deadline,
                                    const std::shared_ptr<AbortSignal>& abort) {
  Exchanged out;
  conn.tcp().expires_at(deadline);
  auto [wec, wn] = co_await http::async_write(stream, req, kNoThrow);
  if (Aborted(abort)) {
    out.result = Unavailable("aborted");
    co_return out;
  }
  if (wec) {
    // A reused connection the server had closed did not take the request.
    if (reused && wec != beast::error::timeout) co_return out;
    out.result = Unavailable("sending the request: " + wec.message());
    co_return out;
  }
  // Whether a failed read may be retried: nothing of the response arrived
  // on a reused connection, and the request may run twice.
  auto stale = [&](const boost::system::error_code& ec, bool got_some) {
    return reused && idempotent && !got_some && ec != beast::error::timeout;
  };
  if (!request.max_response_body) {
    http::response_parser<http::empty_body> parser;
    Configure(parser);
    parser.skip(true);  // no body is read; only the status matters
    auto [rec, rn] = co_await http::async_read_header(stream, conn.buffer, parser, kNoThrow);
    if (Aborted(abort)) {
      out.result = Unavailable("aborted");
    } else if (rec) {
      if (!stale(rec, parser.got_some())) {
        out.result = Unavailable("reading the response: " + rec.message());
      }
    } else {
      out.result = ResponseOf(parser.get());
    }
    co_return out;
  }
  http::response_parser<http::string_body> parser;
  Configure(parser);
  parser.body_limit(*request.max_response_body);
  if (req.method() == http::verb::head) parser.skip(true);
  auto [rec, rn] = co_await http::async_read(stream, conn.buffer, parser, kNoThrow);
  if (Aborted(abort)) {
    out.result = Unavailable("aborted");
  } else if (rec == http::error::body_limit) {
    out.result =
        Error{ErrorCode::kPayloadTooLarge,
              fmt::format("the response (status {}) is larger than {} bytes",
                          parser.get().result_int(), *request.max_response_body),
              fmt::format("the response is larger than {} bytes", *request.max_response_body)};
  } else if (rec) {
    if (!stale(rec, parser.got_some())) {
      out.result = Unavailable("reading the response: " + rec.message());
    }
  } else {
    HttpResponse r = ResponseOf(parser.get());
    r.body = std::move(parser.get().body());
    r.reused_connection = reused;
    out.reusable = parser.keep_alive();
    out.result = std::move(r);
  }
  co_return out;
}

}  // namespace

asio::awaitable<Result<HttpResponse>> Send(HttpRequest request, ClientOptions options,
                                           std::shared_ptr<AbortSignal> abort) {
  auto target = webhooks::ParseCallbackUrl(request.url);
  if (!target) co_return std::move(target).error();
  const SteadyTime deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(request.timeout);
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  if (abort && !AbortAccess::Arm(*abort, executor)) co_return Unavailable("aborted");
  // Unwatches the connection whatever way this returns: a later Abort()
  // must not close a connection that went back to the pool.
  struct Unwatch {
    AbortSignal* s;
    ~Unwatch() {
      if (s) AbortAccess::Watch(*s, nullptr);
    }
  } unwatch{abort.get()};

  http::request<http::string_body> req;
  req.version(11);
  if (const http::verb verb = http::string_to_verb(request.method); verb != http::verb::unknown) {
    req.method(verb);
  } else {
    req.method_string(request.method);
  }
  req.target(target->target);
  req.set(http::field::host, target->host_header);
  req.set(http::field::user_agent, kUserAgent);
  if (!request.content_type.empty()) req.set(http::field::content_type, request.content_type);
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = std::move(request.body);
  req.keep_alive(options.pool != nullptr);
  req.prepare_payload();

  const bool idempotent = request.idempotent.value_or(IsIdempotent(request.method));
  // A connection made without verification never serves a verifying request.
  const std::string key =
      fmt::format("{}://{}:{}{}", target->tls ? "https" : "http", target->host, target->port,
                  target->tls && !options.verify_tls ? " unverified" : "");
  // At most two rounds: a pooled connection found stale, then a fresh one.
  for (int round = 0;; ++round) {
    std::shared_ptr<Connection> conn;
    if (options.pool && round == 0) conn = PoolAccess::Take(*options.pool, key);
    const bool reused = conn != nullptr;
    if (!conn) {
      auto made = co_await Connect(*target, options, deadline, abort);
      if (!made) co_return std::move(made).error();
      conn = std::move(*made);
      if (options.pool) PoolAccess::CountOpened(*options.pool);
    }
    if (abort) AbortAccess::Watch(*abort, conn);
    Exchanged ex;
    if (conn->tls) {
      ex = co_await Exchange(*conn->tls, *conn, req, request, reused, idempotent, deadline, abort);
    } else {
      ex =
          co_await Exchange(*conn->plain, *conn, req, request, reused, idempotent, deadline, abort);
    }
    if (!ex.result) continue;  // the stale pooled connection is dropped
    if (abort) AbortAccess::Watch(*abort, nullptr);
    if (ex.reusable && options.pool && !Aborted(abort)) {
      conn->tcp().expires_never();
      PoolAccess::Put(*options.pool, key, std::move(conn));
    }
    co_return std::move(*ex.result);
  }
}

}  // namespace acceptd::outbound
