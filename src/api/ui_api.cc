#include "api/ui_api.h"

#include <fmt/format.h>

#include "http/problem.h"

namespace acceptd::api {

using boost::asio::awaitable;
using http::Field;
using http::Request;
using http::Response;

namespace {

// The pages load their own files and call the API of this origin, nothing
// else: no CDN, no inline script, no framing by other sites.
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// True if the request's path ends with '/' ("/ui/"): the router matches "/ui"
// and "/ui/" alike.
bool EndsWithSlash(std::string_view target) {
  target = target.substr(0, target.find('?'));
  return !target.empty() && target.back() == '/';
}

// Whether an If-None-Match value names `etag` (a list, or "*").
bool Matches(std::string_view if_none_match, std::string_view etag) {
  if (if_none_match.empty()) return false;
  if (if_none_match == "*") return true;
  size_t pos = 0;
  while (pos < if_none_match.size()) {
    size_t end = if_none_match.find(',', pos);
    if (end == std::string_view::npos) end = if_none_match.size();
    std::string_view item = if_none_match.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);  // weak comparison (RFC 9110 13.1.2)
    if (item == etag) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

const UiAsset* FindUiAsset(std::string_view name) {
  for (const UiAsset& asset : UiAssets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

UiApi::UiApi(Engine& engine, const ApiOptions& options, StreamSlots& streams)
    : engine_(engine), options_(options), streams_(streams) {
  engine_.AddChangeObserver([this](const JobChange& change) { hub_.Publish(change); });
}

void UiApi::Register(http::Router& r) {
  using http::Access;
  using http::Scope;
  using http::Verb;
  auto bind = [this](auto method) {
    return
        [this, method](Request& req, const http::PathParams& p) { return (this->*method)(req, p); };
  };
  r.Add(Verb::get, "/v1/events", Access::Need(Scope::kAdmin), bind(&UiApi::Events));
  if (!options_.ui_enabled) return;
  // Public: the files hold no data (see the header); Serve() applies the
  // loopback rule when no keys are configured.
  r.Add(Verb::get, "/ui", Access::Public(), bind(&UiApi::Redirect));
  r.Add(Verb::get, "/ui/{file}", Access::Public(), bind(&UiApi::File));
}

Response UiApi::Serve(const Request& req, const http::PathParams& p, std::string_view name) const {
  if (!options_.keys_enabled && !options_.ui_open && !p.peer.loopback) {
    return http::Problem(http::Status::forbidden,
                         "without API keys, the dashboard answers only loopback clients; "
                         "configure [[api_keys]] or set [ui] open = true (docs/operations.md)");
  }
  const UiAsset* asset = FindUiAsset(name.empty() ? "index.html" : name);
  if (!asset) return http::Problem(http::Status::not_found, "no such resource");
  Response res;
  if (Matches(req[Field::if_none_match], asset->etag)) {
    res = Response{http::Status::not_modified, 11};
  } else {
    res = Response{http::Status::ok, 11};
    res.set(Field::content_type, asset->content_type);
    res.body() = std::string(asset->body);
  }
  res.set(Field::etag, asset->etag);
  res.set(Field::cache_control, "no-cache");
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  return res;
}

awaitable<Response> UiApi::Redirect(Request& req, const http::PathParams& p) {
  if (EndsWithSlash(req.target())) co_return Serve(req, p, "");
  Response res = Serve(req, p, "");
  if (res.result() == http::Status::forbidden) co_return res;
  // Relative: behind a proxy at /prefix/ui, the browser goes to /prefix/ui/.
  Response redirect{http::Status::permanent_redirect, 11};
  redirect.set(Field::location, "ui/");
  co_return redirect;
}

awaitable<Response> UiApi::File(Request& req, const http::PathParams& p) {
  const std::string_view name = p.Get("file");
  co_return Serve(req, p, name);
}

awaitable<Response> UiApi::Events(Request&, const http::PathParams& p) {
  // Changes carry no tenant: every job of every tenant would show.
  if (p.principal && !p.principal->tenant.empty()) {
    co_return http::Problem(http::Status::forbidden,
                            "a key with a tenant may not follow every job's changes; use an "
                            "admin key without a tenant");
  }
  auto slot = streams_.Take(options_.max_event_streams);
  if (!slot) {
    Response busy = http::Problem(http::Status::service_unavailable,
                                  "too many event streams are open; poll GET /v1/queues instead");
    busy.set(Field::retry_after, "5");
    co_return busy;
  }
  Response res{http::Status::ok, 11};
  res.set(Field::content_type, "text/event-stream");
  res.set(Field::cache_control, "no-store");
  res.set("X-Accel-Buffering", "no");  // nginx: pass events through unbuffered
  res.stream = [this, slot](http::StreamWriter& out) {
    return StreamHubEvents(hub_, options_.events_heartbeat, out);
  };
  co_return res;
}

}  // namespace acceptd::api
