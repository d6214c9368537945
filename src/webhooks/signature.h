// WebhookSigner: Standard Webhooks signatures (https://www.standardwebhooks.com).
//
// A message is signed with HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}"
// using the secret's key bytes; the `webhook-signature` header carries
// "v1,<base64 signature>". Secrets are written "whsec_<base64 key>".
// Immutable after construction; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace acceptd::webhooks {

class WebhookSigner {
 public:
  // kInvalidArgument unless `secret` is "whsec_" followed by base64 of 1..64 bytes.
  static Result<WebhookSigner> FromSecret(std::string_view secret);

  // The value of the webhook-signature header.
  std::string Sign(std::string_view message_id, int64_t timestamp_seconds,
                   std::string_view body) const;

 private:
  explicit WebhookSigner(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

std::string Base64Encode(std::string_view bytes);
// Standard base64 with padding; nullopt on any other character or bad length.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace acceptd::webhooks
