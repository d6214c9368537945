#include "http/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/beast/core/string.hpp>

#include "http/problem.h"

namespace acceptd::http {

namespace {

constexpr std::string_view kScopeNames[kScopeCount] = {"submit", "read",  "cancel",
                                                       "worker", "admin", "metrics"};
constexpr std::string_view kKeyPrefix = "acd_";
constexpr size_t kKeyRandomBytes = 32;
// Longer Authorization values are refused without hashing: no key is this
// long, and it bounds the work a request can ask for.
constexpr size_t kMaxKeyLength = 512;

// The credentials of "Bearer <token>" (RFC 6750 section 2.1: the scheme is
// case-insensitive, one or more spaces follow it); nullopt for anything else.
std::optional<std::string_view> BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() ||
      !boost::beast::iequals(value.substr(0, kScheme.size()), kScheme) ||
      value[kScheme.size()] != ' ') {
    return std::nullopt;
  }
  std::string_view token = value.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace

std::string_view ToString(Scope scope) { return kScopeNames[static_cast<int>(scope)]; }

std::optional<Scope> ParseScope(std::string_view text) {
  for (int i = 0; i < kScopeCount; ++i) {
    if (kScopeNames[i] == text) return static_cast<Scope>(i);
  }
  return std::nullopt;
}

std::string Scopes::ToString() const {
  std::string out;
  for (int i = 0; i < kScopeCount; ++i) {
    if (!Has(static_cast<Scope>(i))) continue;
    if (!out.empty()) out += ',';
    out += kScopeNames[i];
  }
  return out;
}

std::variant<Principal, AuthFailure> Authenticator::Authenticate(
    std::string_view authorization) const {
  auto token = BearerToken(authorization);
  if (!token) return authorization.empty() ? AuthFailure::kMissing : AuthFailure::kInvalid;
  if (token->size() > kMaxKeyLength) return AuthFailure::kInvalid;
  const KeyHash presented = HashKey(*token);
  // Every hash is compared, and the match recorded without a branch on the
  // secret data, so the time does not depend on which key (if any) matched.
  const ApiKey* match = nullptr;
  for (const ApiKey& key : keys_) {
    const bool equal = CRYPTO_memcmp(presented.data(), key.sha256.data(), presented.size()) == 0;
    match = equal ? &key : match;
  }
  if (!match) return AuthFailure::kInvalid;
  return Principal{match->name, match->scopes, match->tenant};
}

Response Unauthorized(AuthFailure failure) {
  const bool invalid = failure == AuthFailure::kInvalid;
  Response res = Problem(Status::unauthorized,
                         invalid ? "the API key is not valid"
                                 : "this server needs an API key: Authorization: Bearer <key>");
  res.set(Field::www_authenticate, invalid ? R"(Bearer realm="acceptd", error="invalid_token")"
                                           : R"(Bearer realm="acceptd")");
  return res;
}

Response Forbidden(Scope scope) {
  return Problem(Status::forbidden,
                 "the API key lacks the scope '" + std::string(ToString(scope)) + "'",
                 boost::json::object{{"scope", ToString(scope)}});
}

KeyHash HashKey(std::string_view key) {
  KeyHash out{};
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string ToHex(const KeyHash& hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(hash.size() * 2);
  for (uint8_t b : hash) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

std::optional<KeyHash> ParseKeyHash(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  KeyHash out{};
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

Result<std::string> GenerateKey() {
  unsigned char bytes[kKeyRandomBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Error::Internal("RAND_bytes failed");
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string key(kKeyPrefix);
  // base64url without padding: 32 bytes -> 43 characters.
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      key += kAlphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) key += kAlphabet[(acc << (6 - bits)) & 0x3f];
  OPENSSL_cleanse(bytes, sizeof bytes);
  return key;
}

}  // namespace acceptd::http
