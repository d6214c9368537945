// OpenApiApi: GET /openapi.json, the OpenAPI 3.1 description of every route
// of the server (docs/openapi.json, embedded in the binary at build time by
// cmake/embed_file.cmake: nothing is read at run time).
//
// The route is public (no key needed, whatever [[api_keys]] say): the
// document is the same for every acceptd, is published in the repository,
// and holds no data of this server (no queue names, no jobs); client
// generators and API browsers can fetch it without a key.
//
// The document cannot drift from the server: a unit test compares its
// paths and operations (and their scopes) with the router's route table
// (tests/cli/openapi_routes_test.cc), and tests/openapi/check_openapi.py
// validates the live answers of the real binary against it.
#pragma once

#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "http/router.h"

namespace acceptd::api {

// The bytes of docs/openapi.json as built into this binary (a JSON object).
std::string_view OpenApiDocument();

class OpenApiApi {
 public:
  void Register(http::Router& router);

 private:
  static boost::asio::awaitable<http::Response> Get(http::Request& req, const http::PathParams& p);
};

}  // namespace acceptd::api
