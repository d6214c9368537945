// CallbackSender: makes one delivery attempt of a job's completion callback.
//
// The engine decides which callbacks are due, leases them in the store, and
// applies the retry schedule (CallbackPolicy); a sender only performs one
// attempt and reports how it went. Implementations: webhooks::WebhookSender
// (signed HTTP POST of the status document), and fakes in tests.
//
// Send() may be called from the engine thread while earlier sends are in
// flight; `done` must be called exactly once, from any thread. A sender is
// destroyed after the engine stopped; pending sends may then be dropped (their
// store lease runs out and another attempt follows: at-least-once).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/job.h"

namespace acceptd {

struct CallbackResponse {
  std::optional<int> http_status;  // the receiver's status code, if it answered
  std::string error;               // why there is no status (refused, timeout, blocked address)
};

class CallbackSender {
 public:
  virtual ~CallbackSender() = default;
  // `job` is terminal and has a callback; this is attempt
  // job.callback->attempts + 1.
  virtual void Send(const Job& job, std::function<void(CallbackResponse)> done) = 0;
};

}  // namespace acceptd
