// API keys: who is calling (authentication) and what they may do
// (authorisation), decided at the HTTP edge from `Authorization: Bearer <key>`
// (RFC 6750). See docs/api.md, "Authentication".
//
// The server never holds a key itself, only its SHA-256: a presented key is
// hashed and compared, in constant time, against EVERY configured hash (no
// early exit), so neither the position of the matching key nor the length of
// a common prefix shows in the timing. A key carries scopes and, optionally,
// a tenant; `admin` implies every other scope (as in Sidekiq or Temporal, the
// operator's key can do anything an application key can).
//
// Authenticator is pure (no I/O, no logging) and immutable once built, so it
// is thread-safe. Routes declare what they need with an Access value (see
// http/router.h); the router calls Authenticate and Check.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.h"
#include "http/types.h"

namespace acceptd::http {

enum class Scope : uint8_t {
  kSubmit = 0,   // create jobs
  kRead = 1,     // status, result, events, list, queues, readiness
  kCancel = 2,   // cancel and delete jobs
  kWorker = 3,   // reserved: the worker lease protocol
  kAdmin = 4,    // every scope, and (later) the admin routes
  kMetrics = 5,  // GET /metrics only: for a Prometheus scraper
};
inline constexpr int kScopeCount = 6;

std::string_view ToString(Scope scope);
// "submit", "read", "cancel", "worker", "admin" or "metrics"; nullopt otherwise.
std::optional<Scope> ParseScope(std::string_view text);

// A set of scopes, as a bit mask.
class Scopes {
 public:
  Scopes() = default;
  Scopes(std::initializer_list<Scope> scopes) {
    for (Scope s : scopes) Add(s);
  }
  void Add(Scope s) { bits_ |= Bit(s); }
  // True if the set holds `s`, or holds kAdmin (a superset of all).
  bool Allows(Scope s) const { return (bits_ & (Bit(s) | Bit(Scope::kAdmin))) != 0; }
  bool Has(Scope s) const { return (bits_ & Bit(s)) != 0; }
  bool empty() const { return bits_ == 0; }
  // "submit,read" (in enum order).
  std::string ToString() const;
  friend bool operator==(Scopes, Scopes) = default;

 private:
  static uint8_t Bit(Scope s) { return static_cast<uint8_t>(1u << static_cast<unsigned>(s)); }
  uint8_t bits_ = 0;
};

using KeyHash = std::array<uint8_t, 32>;  // SHA-256

// One configured key (the `[[api_keys]]` table), without the key itself.
struct ApiKey {
  std::string name;  // shown in logs instead of the key
  KeyHash sha256{};
  Scopes scopes;
  std::string tenant;  // empty: no tenant (an operator key that sees every job)
};

// The caller, once a key matched.
struct Principal {
  std::string name;
  Scopes scopes;
  std::string tenant;  // empty: sees every job; else only this tenant's jobs
};

// Why a request was refused before reaching its handler.
enum class AuthFailure : uint8_t {
  kMissing,  // no `Authorization: Bearer` credentials: 401, no error attribute
  kInvalid,  // a key was presented and matched none: 401 error="invalid_token"
};

// What a route asks of its caller.
class Access {
 public:
  static Access Public() { return Access(Kind::kPublic, Scope::kAdmin); }  // no key (/healthz)
  static Access AnyKey() { return Access(Kind::kAnyKey, Scope::kAdmin); }  // any valid key
  static Access Need(Scope scope) { return Access(Kind::kScope, scope); }

  bool is_public() const { return kind_ == Kind::kPublic; }
  // The scope needed, if any.
  std::optional<Scope> scope() const {
    return kind_ == Kind::kScope ? std::optional<Scope>(scope_) : std::nullopt;
  }

 private:
  enum class Kind : uint8_t { kPublic, kAnyKey, kScope };
  Access(Kind kind, Scope scope) : kind_(kind), scope_(scope) {}
  Kind kind_;
  Scope scope_;
};

class Authenticator {
 public:
  // No keys: authentication is off (every request is let through, as before
  // API keys existed; see docs/operations.md on binding to loopback).
  Authenticator() = default;
  explicit Authenticator(std::vector<ApiKey> keys) : keys_(std::move(keys)) {}

  bool enabled() const { return !keys_.empty(); }
  // The principal of the key in an Authorization header value ("Bearer
  // <key>", scheme case-insensitive), or why there is none. Takes the same
  // time whichever key matches, or none.
  std::variant<Principal, AuthFailure> Authenticate(std::string_view authorization) const;

 private:
  std::vector<ApiKey> keys_;
};

// The 401 problem response for `failure`, with
// `WWW-Authenticate: Bearer realm="acceptd"` (and error="invalid_token" for
// a wrong key).
Response Unauthorized(AuthFailure failure);
// The 403 problem response for a principal that lacks `scope`.
Response Forbidden(Scope scope);

// SHA-256 of `key`.
KeyHash HashKey(std::string_view key);
std::string ToHex(const KeyHash& hash);
// Exactly 64 hex digits (either case), else nullopt.
std::optional<KeyHash> ParseKeyHash(std::string_view hex);
// A new random key: "acd_" + 43 base64url characters (32 bytes from the
// OpenSSL CSPRNG). kInternal if the CSPRNG fails.
Result<std::string> GenerateKey();

}  // namespace acceptd::http
