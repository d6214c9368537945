#include "webhooks/resolver.h"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace acceptd::webhooks {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

asio::awaitable<Result<std::vector<tcp::endpoint>>> ResolveAllowed(const CallbackTarget& target,
                                                                   const AddressPolicy& policy) {
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(target.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, target.port);
  } else {
    tcp::resolver resolver(co_await asio::this_coro::executor);
    auto [rec, results] = co_await resolver.async_resolve(target.host, std::to_string(target.port),
                                                          tcp::resolver::numeric_service,
                                                          asio::as_tuple(asio::use_awaitable));
    if (rec || results.empty()) {
      co_return Error::InvalidArgument(fmt::format("the host '{}' does not resolve", target.host));
    }
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }
  for (const tcp::endpoint& e : endpoints) {
    if (auto st = policy.Check(e.address()); !st) co_return std::move(st).error();
  }
  co_return endpoints;
}

}  // namespace acceptd::webhooks
