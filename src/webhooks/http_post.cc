#include "webhooks/http_post.h"

#include <chrono>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "webhooks/resolver.h"

namespace acceptd::webhooks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr char kUserAgent[] = "acceptd/0.1";

// One client TLS context for the process: OpenSSL lets many connections
// share it, and loading the trust store once is cheaper.
asio::ssl::context& ClientTls() {
  static asio::ssl::context* tls = [] {
    auto* ctx = new asio::ssl::context(asio::ssl::context::tls_client);
    ctx->set_default_verify_paths();
    ctx->set_verify_mode(asio::ssl::verify_peer);
    return ctx;
  }();
  return *tls;
}

// Sends the request and reads the response's status line and headers.
template <typename Stream>
asio::awaitable<CallbackResponse> Exchange(Stream& stream,
                                           http::request<http::string_body>& request) {
  auto [wec, wn] = co_await http::async_write(stream, request, kNoThrow);
  if (wec) co_return CallbackResponse{std::nullopt, "sending the request: " + wec.message()};
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // no body is read; only the status matters
  auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
  if (rec) co_return CallbackResponse{std::nullopt, "reading the response: " + rec.message()};
  co_return CallbackResponse{parser.get().result_int(), ""};
}

}  // namespace

asio::awaitable<CallbackResponse> PostJson(const OutgoingPost& post, const AddressPolicy& policy,
                                           const NetworkSeams& seams) {
  auto target = ParseCallbackUrl(post.url);
  if (!target) co_return CallbackResponse{std::nullopt, target.error().detail};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(post.timeout);
  const HostResolver& resolver = seams.resolver ? *seams.resolver : SystemResolver();
  auto endpoints = co_await ResolveAllowed(*target, policy, post.timeout, resolver);
  if (!endpoints) co_return CallbackResponse{std::nullopt, endpoints.error().detail};

  http::request<http::string_body> request{http::verb::post, target->target, 11};
  request.set(http::field::host, target->host_header);
  request.set(http::field::user_agent, kUserAgent);
  request.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : post.headers) request.set(name, value);
  request.body() = post.body;
  request.keep_alive(false);
  request.prepare_payload();

  // The guard once more at the point of connecting: the allow-list and the
  // refused ranges apply to the address actually connected, whatever path
  // led to it.
  auto may_connect = [&](const boost::system::error_code&, const asio::ip::tcp::endpoint& e) {
    if (!policy.Check(e.address())) return false;
    return !seams.before_connect || seams.before_connect(e);
  };
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_at(deadline);
  auto [cec, endpoint] = co_await stream.async_connect(*endpoints, may_connect, kNoThrow);
  if (cec) {
    co_return CallbackResponse{std::nullopt,
                               fmt::format("connecting to {}: {}", target->host, cec.message())};
  }
  if (!target->tls) co_return co_await Exchange(stream, request);

  beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), ClientTls());
  // SNI carries host names only (RFC 6066); an address literal is verified
  // against the certificate's IP entries without it.
  if (!target->address && !SSL_set_tlsext_host_name(tls.native_handle(), target->host.c_str())) {
    co_return CallbackResponse{std::nullopt, "TLS: cannot set the server name"};
  }
  tls.set_verify_callback(asio::ssl::host_name_verification(target->host));
  auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kNoThrow);
  if (hec) co_return CallbackResponse{std::nullopt, "TLS handshake: " + hec.message()};
  co_return co_await Exchange(tls, request);
}

}  // namespace acceptd::webhooks
