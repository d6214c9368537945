// ServerConfig: everything `acceptd serve` needs, from defaults, the TOML
// config file and command-line flags (in that order of precedence, lowest
// first). Loading validates strictly: an unknown key, a wrong type or an
// impossible value is an error naming the key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/compat_api.h"
#include "api/v1_api.h"
#include "core/error.h"
#include "engine/queue_config.h"
#include "engine/schedule_runner.h"
#include "http/auth.h"
#include "http/server.h"
#include "webhooks/address_policy.h"

namespace acceptd {

inline constexpr char kDefaultListen[] = "127.0.0.1:8000";
inline constexpr char kDefaultStore[] = "sqlite:./acceptd-data/acceptd.db";
inline constexpr int kDefaultStorePoolSize = 8;
inline constexpr size_t kDefaultLogMaxSize = 10 << 20;
inline constexpr int kDefaultLogMaxFiles = 5;

struct LogConfig {
  std::string dir;  // empty: stderr only
  std::string level = "info";
  size_t max_size = kDefaultLogMaxSize;  // bytes per file before rotating
  int max_files = kDefaultLogMaxFiles;
  // "text" (a line: time, level, message) or "json" (one object per line).
  std::string format = "text";
  // A line per routed request (method, route, status, duration, bytes,
  // request id, key) at level info.
  bool access = false;
};

struct ServerConfig {
  std::string listen = kDefaultListen;
  std::string store = kDefaultStore;
  // [server] store_pool_size, unsafe_durability (or --unsafe-durability):
  // for a database server store (see StoreOptions in store/job_store.h).
  int store_pool_size = kDefaultStorePoolSize;
  bool unsafe_durability = false;
  int threads = 0;  // HTTP event loops; 0: one per core
  http::ServerLimits limits;
  EngineOptions engine;
  api::ApiOptions api;
  api::CompatOptions compat;  // [compat]: the original demo's producer routes
  LogConfig log;
  // [callbacks]: the Standard Webhooks signing secret ("whsec_..."; empty:
  // callbacks are refused) and the address ranges exempt from the SSRF guard.
  std::string callback_secret;
  std::vector<webhooks::AddressRange> callback_allow;
  std::vector<QueueConfig> queues;  // empty after loading: one per built-in handler
  // [[schedules]]: recurring jobs (ScheduleRunner), each checked at loading:
  // its cron expression parses and fires again, its time zone loads, its
  // queue is configured.
  std::vector<ScheduleConfig> schedules;
  // [[api_keys]] and those of `api_keys_file` (a path relative to the config
  // file's directory); none: authentication is off.
  std::vector<http::ApiKey> api_keys;
};

// Parses a TOML file into `config` (keys not in the file keep their values).
Status LoadConfigFile(const std::string& path, ServerConfig& config);
// The same for a TOML document in memory; `source` stands for the file's
// path: errors name it, and a relative api_keys_file is resolved against
// its directory.
Status LoadConfigText(std::string_view text, std::string_view source, ServerConfig& config);
// One queue per built-in handler, named like it, with default settings.
std::vector<QueueConfig> DefaultQueues();
// Splits "HOST:PORT" ("[::1]:8000" for IPv6).
Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen);

}  // namespace acceptd
