// Fuzz target: raw bytes from a client -> Beast's request parser with the
// server's limits -> the router (and the option parsers a handler would run).
//
// The bytes are read as one connection's stream, the way http/server.cc's
// Session reads them: the header first, then the body (eager), request after
// request while they keep the connection alive; with http/request_framing.h
// present, the header block passes the HeaderScanner first and the parsed
// header CheckRequestFraming, as in the server. The stream is parsed twice,
// once in one piece and once in small slices (as a slow client would send
// it), and both must give the same requests: parsing may not depend on how
// the bytes arrive.
//
// With the smallest limits a config allows, the same stream must give the
// same requests until a limit ends the connection.
//
// Invariants: a body never exceeds the body limit; a body with a
// Content-Length has exactly that length; the router answers 200 (a stub
// handler), 404 or 405 with a non-empty Allow, and a problem body that is
// valid JSON; the captures of a route are the path's segments.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>

#include "api/event_id.h"
#include "api/request_options.h"
#include "fuzz_check.h"
#include "http/router.h"
#include "http/server.h"

// The framing checks (HeaderScanner, CheckRequestFraming) come with
// http/request_framing.h; with them, the target reads as the server then does.
#if __has_include("http/request_framing.h")
#include "http/request_framing.h"
#define ACCEPTD_FUZZ_FRAMING 1
#else
#define ACCEPTD_FUZZ_FRAMING 0
#endif

