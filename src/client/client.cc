#include "client/client.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <ctime>
#include <limits>
#include <optional>
#include <thread>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace acceptd::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kMaxResponseHeader = 64 * 1024;
constexpr Millis kMaxParsedRetryAfter{24LL * 3600 * 1000};

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

// An absolute http(s) URL, or kInvalidArgument naming it.
Result<urls::url> ParseHttpUrl(std::string_view text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed) {
    return Error::InvalidArgument("invalid URL '" + OneLine(std::string(text)) +
                                  "' (expected http[s]://host[:port]/...)");
  }
  urls::url u(*parsed);
  if (u.scheme_id() != urls::scheme::http && u.scheme_id() != urls::scheme::https) {
    return Error::InvalidArgument("unsupported URL scheme in '" + std::string(text) +
                                  "' (expected http:// or https://)");
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    return Error::InvalidArgument("URL '" + std::string(text) + "' has no host");
  }
  return u;
}

std::string Origin(const urls::url_view& u) {
  return std::string(u.scheme()) + "://" + std::string(u.encoded_host_and_port());
}

// Pops a trailing empty segment ("http://h/prefix/" -> "/prefix").
void TrimTrailingSlash(urls::url& u) {
  auto segs = u.segments();
  if (!segs.empty() && segs.back().empty()) segs.pop_back();
}

bool IsBareId(std::string_view job) {
  return !job.empty() && job.find('/') == std::string_view::npos &&
         job.find(':') == std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads the status-document fields a caller needs; tolerant of documents
// that lack them (generic servers).
JobStatus ToJobStatus(HttpResponse res, std::string status_url) {
  JobStatus st;
  st.http_status = res.status;
  error_code ec;
  json::value doc = json::parse(res.body, ec);
  if (!ec) st.document = std::move(doc);
  if (const json::object* obj = st.document.if_object()) {
    if (const json::value* v = obj->if_contains("id"); v && v->is_string()) {
      st.id = std::string(v->as_string());
    }
    if (const json::value* v = obj->if_contains("state"); v && v->is_string()) {
      st.state = std::string(v->as_string());
    }
    if (const json::value* p = obj->if_contains("progress"); p && p->is_object()) {
      Progress progress;
      if (const json::value* pc = p->as_object().if_contains("percent"); pc && pc->is_number()) {
        error_code nec;
        progress.percent = std::clamp(static_cast<int>(pc->to_number<double>(nec)), 0, 100);
      }
      if (const json::value* m = p->as_object().if_contains("message"); m && m->is_string()) {
        progress.message = std::string(m->as_string());
      }
      st.progress = std::move(progress);
    }
    if (status_url.empty()) {
      if (const json::value* v = obj->if_contains("status_url"); v && v->is_string()) {
        if (auto r = ResolveUrl(res.url, v->as_string()); r) status_url = std::move(*r);
      }
    }
  }
  const std::string location = res.Header("Location");
  if (res.status == 302 || res.status == 303) {
    if (!location.empty()) {
      if (auto r = ResolveUrl(res.url, location); r) st.result_url = std::move(*r);
    }
    if (st.state.empty()) st.state = "succeeded";
  } else if ((res.status == 201 || res.status == 202) && !location.empty() && status_url.empty()) {
    if (auto r = ResolveUrl(res.url, location); r) status_url = std::move(*r);
  }
  st.status_url = std::move(status_url);
  if (std::string ra = res.Header("Retry-After"); !ra.empty()) {
    st.retry_after = ParseRetryAfter(ra, std::chrono::system_clock::now());
  }
  st.replayed = Lower(res.Header("Idempotent-Replayed")) == "true";
  st.body = std::move(res.body);
  return st;
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

// ---------------------------------------------------------------------------
// Pure helpers

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

std::optional<Millis> ParseRetryAfter(std::string_view value,
                                      std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    uint64_t seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc::result_out_of_range ||
        seconds > static_cast<uint64_t>(kMaxParsedRetryAfter.count() / 1000)) {
      return kMaxParsedRetryAfter;
    }
    if (ec != std::errc() || ptr != value.data() + value.size()) return std::nullopt;
    return Millis(static_cast<int64_t>(seconds) * 1000);
  }
  // HTTP-date: the preferred IMF-fixdate and the two obsolete forms that
  // RFC 9110 §5.6.7 says recipients must accept. strptime runs in the C
  // locale here (English day and month names) unless the program changed it.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // Sun, 06 Nov 1994 08:49:37 GMT
      "%A, %d-%b-%y %H:%M:%S GMT",  // Sunday, 06-Nov-94 08:49:37 GMT
      "%a %b %e %H:%M:%S %Y",       // Sun Nov  6 08:49:37 1994
  };
  const std::string text(value);
  for (const char* format : kFormats) {
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    const auto when = std::chrono::system_clock::from_time_t(::timegm(&tm));
    if (when <= now) return Millis(0);
    return std::min(std::chrono::duration_cast<Millis>(when - now), kMaxParsedRetryAfter);
  }
  return std::nullopt;
}

