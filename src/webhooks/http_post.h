// PostJson: one outgoing HTTP(S) POST to a URL the SSRF guard allows, for
// callbacks and the compatibility routes' redirects. The host is resolved
// and checked (resolver.h) and acceptd connects only to the checked
// addresses, checking each once more as it connects; https verifies the certificate and host name
// against the system trust store. Reads the response's status line and headers only: a 3xx is
// returned as it is, never followed (a redirect could point anywhere, and the guard judged only
// this URL).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/clock.h"
#include "engine/callback_sender.h"
#include "webhooks/address_policy.h"
#include "webhooks/resolver.h"

namespace acceptd::webhooks {

struct OutgoingPost {
  std::string url;
  std::string body;  // sent as application/json
  std::vector<std::pair<std::string, std::string>> headers;
  Millis timeout = 10'000;  // the whole attempt: resolve, connect, send, response header
};

// Where an outgoing POST meets the network. Production uses the defaults;
// tests inject scripted DNS answers and observe every connection attempt.
struct NetworkSeams {
  const HostResolver* resolver = nullptr;  // nullptr: SystemResolver()
  // Called with each endpoint just before acceptd connects to it (after the
  // guard passed it), on the connecting thread; false skips that endpoint.
  std::function<bool(const boost::asio::ip::tcp::endpoint&)> before_connect;
};

// Runs on the calling coroutine's executor. A status in the result means the
// receiver answered; otherwise `error` says what went wrong.
boost::asio::awaitable<CallbackResponse> PostJson(const OutgoingPost& post,
                                                  const AddressPolicy& policy,
                                                  const NetworkSeams& seams = {});

}  // namespace acceptd::webhooks