namespace {

using namespace acceptd;
using http::Request;
using http::Response;
using http::Verb;

// The server's defaults (http/server.h), and the smallest a config allows
// (cli/server_config.cc), which the fuzzer's short inputs do reach.
const http::ServerLimits kDefaultLimits;
const http::ServerLimits kSmallLimits{.body_limit = 1, .header_limit = 1024};

// The routes of api/v1_api.cc and api/compat_api.cc, each answered by a stub
// that says which pattern matched and checks its captures.
struct Route {
  Verb method;
  const char* pattern;
};
constexpr Route kRoutes[] = {
    {Verb::post, "/v1/queues/{queue}/jobs"},
    {Verb::get, "/v1/jobs/{id}"},
    {Verb::delete_, "/v1/jobs/{id}"},
    {Verb::get, "/v1/jobs/{id}/result"},
    {Verb::get, "/v1/jobs/{id}/events"},
    {Verb::post, "/v1/jobs/{id}/cancel"},
    {Verb::get, "/v1/jobs"},
    {Verb::get, "/v1/queues"},
    {Verb::get, "/healthz"},
    {Verb::get, "/readyz"},
    {Verb::post, "/v1/submit-job"},
    {Verb::post, "/v1/pool-job"},
};

const http::Router& TheRouter() {
  static const http::Router router = [] {
    http::Router r;
    for (const Route& route : kRoutes) {
      const std::string pattern = route.pattern;
      r.Add(route.method, pattern,
            [pattern](Request& req,
                      const http::PathParams& params) -> boost::asio::awaitable<Response> {
              const auto parts = http::SplitPath(req.target());
              const auto want = http::SplitPath(pattern);
              FUZZ_CHECK(parts.size() == want.size());
              size_t captured = 0;
              for (size_t i = 0; i < want.size(); ++i) {
                if (want[i].front() == '{') {
                  FUZZ_CHECK(captured < params.values.size());
                  FUZZ_CHECK(params.values[captured++].second == parts[i]);
                } else {
                  FUZZ_CHECK(want[i] == parts[i]);
                }
              }
              FUZZ_CHECK(captured == params.values.size());
              Response res{http::Status::ok, 11};
              res.body() = pattern;
              co_return res;
            });
    }
    return r;
  }();
  return router;
}

Response RouteRequest(Request& req) {
  static boost::asio::io_context ctx;
  std::optional<Response> out;
  std::exception_ptr error;
  boost::asio::co_spawn(ctx, TheRouter().Route(req), [&](std::exception_ptr e, Response res) {
    error = e;
    out = std::move(res);
  });
  ctx.restart();
  ctx.run();
  if (error) std::rethrow_exception(error);  // handlers must not throw: a finding
  FUZZ_CHECK(out.has_value());
  return std::move(*out);
}

void CheckSplitPath(std::string_view target) {
  for (std::string_view part : http::SplitPath(target)) {
    FUZZ_CHECK(!part.empty());
    FUZZ_CHECK(part.find('/') == std::string_view::npos);
    FUZZ_CHECK(part.find('?') == std::string_view::npos);
  }
}

// What a handler does with the request: route it, and read the options and
// headers the v1 handlers read (their own targets fuzz them harder).
std::string Handle(Request& req) {
  CheckSplitPath(req.target());
  Response res = RouteRequest(req);
  const auto status = res.result();
  FUZZ_CHECK(status == http::Status::ok || status == http::Status::not_found ||
             status == http::Status::method_not_allowed);
  if (status == http::Status::method_not_allowed) FUZZ_CHECK(!res[http::Field::allow].empty());
  if (status != http::Status::ok) {
    boost::system::error_code ec;
    boost::json::parse(res.body(), ec);  // the method's name is echoed in it
    FUZZ_CHECK(!ec);
  }
  (void)api::QueryParams(req.target());
  (void)api::RequestedWait(req.target(), req[http::Field::prefer]);
  (void)api::ParseIdempotencyKey(req["Idempotency-Key"]);
  (void)api::ParseEventId(req["Last-Event-ID"]);
  return std::to_string(static_cast<unsigned>(status)) + " " + res.body();
}

// One request as the server saw it, or how the connection ended.
struct Outcome {
  std::string what;  // "request", "header_limit", "body_limit", "bad", "refused NNN", "eof"
  std::string method, target, body, handled;
  unsigned version = 0;
  bool operator==(const Outcome&) const = default;
};

// Parses `input` as one connection, handing the parser at most `slice` new
// bytes at a time; stops where the server would close the connection.
std::vector<Outcome> ParseConnection(std::string_view input, size_t slice,
                                     const http::ServerLimits& limits) {
  namespace beast_http = boost::beast::http;
  std::vector<Outcome> out;
  std::string buffer;  // received, not yet parsed
  size_t fed = 0;
  auto receive = [&] {
    const size_t n = std::min(slice, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    return n > 0;
  };
  // Feeds the parser until `done()` or an error; false at the end of input.
  auto parse_until = [&](beast_http::request_parser<beast_http::string_body>& parser, auto done,
                         boost::system::error_code& ec) {
    for (;;) {
      if (!buffer.empty()) {
        const size_t used = parser.put(boost::asio::buffer(buffer), ec);
        buffer.erase(0, used);
        if (!ec && done()) return;
        if (ec && ec != beast_http::error::need_more) return;
        ec = {};
        if (used > 0 && !buffer.empty()) continue;
      }
      if (!receive()) {
        parser.put_eof(ec);
        if (!ec && !done()) ec = beast_http::error::partial_message;
        return;
      }
    }
  };
  auto stop = [&out](std::string what) {
    Outcome o;
    o.what = std::move(what);
    out.push_back(std::move(o));
    return out;
  };
  for (;;) {
    if (buffer.empty() && fed == input.size()) return stop("eof");  // closed between requests
#if ACCEPTD_FUZZ_FRAMING
    // The server first reads until the scanner has seen a whole header block.
    http::HeaderScanner scanner(limits.header_limit, limits.max_header_count);
    auto state = scanner.Scan(buffer);
    while (state == http::HeaderScanner::State::kIncomplete) {
      if (!receive()) return stop("closed");  // no answer to a partial header
      state = scanner.Scan(buffer);
    }
    if (state == http::HeaderScanner::State::kRefused) {
      FUZZ_CHECK(!scanner.refusal().detail.empty());
      return stop("refused " + std::to_string(static_cast<unsigned>(scanner.refusal().status)));
    }
    FUZZ_CHECK(scanner.skip() <= scanner.end() && scanner.end() <= buffer.size());
    FUZZ_CHECK(scanner.end() - scanner.skip() <= limits.header_limit);
    buffer.erase(0, scanner.skip());
#endif
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
    parser.body_limit(limits.body_limit);
    boost::system::error_code ec;
    parse_until(
        parser, [&] { return parser.is_header_done(); }, ec);
    if (ec == beast_http::error::header_limit) return stop("header_limit");
    if (ec == beast_http::error::body_limit) return stop("body_limit");
    if (ec) return stop("bad");
#if ACCEPTD_FUZZ_FRAMING
    if (auto refusal = http::CheckRequestFraming(parser.get())) {
      const auto status = refusal->status;
      FUZZ_CHECK(status == http::Status::bad_request || status == http::Status::not_implemented ||
                 status == http::Status::http_version_not_supported);
      FUZZ_CHECK(!refusal->detail.empty());
      return stop("refused " + std::to_string(static_cast<unsigned>(status)));
    }
    {
      // Accepted: one way to find where the body ends, one Host, a target the router reads.
      const auto& h = parser.get();
      FUZZ_CHECK(h.count(http::Field::host) <= 1);
      FUZZ_CHECK(h.count(http::Field::content_length) <= 1);
      FUZZ_CHECK(
          !(h.count(http::Field::content_length) && h.count(http::Field::transfer_encoding)));
    }
    http::NormalizeRequestTarget(parser.get());
    FUZZ_CHECK(parser.get().target().starts_with('/') || parser.get().target() == "*");
    // The server puts the header back after a chunked body: trailers are dropped.
    std::optional<http::RequestHeader> header;
    if (!parser.is_done() && parser.chunked()) header.emplace(parser.get().base());
#endif
    if (!parser.is_done()) {
      parser.eager(true);
      parse_until(
          parser, [&] { return parser.is_done(); }, ec);
      if (ec == beast_http::error::body_limit) return stop("body_limit");
      if (ec) return stop("bad");
    }
#if ACCEPTD_FUZZ_FRAMING
    if (header) parser.get().base() = std::move(*header);
#endif
    FUZZ_CHECK(parser.is_done());
    const auto content_length = parser.content_length();
    const bool chunked = parser.chunked();
    Request req = parser.release();
    FUZZ_CHECK(req.body().size() <= limits.body_limit);
    if (content_length && !chunked) FUZZ_CHECK(req.body().size() == *content_length);
    Outcome o;
    o.what = "request";
    o.method = req.method_string();
    o.target = req.target();
    o.body = req.body();
    o.version = req.version();
    const bool keep_alive = req.keep_alive();
    o.handled = Handle(req);
    out.push_back(std::move(o));
    if (!keep_alive) return out;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto whole = ParseConnection(input, input.size() + 1, kDefaultLimits);
  const auto sliced = ParseConnection(input, 7, kDefaultLimits);
  FUZZ_CHECK(whole == sliced);
  // Smaller limits end the connection sooner, never differently before.
  const auto small = ParseConnection(input, 3, kSmallLimits);
  FUZZ_CHECK(!small.empty() && small.size() <= whole.size());
  for (size_t i = 0; i + 1 < small.size(); ++i) FUZZ_CHECK(small[i] == whole[i]);
  const Outcome& last = small.back();
  FUZZ_CHECK(last == whole[small.size() - 1] || last.what == "header_limit" ||
             last.what == "body_limit" || last.what == "refused 431");
  return 0;
}