Result<std::string> ResolveUrl(std::string_view base, std::string_view reference) {
  auto b = ParseHttpUrl(base);
  if (!b) return std::move(b).error();
  auto ref = urls::parse_uri_reference(reference);
  if (!ref) {
    return Error::InvalidArgument("invalid URL reference '" + OneLine(std::string(reference)) +
                                  "'");
  }
  urls::url out;
  if (auto r = urls::resolve(*b, *ref, out); !r) {
    return Error::InvalidArgument("cannot resolve '" + std::string(reference) + "' against '" +
                                  std::string(base) + "'");
  }
  out.normalize_path();
  return std::string(out.buffer());
}

Result<std::string> WithQueryParam(std::string_view url, std::string_view key,
                                   std::string_view value) {
  auto u = ParseHttpUrl(url);
  if (!u) return std::move(u).error();
  u->params().set(key, value);
  return std::string(u->buffer());
}

std::string FormatSeconds(Millis d) {
  const int64_t ms = std::max<int64_t>(d.count(), 0);
  std::string out = std::to_string(ms / 1000);
  if (int64_t frac = ms % 1000; frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 3 - f.size(), '0');
    while (f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out;
}

Error ErrorFromResponse(const HttpResponse& res) {
  std::string title = res.reason, detail, code;
  error_code ec;
  json::value doc = json::parse(res.body, ec);
  if (!ec && doc.is_object()) {
    const json::object& o = doc.as_object();
    if (const json::value* v = o.if_contains("title"); v && v->is_string()) {
      title = std::string(v->as_string());
    }
    if (const json::value* v = o.if_contains("detail"); v && v->is_string()) {
      detail = std::string(v->as_string());
    }
    if (const json::value* v = o.if_contains("code"); v && v->is_string()) {
      code = std::string(v->as_string());
    }
  }
  std::string line =
      (title.empty() ? std::string("HTTP") : title) + " (" + std::to_string(res.status) + ")";
  line += detail.empty() ? " from " + res.url : ": " + detail;
  line = OneLine(std::move(line));

  ErrorCode c = ErrorCode::kInternal;
  switch (res.status) {
    case 400:
      c = ErrorCode::kInvalidArgument;
      break;
    case 404:
      c = ErrorCode::kNotFound;
      break;
    case 409:
      c = ErrorCode::kConflict;
      break;
    case 410:
      c = ErrorCode::kGone;
      break;
    case 413:
      c = ErrorCode::kPayloadTooLarge;
      break;
    case 422:
      c = ErrorCode::kIdempotencyMismatch;
      break;
    case 503:
      c = code == "queue_full" ? ErrorCode::kQueueFull : ErrorCode::kUnavailable;
      break;
    default:
      c = res.status >= 400 && res.status < 500 ? ErrorCode::kInvalidArgument
                                                : ErrorCode::kInternal;
  }
  return Error{c, line + " [" + res.url + "]", line};
}

// ---------------------------------------------------------------------------
// Connection

// The one keep-alive connection, driven synchronously: each operation is
// started asynchronously and the io_context run until it completes, which is
// what lets beast::tcp_stream enforce a deadline on it. Over https the same
// tcp_stream is the lowest layer of an ssl_stream, so the deadlines cover the
// handshake and the encrypted reads and writes alike.
struct Client::Connection {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  asio::io_context ioc{1};
  // Made at the first https request (MakeTlsContext); declared before the
  // streams, so it outlives them.
  std::optional<asio::ssl::context> tls_context;
  // At most one of the two is open: the connection to (secure, host, port).
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> tls;
  beast::flat_buffer buffer;
  bool secure = false;
  std::string host, port;
  // Set by Client::Interrupt from any thread; once set, the io_context is
  // never run again, so the handlers of the operations it abandoned (which
  // point into finished stack frames) are destroyed with it, never called.
  std::atomic<bool> interrupted{false};

  bool IsTo(bool s, const std::string& h, const std::string& p) const {
    return (s ? tls.has_value() : plain.has_value()) && secure == s && host == h && port == p;
  }

  beast::tcp_stream& Lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  // Calls f with the open stream (plain or TLS).
  template <typename F>
  void Visit(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(*plain);
    }
  }

  // Interrupt sets the flag before it stops the io_context: either run()
  // has not begun and the flag is seen here after restart() (which would
  // undo an earlier stop), or it has and stop() ends it.
  void Run() {
    ioc.restart();
    if (interrupted.load()) return;
    ioc.run();
  }

  // Over TLS no close_notify is sent: every response read was complete
  // (length-delimited or chunked), so the server loses nothing by a bare
  // close, and a graceful TLS shutdown would mean waiting for its answer.
  void Close() {
    error_code ignored;
    if (plain) {
      plain->socket().shutdown(tcp::socket::shutdown_both, ignored);
      plain.reset();
    }
    if (tls) {
      beast::get_lowest_layer(*tls).socket().shutdown(tcp::socket::shutdown_both, ignored);
      tls.reset();
    }
    buffer.clear();
  }

  // The client TLS context, made once per Client from its options.
  // kInvalidArgument if ca_file cannot be loaded.
  Result<void> MakeTlsContext(const ClientOptions& options) {
    if (tls_context) return {};
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    error_code ec;
    // A system without a trust store is not an error here: ca_file may be
    // all that is trusted, and an unverifiable server fails its handshake
    // with a message that says so.
    ctx.set_default_verify_paths(ec);
    if (!options.ca_file.empty()) {
      ctx.load_verify_file(options.ca_file, ec);
      if (ec) {
        return Error::InvalidArgument("cannot load CA file '" + OneLine(options.ca_file) +
                                      "': " + TlsReason(ec, nullptr));
      }
    }
    ctx.set_verify_mode(options.insecure_skip_verify ? asio::ssl::verify_none
                                                     : asio::ssl::verify_peer);
    tls_context.emplace(std::move(ctx));
    return {};
  }

  // Connects to (secure, h, p) within `timeout` (TCP connect and TLS
  // handshake together). Errors name `origin`: "cannot connect to ..." or
  // "TLS handshake with ... failed: ...".
  Result<void> Connect(bool s, const std::string& h, bool host_is_name, const std::string& p,
                       const std::string& origin, bool verify, Millis timeout) {
    Close();
    auto connect_error = [&](const error_code& e) {
      std::string reason = e == beast::error::timeout ? "timed out" : e.message();
      return Error::Unavailable("connect to " + origin + ": " + e.message(),
                                "cannot connect to " + origin + ": " + reason);
    };
    tcp::resolver resolver(ioc);
    error_code ec;
    auto endpoints = resolver.resolve(h, p, tcp::resolver::numeric_service, ec);
    if (ec) return connect_error(ec);
    if (s) {
      tls.emplace(ioc, *tls_context);
    } else {
      plain.emplace(ioc);
    }
    beast::tcp_stream& lowest = Lowest();
    ec = asio::error::would_block;
    lowest.expires_after(timeout);
    lowest.async_connect(endpoints, [&](error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec) {
      Close();
      return connect_error(ec);
    }
    if (s) {
      if (Result<void> r = Handshake(h, host_is_name, verify); !r) {
        Close();
        return Error::Unavailable("TLS handshake with " + origin + ": " + r.error().message,
                                  "TLS handshake with " + origin + " failed: " + r.error().detail);
      }
    }
    secure = s;
    host = h;
    port = p;
    return {};
  }

  // The client side of the TLS handshake on the connected `tls`, under the
  // deadline Connect set. The error's detail is the reason only.
  Result<void> Handshake(const std::string& h, bool host_is_name, bool verify) {
    SSL* ssl = tls->native_handle();
    // SNI carries host names only (RFC 6066 §3); an address literal is
    // matched against the certificate's IP entries without it.
    if (host_is_name && SSL_set_tlsext_host_name(ssl, h.c_str()) != 1) {
      return Error::Unavailable("SSL_set_tlsext_host_name failed", "cannot set the server name");
    }
    if (verify) {
      // host_name_verification only says no; naming the mismatch in the
      // verify result lets the error say why, as for any other verify error.
      error_code not_an_address;
      asio::ip::make_address(h, not_an_address);
      const int mismatch =
          not_an_address ? X509_V_ERR_HOSTNAME_MISMATCH : X509_V_ERR_IP_ADDRESS_MISMATCH;
      tls->set_verify_callback([check = asio::ssl::host_name_verification(h), mismatch](
                                   bool preverified, asio::ssl::verify_context& vc) {
        if (!preverified) return false;
        if (check(preverified, vc)) return true;
        X509_STORE_CTX_set_error(vc.native_handle(), mismatch);
        return false;
      });
    }
    error_code ec = asio::error::would_block;
    tls->async_handshake(asio::ssl::stream_base::client, [&](error_code e) { ec = e; });
    Run();
    if (!ec) return {};
    return Error::Unavailable(ec.message(), TlsReason(ec, ssl));
  }

  // One line for a TLS error: OpenSSL's reason without the library name,
  // plus, for a failed verification, what was wrong with the certificate.
  static std::string TlsReason(const error_code& ec, SSL* ssl) {
    if (ec == beast::error::timeout) return "timed out";
    if (ec == asio::ssl::error::stream_truncated) return "the server closed the connection";
    if (ec.category() != asio::error::get_ssl_category()) return OneLine(ec.message());
    const auto code = static_cast<unsigned long>(ec.value());
    const char* reason = ERR_reason_error_string(code);
    std::string out = reason != nullptr ? reason : ec.message();
    if (ssl != nullptr && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK) {
        out += " (" + std::string(X509_verify_cert_error_string(v)) + ")";
      }
    }
    return OneLine(std::move(out));
  }
};

