// Resolves a callback target to the endpoints acceptd may connect to, under
// the SSRF guard: every address the name resolves to must pass the
// AddressPolicy, else the whole target is refused (a name that resolves to
// one public and one private address is refused, not half-trusted).
// Connecting to exactly the endpoints returned here, and resolving again for
// each delivery, keeps DNS rebinding from turning an accepted name into an
// internal address later.
//
// Name lookups go through a HostResolver: the system's (getaddrinfo) in
// production; tests inject one with scripted answers (names of private
// addresses, an answer that changes between submit and delivery).
#pragma once

#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "webhooks/address_policy.h"

namespace acceptd::webhooks {

// Looks up the addresses of a host name. Implementations must be thread-safe
// (one is shared by the API and the sender threads).
class HostResolver {
 public:
  virtual ~HostResolver() = default;
  // Runs on the calling coroutine's executor. The name's addresses (never
  // empty on success); kInvalidArgument if it does not resolve; kUnavailable
  // if the answer did not come within `timeout`.
  virtual boost::asio::awaitable<Result<std::vector<boost::asio::ip::address>>> Lookup(
      const std::string& name, Millis timeout) const = 0;
};

// getaddrinfo, run on asio's resolver thread. A lookup that times out cannot
// be cancelled: it finishes in the background and its answer is dropped.
const HostResolver& SystemResolver();

// Runs on the calling coroutine's executor. An IP-literal host is not looked
// up (target.address); a name is, with `resolver`. kInvalidArgument if the
// policy refuses an address or the name does not resolve; kUnavailable if
// the lookup took longer than `timeout`.
boost::asio::awaitable<Result<std::vector<boost::asio::ip::tcp::endpoint>>> ResolveAllowed(
    const CallbackTarget& target, const AddressPolicy& policy, Millis timeout,
    const HostResolver& resolver = SystemResolver());

}  // namespace acceptd::webhooks
