// PostJson: one outgoing HTTP(S) POST to a URL the SSRF guard allows, for
// callbacks and the compatibility routes' redirects, sent by the one outgoing
// client (outbound/http_client.h) on a connection of its own. The host is resolved
// and checked (resolver.h) and acceptd connects only to the checked
// addresses, checking each once more as it connects; https verifies the certificate and host name
// against the system trust store. Reads the response's status line and headers only: a 3xx is
// returned as it is, never followed (a redirect could point anywhere, and the guard judged only
// this URL).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/clock.h"
#include "engine/callback_sender.h"
#include "outbound/http_client.h"
#include "webhooks/address_policy.h"
#include "webhooks/resolver.h"

namespace acceptd::webhooks {

struct OutgoingPost {
  std::string url;
  std::string body;  // sent as application/json
  std::vector<std::pair<std::string, std::string>> headers;
  Millis timeout = 10'000;  // the whole attempt: resolve, connect, send, response header
};

// Where an outgoing POST meets the network (outbound/http_client.h).
using outbound::NetworkSeams;

// Runs on the calling coroutine's executor. A status in the result means the
// receiver answered; otherwise `error` says what went wrong.
boost::asio::awaitable<CallbackResponse> PostJson(const OutgoingPost& post,
                                                  const AddressPolicy& policy,
                                                  const NetworkSeams& seams = {});

}  // namespace acceptd::webhooks