// ---------------------------------------------------------------------------
// Client

Client::Client(ClientOptions options)
    : options_(std::move(options)), conn_(std::make_unique<Connection>()) {}

Client::~Client() { conn_->Close(); }

void Client::Interrupt() {
  conn_->interrupted.store(true);
  conn_->ioc.stop();
}

bool Client::interrupted() const { return conn_->interrupted.load(); }

void Client::Sleep(Millis d) const {
  if (d <= Millis(0)) return;
  if (options_.sleep) {
    options_.sleep(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

Result<std::string> Client::ApiUrl(std::initializer_list<std::string_view> segments) const {
  auto u = ParseHttpUrl(options_.base_url);
  if (!u) return std::move(u).error();
  u->remove_query();
  u->remove_fragment();
  TrimTrailingSlash(*u);
  auto segs = u->segments();
  for (std::string_view s : segments) segs.push_back(s);  // percent-encodes '/' and friends
  return std::string(u->buffer());
}

Result<std::string> Client::JobUrl(std::string_view job) const {
  if (job.empty()) return Error::InvalidArgument("no job id or URL given");
  if (IsBareId(job)) return ApiUrl({"v1", "jobs", job});
  auto base = ParseHttpUrl(options_.base_url);
  if (!base) return std::move(base).error();
  return ResolveUrl(base->buffer(), job);
}

Result<HttpResponse> Client::Send(std::string_view method, std::string_view url_text,
                                  std::string body, const Headers& headers, Millis extra_timeout) {
  auto interrupted_error = [&] {
    return Error::Unavailable(std::string(method) + " " + std::string(url_text) + ": interrupted",
                              "request to " + OneLine(std::string(url_text)) + " interrupted");
  };
  if (conn_->interrupted.load()) return interrupted_error();
  std::string absolute(url_text);
  if (urls::parse_uri(url_text).has_error()) {  // relative: against base_url
    auto r = ResolveUrl(options_.base_url, url_text);
    if (!r) return std::move(r).error();
    absolute = std::move(*r);
  }
  auto url = ParseHttpUrl(absolute);
  if (!url) return std::move(url).error();
  const bool secure = url->scheme_id() == urls::scheme::https;
  const std::string host = url->host_address();
  const bool host_is_name = url->host_type() == urls::host_type::name;
  const std::string port = url->has_port() ? std::string(url->port()) : (secure ? "443" : "80");
  const std::string origin = Origin(*url);
  Connection& c = *conn_;
  if (secure) {
    if (Result<void> r = c.MakeTlsContext(options_); !r) return std::move(r).error();
  }

  bhttp::request<bhttp::string_body> req;
  if (bhttp::verb v = bhttp::string_to_verb(method); v != bhttp::verb::unknown) {
    req.method(v);
  } else {
    req.method_string(method);
  }
  std::string target(url->encoded_target());
  if (target.empty() || target.front() != '/') target.insert(0, "/");
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, url->encoded_host_and_port());
  req.set(bhttp::field::user_agent, options_.user_agent);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!options_.api_key.empty()) {
    auto base = ParseHttpUrl(options_.base_url);
    if (base && Origin(*base) == origin)
      req.set(bhttp::field::authorization, "Bearer " + options_.api_key);
  }
  req.body() = std::move(body);
  req.prepare_payload();
  const Millis timeout = options_.timeout + extra_timeout;

  // A reused keep-alive connection may have been closed by the server while
  // idle; the request is then retried once on a new connection, if nothing of
  // a response arrived and repeating it is harmless: a GET, DELETE or cancel,
  // or a submit with an Idempotency-Key, or a call on a lease (heartbeat,
  // complete, fail, release: the lease fences it, so the repeat of a call
  // that took effect answers 409 and changes nothing). Other POSTs are not
  // repeated: the server may have committed one before the connection broke.
  const bool may_repeat = method == "GET" || method == "DELETE" || absolute.ends_with("/cancel") ||
                          req.count("Idempotency-Key") > 0 ||
                          url->encoded_path().find("/v1/leases/") != std::string_view::npos;
  for (int attempt = 0;; ++attempt) {
    const bool reused = c.IsTo(secure, host, port);
    if (!reused) {
      if (Result<void> r = c.Connect(secure, host, host_is_name, port, origin,
                                     !options_.insecure_skip_verify, options_.timeout);
          !r) {
        if (c.interrupted.load()) return interrupted_error();
        return std::move(r).error();
      }
    }
    error_code ec = asio::error::would_block;
    c.Lowest().expires_after(timeout);
    c.Visit([&](auto& stream) {
      bhttp::async_write(stream, req, [&](error_code e, size_t) { ec = e; });
    });
    c.Run();
    bhttp::response_parser<bhttp::string_body> parser;
    if (!ec) {
      parser.header_limit(kMaxResponseHeader);
      parser.body_limit(kMaxResponseBody);
      ec = asio::error::would_block;
      c.Visit([&](auto& stream) {
        bhttp::async_read(stream, c.buffer, parser, [&](error_code e, size_t) { ec = e; });
      });
      c.Run();
    }
    if (ec) {
      // Over TLS a server that drops an idle connection without a
      // close_notify shows as stream_truncated rather than eof.
      const bool stale = ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
                         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                         ec == asio::ssl::error::stream_truncated;
      c.Close();
      if (c.interrupted.load()) return interrupted_error();
      if (reused && stale && !parser.got_some() && attempt == 0 && may_repeat) continue;
      std::string reason = ec == beast::error::timeout ? "timed out"
                           : secure                    ? Connection::TlsReason(ec, nullptr)
                                                       : ec.message();
      return Error::Unavailable(std::string(method) + " " + absolute + ": " + ec.message(),
                                "request to " + absolute + " failed: " + reason);
    }
    auto msg = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(msg.result_int());
    out.reason = std::string(msg.reason());
    for (const auto& field : msg) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(msg.body());
    out.url = absolute;
    if (!msg.keep_alive()) c.Close();
    return out;
  }
}

Result<JobStatus> Client::Submit(std::string_view queue, std::string body,
                                 std::string_view content_type, const SubmitOptions& options) {
  if (queue.empty()) return Error::InvalidArgument("no queue given");
  auto url = ApiUrl({"v1", "queues", queue, "jobs"});
  if (!url) return std::move(url).error();
  urls::url u(urls::parse_uri(*url).value());
  auto params = u.params();
  if (!options.callback.empty()) params.append({"callback", options.callback});
  if (options.max_attempts) params.append({"max_attempts", std::to_string(*options.max_attempts)});
  if (options.priority) params.append({"priority", std::to_string(*options.priority)});
  auto seconds = [](double s) { return FormatSeconds(Millis(static_cast<int64_t>(s * 1000))); };
  if (options.timeout_seconds) params.append({"timeout", seconds(*options.timeout_seconds)});
  if (options.delay_seconds) params.append({"delay", seconds(*options.delay_seconds)});

  Headers headers;
  if (!content_type.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  if (!options.idempotency_key.empty()) {
    headers.emplace_back("Idempotency-Key", options.idempotency_key);
  }
  Millis extra{0};
  if (options.prefer_wait_seconds) {
    headers.emplace_back("Prefer", "wait=" + seconds(*options.prefer_wait_seconds));
    extra = Millis(static_cast<int64_t>(*options.prefer_wait_seconds * 1000));
  }
  auto res = Send("POST", u.buffer(), std::move(body), headers, extra);
  if (!res) return std::move(res).error();
  if (res->status != 200 && res->status != 201 && res->status != 202 && res->status != 303) {
    return ErrorFromResponse(*res);
  }
  return ToJobStatus(std::move(*res), {});
}

Result<JobStatus> Client::Status(std::string_view job) {
  auto url = JobUrl(job);
  if (!url) return std::move(url).error();
  auto res = Send("GET", *url);
  if (!res) return std::move(res).error();
  if (res->status != 200 && res->status != 202 && res->status != 302 && res->status != 303) {
    return ErrorFromResponse(*res);
  }
  return ToJobStatus(std::move(*res), *url);
}

Result<JobStatus> Client::Wait(std::string_view job, const WaitOptions& options) {
  auto url = JobUrl(job);
  if (!url) return std::move(url).error();
  for (;;) {
    const auto now = SteadyClock::now();
    const Millis remaining =
        options.deadline == SteadyClock::time_point::max()
            ? options.poll_wait
            : std::max(Millis(0), std::chrono::duration_cast<Millis>(options.deadline - now));
    const Millis hold = std::min(options.poll_wait, remaining);
    std::string target = *url;
    if (hold > Millis(0)) {
      auto t = WithQueryParam(*url, "wait", FormatSeconds(hold));
      if (!t) return std::move(t).error();
      target = std::move(*t);
    }
    const auto sent = SteadyClock::now();
    auto res = Send("GET", target, {}, {}, hold);
    if (!res) return std::move(res).error();
    if (res->status != 200 && res->status != 202 && res->status != 302 && res->status != 303) {
      return ErrorFromResponse(*res);
    }
    JobStatus st = ToJobStatus(std::move(*res), *url);
    if (!st.pending()) return st;
    if (options.on_progress) options.on_progress(st);
    const auto answered = SteadyClock::now();
    if (answered >= options.deadline) return st;
    // A server that held the request as asked may be asked again at once;
    // one that answered well before the hold ignores `wait` (or caps it):
    // then Retry-After says when to ask again.
    if (hold > Millis(0) && answered - sent >= hold / 2) continue;
    Millis pause =
        std::clamp(st.retry_after.value_or(kDefaultRetryAfter), kMinRetryAfter, kMaxRetryAfter);
    if (options.deadline != SteadyClock::time_point::max()) {
      pause = std::min(pause, std::chrono::duration_cast<Millis>(options.deadline - answered));
    }
    Sleep(pause);
  }
}

Result<JobResult> Client::FetchResult(std::string_view result) {
  Result<std::string> url =
      IsBareId(result) ? ApiUrl({"v1", "jobs", result, "result"}) : JobUrl(result);
  if (!url) return std::move(url).error();
  std::string current = std::move(*url);
  for (int redirects = 0;; ++redirects) {
    auto res = Send("GET", current);
    if (!res) return std::move(res).error();
    if (IsRedirect(res->status) && redirects < kMaxRedirects) {
      const std::string location = res->Header("Location");
      if (location.empty()) return ErrorFromResponse(*res);
      auto next = ResolveUrl(res->url, location);
      if (!next) return std::move(next).error();
      current = std::move(*next);
      continue;
    }
    if (res->status != 200) return ErrorFromResponse(*res);
    JobResult out;
    out.http_status = res->status;
    out.content_type = res->Header("Content-Type");
    out.body = std::move(res->body);
    out.url = std::move(res->url);
    return out;
  }
}

Result<JobStatus> Client::Cancel(std::string_view job) {
  auto url = JobUrl(job);
  if (!url) return std::move(url).error();
  urls::url u(urls::parse_uri(*url).value());
  u.remove_query();
  TrimTrailingSlash(u);
  u.segments().push_back("cancel");
  auto res = Send("POST", u.buffer());
  if (!res) return std::move(res).error();
  if (res->status != 200 && res->status != 202) return ErrorFromResponse(*res);
  return ToJobStatus(std::move(*res), *url);
}

namespace {

Result<json::value> JsonOf(const HttpResponse& res) {
  if (res.status != 200) return ErrorFromResponse(res);
  error_code ec;
  json::value v = json::parse(res.body, ec);
  if (ec) {
    return Error{ErrorCode::kInternal, "non-JSON body from " + res.url,
                 "the answer from " + res.url + " is not JSON"};
  }
  return v;
}

}  // namespace

Result<json::value> Client::List(const ListOptions& options) {
  auto url = ApiUrl({"v1", "jobs"});
  if (!url) return std::move(url).error();
  urls::url u(urls::parse_uri(*url).value());
  auto params = u.params();
  if (!options.queue.empty()) params.append({"queue", options.queue});
  if (!options.state.empty()) params.append({"state", options.state});
  if (options.limit) params.append({"limit", std::to_string(*options.limit)});
  if (!options.cursor.empty()) params.append({"cursor", options.cursor});
  auto res = Send("GET", u.buffer());
  if (!res) return std::move(res).error();
  return JsonOf(*res);
}

Result<json::value> Client::Queues() {
  auto url = ApiUrl({"v1", "queues"});
  if (!url) return std::move(url).error();
  auto res = Send("GET", *url);
  if (!res) return std::move(res).error();
  return JsonOf(*res);
}

}  // namespace acceptd::client
