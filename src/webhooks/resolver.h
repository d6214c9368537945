// Resolves a callback target to the endpoints acceptd may connect to, under
// the SSRF guard: every address the name resolves to must pass the
// AddressPolicy, else the whole target is refused (a name that resolves to
// one public and one private address is refused, not half-trusted).
// Connecting to exactly the endpoints returned here, and resolving again for
// each delivery, keeps DNS rebinding from turning an accepted name into an
// internal address later.
#pragma once

#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "webhooks/address_policy.h"

namespace acceptd::webhooks {

// Runs on the calling coroutine's executor. kInvalidArgument if the policy
// refuses an address or the name does not resolve; kUnavailable if the
// lookup took longer than `timeout` (the lookup itself cannot be cancelled:
// it finishes in the background and its answer is dropped).
boost::asio::awaitable<Result<std::vector<boost::asio::ip::tcp::endpoint>>> ResolveAllowed(
    const CallbackTarget& target, const AddressPolicy& policy, Millis timeout);

}  // namespace acceptd::webhooks
