#include "webhooks/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <optional>

#include <fmt/format.h>

namespace acceptd::webhooks {

namespace {
constexpr std::string_view kSecretPrefix = "whsec_";
constexpr size_t kMaxKeyBytes = 64;
}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes.
  size_t padding = 0;
  if (text.ends_with("==")) {
    padding = 2;
  } else if (text.ends_with("=")) {
    padding = 1;
  }
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

Result<WebhookSigner> WebhookSigner::FromSecret(std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix)) {
    return Error::InvalidArgument("a webhook secret starts with 'whsec_' (then base64)");
  }
  auto key = Base64Decode(secret.substr(kSecretPrefix.size()));
  if (!key || key->empty() || key->size() > kMaxKeyBytes) {
    return Error::InvalidArgument(
        "a webhook secret is 'whsec_' followed by base64 of 1 to 64 bytes (24 to 64 recommended)");
  }
  return WebhookSigner(std::move(*key));
}

std::string WebhookSigner::Sign(std::string_view message_id, int64_t timestamp_seconds,
                                std::string_view body) const {
  std::string message = fmt::format("{}.{}.", message_id, timestamp_seconds);
  message.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return "v1," + Base64Encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace acceptd::webhooks
