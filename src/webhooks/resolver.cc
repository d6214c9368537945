#include "webhooks/resolver.h"

#include <memory>
#include <string>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace acceptd::webhooks {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One lookup, shared by the waiting coroutine and the resolver's completion
// (which may come after the coroutine gave up waiting).
struct Lookup {
  explicit Lookup(const asio::any_io_executor& ex) : resolver(ex), timer(ex) {}
  tcp::resolver resolver;
  asio::steady_timer timer;
  bool done = false;
  boost::system::error_code ec;
  tcp::resolver::results_type results;
};

}  // namespace

asio::awaitable<Result<std::vector<tcp::endpoint>>> ResolveAllowed(const CallbackTarget& target,
                                                                   const AddressPolicy& policy,
                                                                   Millis timeout) {
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(target.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, target.port);
  } else {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto lookup = std::make_shared<Lookup>(ex);
    lookup->timer.expires_after(std::chrono::milliseconds(timeout));
    const std::string port = std::to_string(target.port);
    lookup->resolver.async_resolve(
        target.host, port, tcp::resolver::numeric_service,
        [lookup](const boost::system::error_code& rec, tcp::resolver::results_type results) {
          lookup->done = true;
          lookup->ec = rec;
          lookup->results = std::move(results);
          lookup->timer.cancel();
        });
    co_await lookup->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!lookup->done) {
      lookup->resolver.cancel();
      co_return Error::Unavailable(
          fmt::format("DNS lookup of {} timed out", target.host),
          fmt::format("the host '{}' did not resolve in time", target.host));
    }
    if (lookup->ec || lookup->results.empty()) {
      co_return Error::InvalidArgument(fmt::format("the host '{}' does not resolve", target.host));
    }
    for (const auto& entry : lookup->results) endpoints.push_back(entry.endpoint());
  }
  for (const tcp::endpoint& e : endpoints) {
    if (auto st = policy.Check(e.address()); !st) co_return std::move(st).error();
  }
  co_return endpoints;
}

}  // namespace acceptd::webhooks
