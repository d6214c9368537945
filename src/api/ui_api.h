// UiApi: the operator's dashboard (docs/operations.md, "Dashboard").
//
//  - GET /ui/ and GET /ui/{file}: the files of web/, embedded in the binary
//    at build time (cmake/embed_web.cmake; nothing is read at run time).
//    GET /ui answers 308 to "ui/" (relative, so it works under a reverse
//    proxy's path prefix; so do the pages, which use relative URLs only).
//    Every answer has a strong ETag and `Cache-Control: no-cache` (a browser
//    revalidates, and gets 304 for an unchanged file), and a strict
//    Content-Security-Policy: the pages load nothing from elsewhere.
//  - GET /v1/events: Server-Sent Events of every job change this node hears
//    of (JobEventHub), for the dashboard's live updates.
//
// Access. The files hold no data, only the page; the data comes from the
// API, which needs the `admin` scope when API keys are configured (the page
// asks for a key and sends it as a Bearer token). So with keys the files are
// public. Without keys every API route is open (docs/operations.md), and the
// dashboard answers only loopback clients unless `[ui] open = true`: a page
// that pauses queues should not be one click away for whoever can reach the
// port. `[ui] enabled = false` removes the /ui routes.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "api/job_event_hub.h"
#include "api/v1_api.h"
#include "engine/engine.h"
#include "http/router.h"

namespace acceptd::api {

// One embedded file of web/.
struct UiAsset {
  std::string_view name;          // "index.html"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view etag;          // "\"<16 hex digits of its SHA-256>\""
  std::string_view body;
};
// Every file of web/ as built into this binary (generated source).
std::span<const UiAsset> UiAssets();
// The asset named `name`, or null.
const UiAsset* FindUiAsset(std::string_view name);

class UiApi {
 public:
  // Subscribes the event hub to `engine`'s changes: before engine.Start().
  // `streams` (shared with V1Api's event streams) must outlive this object.
  UiApi(Engine& engine, const ApiOptions& options, StreamSlots& streams);
  void Register(http::Router& router);
  JobEventHub& hub() { return hub_; }

 private:
  boost::asio::awaitable<http::Response> Redirect(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> File(http::Request& req, const http::PathParams& p);
  boost::asio::awaitable<http::Response> Events(http::Request& req, const http::PathParams& p);
  // The file `name` (index.html for ""), or the refusal of a remote client.
  http::Response Serve(const http::Request& req, const http::PathParams& p,
                       std::string_view name) const;

  Engine& engine_;
  const ApiOptions options_;
  JobEventHub hub_;
  StreamSlots& streams_;
};

}  // namespace acceptd::api
