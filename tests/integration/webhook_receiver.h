// WebhookReceiver: a small HTTP server on 127.0.0.1 for tests of outgoing
// callbacks. It records every request and answers each with the next status
// of a script (the last status repeats). Runs its own thread; thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace acceptd::itest {

struct ReceivedRequest {
  std::string method;
  std::string target;
  Headers headers;
  std::string body;
  std::string Header(std::string_view name) const;
};

class WebhookReceiver {
 public:
  // Listens on `port` (0: any free one) and answers with `statuses` in turn.
  explicit WebhookReceiver(std::vector<int> statuses = {200}, uint16_t port = 0);
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  uint16_t port() const { return port_; }
  std::string Url(std::string_view path = "/hook") const;
  // Waits until at least `n` requests arrived; false after `timeout`.
  bool WaitForRequests(size_t n, Millis timeout = 20s) const;
  std::vector<ReceivedRequest> requests() const;
  // The requests from the `first`-th on (0-based; empty if fewer arrived).
  std::vector<ReceivedRequest> RequestsFrom(size_t first) const;

 private:
  void Serve();

  std::vector<int> statuses_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ReceivedRequest> requests_;
  bool stopping_ = false;
};

// Standard Webhooks verification done independently of acceptd's signer:
// HMAC-SHA256 with OpenSSL over "id.timestamp.body", base64, "v1," prefix.
std::string ExpectedWebhookSignature(std::string_view whsec_secret, std::string_view id,
                                     std::string_view timestamp, std::string_view body);

}  // namespace acceptd::itest
