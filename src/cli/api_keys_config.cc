#include "cli/api_keys_config.h"

#include <cctype>

#include <fmt/format.h>

namespace acceptd {
namespace {

Error KeyError(std::string_view key, std::string_view why) {
  return Error::InvalidArgument(fmt::format("config key '{}': {}", key, why));
}

// One `[[api_keys]]` table; `where` is e.g. "api_keys[0]".
Status LoadKey(const toml::table& t, const std::string& where, http::ApiKey& key) {
  for (auto&& [k, v] : t) {
    const std::string_view name = k.str();
    if (name != "name" && name != "sha256" && name != "scopes" && name != "tenant") {
      return KeyError(where + "." + std::string(name), "unknown key");
    }
  }
  const auto name = t["name"].value<std::string>();
  if (!t["name"].is_string() || !name || !ValidKeyName(*name)) {
    return KeyError(where + ".name",
                    "is required: 1-64 letters, digits, '-', '_' or '.' (shown in logs)");
  }
  key.name = *name;
  // Errors below also name the key by its name: that is what the operator wrote.
  const auto hash = t["sha256"].value<std::string>();
  if (!t["sha256"].is_string() || !hash) {
    return KeyError(where + ".sha256", fmt::format("API key '{}': is required", key.name));
  }
  auto parsed = http::ParseKeyHash(*hash);
  if (!parsed) {
    return KeyError(where + ".sha256",
                    fmt::format("API key '{}': must be the 64 hex digits of the key's SHA-256 "
                                "(acceptd keygen prints it)",
                                key.name));
  }
  key.sha256 = *parsed;
  const toml::array* scopes = t["scopes"].as_array();
  if (!scopes || scopes->empty()) {
    return KeyError(where + ".scopes",
                    fmt::format("API key '{}': must be a non-empty array of scopes "
                                "(submit, read, cancel, worker, admin)",
                                key.name));
  }
  for (const toml::node& s : *scopes) {
    const auto text = s.value<std::string>();
    const auto scope = s.is_string() && text ? http::ParseScope(*text) : std::nullopt;
    if (!scope) {
      return KeyError(
          where + ".scopes",
          fmt::format("API key '{}': unknown scope {} (known: submit, read, cancel, "
                      "worker, admin, metrics)",
                      key.name, text ? "'" + *text + "'" : std::string("(not a string)")));
    }
    key.scopes.Add(*scope);
  }
  if (t.contains("tenant")) {
    const auto tenant = t["tenant"].value<std::string>();
    if (!t["tenant"].is_string() || !tenant || !ValidKeyName(*tenant)) {
      return KeyError(where + ".tenant",
                      fmt::format("API key '{}': 1-64 letters, digits, '-', '_' or '.'", key.name));
    }
    key.tenant = *tenant;
  }
  return {};
}

}  // namespace

bool ValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

Status LoadApiKeys(const toml::node& node, std::string_view where,
                   std::vector<http::ApiKey>& keys) {
  const toml::array* tables = node.as_array();
  if (!tables || !tables->is_array_of_tables()) {
    return KeyError(where, "must be an array of tables: [[api_keys]]");
  }
  size_t index = 0;
  for (const toml::node& n : *tables) {
    const std::string at = fmt::format("{}[{}]", where, index++);
    http::ApiKey key;
    if (auto st = LoadKey(*n.as_table(), at, key); !st) return st;
    for (const http::ApiKey& other : keys) {
      if (other.name == key.name) {
        return KeyError(at + ".name", fmt::format("API key '{}' is declared twice", key.name));
      }
      // Two names for one key: which one would the logs show?
      if (other.sha256 == key.sha256) {
        return KeyError(at + ".sha256", fmt::format("API key '{}' has the same sha256 as '{}'",
                                                    key.name, other.name));
      }
    }
    keys.push_back(std::move(key));
  }
  return {};
}

Status LoadApiKeysFile(const std::string& path, std::vector<http::ApiKey>& keys) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return Error::InvalidArgument(fmt::format("API keys file {}: {} (line {}, column {})", path,
                                              e.description(), e.source().begin.line,
                                              e.source().begin.column));
  }
  const std::string where = path + ": api_keys";
  for (auto&& [k, v] : root) {
    if (k.str() != "api_keys") {
      return KeyError(path + ": " + std::string(k.str()), "unknown key (only [[api_keys]])");
    }
  }
  if (const toml::node* n = root.get("api_keys")) return LoadApiKeys(*n, where, keys);
  return {};
}

std::string ApiKeyToml(const http::ApiKey& key) {
  std::string scopes;
  for (int i = 0; i < http::kScopeCount; ++i) {
    const auto s = static_cast<http::Scope>(i);
    if (!key.scopes.Has(s)) continue;
    if (!scopes.empty()) scopes += ", ";
    scopes += fmt::format("\"{}\"", http::ToString(s));
  }
  std::string out = fmt::format("[[api_keys]]\nname = \"{}\"\nsha256 = \"{}\"\nscopes = [{}]\n",
                                key.name, http::ToHex(key.sha256), scopes);
  if (!key.tenant.empty()) out += fmt::format("tenant = \"{}\"\n", key.tenant);
  return out;
}

int RunKeygen(const std::string& name, const std::string& scopes, const std::string& tenant,
              std::ostream& out, std::ostream& err) {
  http::ApiKey key;
  if (!ValidKeyName(name)) {
    err << "acceptd keygen: --name: 1-64 letters, digits, '-', '_' or '.'\n";
    return 2;
  }
  key.name = name;
  std::string_view rest = scopes;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    auto scope = http::ParseScope(item);
    if (!scope) {
      err << "acceptd keygen: --scopes: unknown scope '" << item
          << "' (known: submit, read, cancel, worker, admin, metrics)\n";
      return 2;
    }
    key.scopes.Add(*scope);
  }
  if (key.scopes.empty()) {
    err << "acceptd keygen: --scopes: name at least one scope\n";
    return 2;
  }
  if (!tenant.empty() && !ValidKeyName(tenant)) {
    err << "acceptd keygen: --tenant: 1-64 letters, digits, '-', '_' or '.'\n";
    return 2;
  }
  key.tenant = tenant;
  auto secret = http::GenerateKey();
  if (!secret) {
    err << "acceptd keygen: " << secret.error().message << "\n";
    return 1;
  }
  key.sha256 = http::HashKey(*secret);
  out << *secret << "\n"
      << "# The key above goes to the client (Authorization: Bearer <key>), and nowhere else.\n"
      << "# Add these lines to the server config or its api_keys_file:\n"
      << ApiKeyToml(key);
  return 0;
}

}  // namespace acceptd
