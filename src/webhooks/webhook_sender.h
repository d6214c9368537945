// WebhookSender: delivers completion callbacks as Standard Webhooks: one
// HTTP(S) POST of the job's status document (without its `callback`
// member) per attempt, signed with the
// configured secret, to an address the SSRF guard allows (resolved afresh
// for every attempt, and connected to exactly as checked).
//
// Headers: content-type application/json, webhook-id (the same for every
// attempt of a job's delivery: "msg_" + job id, so receivers can de-duplicate
// the at-least-once deliveries), webhook-timestamp (Unix seconds),
// webhook-signature ("v1,<base64>"). Any 2xx counts as delivered; the
// response body is not read.
//
// Runs its own I/O thread. Send() is thread-safe. Destroying the sender stops
// the thread: attempts still in flight are dropped without calling `done`.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "core/clock.h"
#include "engine/callback_sender.h"
#include "webhooks/address_policy.h"
#include "webhooks/http_post.h"
#include "webhooks/signature.h"

namespace acceptd::webhooks {

struct WebhookSenderOptions {
  AddressPolicy policy;
  Millis timeout = 10'000;  // the whole attempt: resolve, connect, send, response header
  // The request body for a job (the status document; injected so that this
  // module does not depend on the API layer).
  std::function<std::string(const Job&)> render;
  NetworkSeams net;  // defaults: the system resolver, no observer
};

class WebhookSender final : public CallbackSender {
 public:
  WebhookSender(WebhookSigner signer, WebhookSenderOptions options);
  ~WebhookSender() override;
  void Send(const Job& job, std::function<void(CallbackResponse)> done) override;

 private:
  boost::asio::awaitable<CallbackResponse> Attempt(Job job);

  WebhookSigner signer_;
  WebhookSenderOptions options_;
  boost::asio::io_context ctx_;
  std::thread thread_;
};

}  // namespace acceptd::webhooks
