// Router: maps (method, path) to a handler. Patterns are literal segments and
// `{name}` captures ("/v1/jobs/{id}/result"). An unknown path gets a 404
// problem; a known path with another method gets 405 with `Allow`.
// Routes are added before serving; Route() is then thread-safe (read-only).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/types.h"

namespace acceptd::http {

struct PathParams {
  std::vector<std::pair<std::string, std::string>> values;
  std::string_view Get(std::string_view name) const;
};

using RouteHandler = std::function<boost::asio::awaitable<Response>(Request&, const PathParams&)>;

class Router {
 public:
  void Add(Verb method, std::string_view pattern, RouteHandler handler);
  // Dispatches a request (the path is the target without its query).
  boost::asio::awaitable<Response> Route(Request& req) const;

 private:
  struct RouteEntry {
    std::vector<std::string> segments;  // "{x}" captures
    std::vector<std::pair<Verb, RouteHandler>> methods;
  };
  static bool Match(const RouteEntry& r, const std::vector<std::string_view>& parts,
                    PathParams* params);
  std::vector<RouteEntry> routes_;
};

// Splits "/a/b" into {"a", "b"}; the query, if any, is ignored.
std::vector<std::string_view> SplitPath(std::string_view target);

}  // namespace acceptd::http
