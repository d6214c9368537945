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
struct PendingLookup {
  explicit PendingLookup(const asio::any_io_executor& ex) : resolver(ex), timer(ex) {}
  tcp::resolver resolver;
  asio::steady_timer timer;
  bool done = false;
  boost::system::error_code ec;
  tcp::resolver::results_type results;
};

class GetAddrInfoResolver final : public HostResolver {
 public:
  asio::awaitable<Result<std::vector<asio::ip::address>>> Lookup(const std::string& name,
                                                                 Millis timeout) const override {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto lookup = std::make_shared<PendingLookup>(ex);
    lookup->timer.expires_after(std::chrono::milliseconds(timeout));
    lookup->resolver.async_resolve(
        name, "0", tcp::resolver::numeric_service,
        [lookup](const boost::system::error_code& ec, tcp::resolver::results_type r) {
          lookup->done = true;
          lookup->ec = ec;
          lookup->results = std::move(r);
          lookup->timer.cancel();
        });
    co_await lookup->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!lookup->done) {
      lookup->resolver.cancel();
      co_return Error::Unavailable(fmt::format("DNS lookup of {} timed out", name),
                                   fmt::format("the host '{}' did not resolve in time", name));
    }
    if (lookup->ec || lookup->results.empty()) {
      co_return Error::InvalidArgument(fmt::format("the host '{}' does not resolve", name));
    }
    std::vector<asio::ip::address> addresses;
    for (const auto& entry : lookup->results) addresses.push_back(entry.endpoint().address());
    co_return addresses;
  }
};

}  // namespace

const HostResolver& SystemResolver() {
  static const GetAddrInfoResolver resolver;
  return resolver;
}

asio::awaitable<Result<std::vector<tcp::endpoint>>> ResolveAllowed(const CallbackTarget& target,
                                                                   const AddressPolicy& policy,
                                                                   Millis timeout,
                                                                   const HostResolver& resolver) {
  std::vector<asio::ip::address> addresses;
  if (target.address) {
    addresses.push_back(*target.address);
  } else {
    auto found = co_await resolver.Lookup(target.host, timeout);
    if (!found) co_return std::move(found).error();
    addresses = std::move(*found);
    if (addresses.empty()) {
      co_return Error::InvalidArgument(fmt::format("the host '{}' does not resolve", target.host));
    }
  }
  std::vector<tcp::endpoint> endpoints;
  for (const asio::ip::address& a : addresses) {
    if (auto st = policy.Check(a); !st) co_return std::move(st).error();
    endpoints.emplace_back(a, target.port);
  }
  co_return endpoints;
}

}  // namespace acceptd::webhooks
