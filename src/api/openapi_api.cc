#include "api/openapi_api.h"

#include "http/problem.h"

namespace acceptd::api {

void OpenApiApi::Register(http::Router& router) {
  router.Add(http::Verb::get, "/openapi.json", http::Access::Public(), &OpenApiApi::Get);
}

boost::asio::awaitable<http::Response> OpenApiApi::Get(http::Request&, const http::PathParams&) {
  co_return http::JsonResponse(http::Status::ok, std::string(OpenApiDocument()));
}

}  // namespace acceptd::api
