// The `[[api_keys]]` tables of the server config (docs/operations.md, "API
// keys"), and the TOML that `acceptd keygen` prints for a key.
//
//   [[api_keys]]
//   name = "frontend"                 # shown in logs instead of the key
//   sha256 = "<hex SHA-256 of the key>"
//   scopes = ["submit", "read"]
//   tenant = "acme"                   # optional
//
// Loading is strict, like the rest of the config: an unknown key, a missing
// name/sha256/scopes, an unknown scope, a malformed hash, a bad name or
// tenant, or a name or hash used twice is an error naming the key.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "core/error.h"
#include "http/auth.h"

namespace acceptd {

// Appends the keys of `node` (an array of tables; `where` names it in errors,
// e.g. "api_keys" or "keys.toml: api_keys") to `keys`, checking each new key
// against those already there.
Status LoadApiKeys(const toml::node& node, std::string_view where, std::vector<http::ApiKey>& keys);
// Appends the keys of a keys file: TOML with only `[[api_keys]]` tables.
Status LoadApiKeysFile(const std::string& path, std::vector<http::ApiKey>& keys);
// 1..64 letters, digits, '-', '_' or '.': key names and tenants.
bool ValidKeyName(std::string_view name);
// The `[[api_keys]]` table for a key: what keygen prints.
std::string ApiKeyToml(const http::ApiKey& key);

inline constexpr char kDefaultKeygenName[] = "client";
inline constexpr char kDefaultKeygenScopes[] = "submit,read,cancel";

// `acceptd keygen`: a new random key on the first line of `out`, then its
// `[[api_keys]]` table (so `tail -n +2` is config). `scopes` is comma-separated.
// Returns the exit code: 0, or 2 (message on `err`) for a bad name, scope or tenant.
int RunKeygen(const std::string& name, const std::string& scopes, const std::string& tenant,
              std::ostream& out, std::ostream& err);

}  // namespace acceptd
