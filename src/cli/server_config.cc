#include "cli/server_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "cli/api_keys_config.h"
#include "cli/time_zone_files.h"
#include "webhooks/signature.h"
#include "workers/registry.h"

namespace acceptd {
namespace {

constexpr Millis kMinLease = 500;

Error ConfigError(std::string_view key, std::string_view why) {
  return Error::InvalidArgument(fmt::format("config key '{}': {}", key, why));
}

// Reads tables strictly: every key must be consumed, else it is unknown.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string prefix) : t_(t), prefix_(std::move(prefix)) {}

  std::string Key(std::string_view k) const {
    return prefix_.empty() ? std::string(k) : prefix_ + "." + std::string(k);
  }

  Status String(std::string_view k, std::string& out) {
    const toml::node* n = Take(k);
    if (!n) return {};
    auto v = n->value<std::string>();
    if (!n->is_string() || !v) return ConfigError(Key(k), "must be a string");
    out = *v;
    return {};
  }

  Status Int(std::string_view k, int64_t min, int64_t max, int64_t& out) {
    const toml::node* n = Take(k);
    if (!n) return {};
    if (!n->is_integer()) return ConfigError(Key(k), "must be an integer");
    int64_t v = *n->value<int64_t>();
    if (v < min || v > max) {
      return ConfigError(Key(k), fmt::format("must be between {} and {}", min, max));
    }
    out = v;
    return {};
  }

  // Durations are seconds, integer or fractional.
  Status Seconds(std::string_view k, bool allow_zero, Millis& out) {
    const toml::node* n = Take(k);
    if (!n) return {};
    if (!n->is_number()) return ConfigError(Key(k), "must be a number of seconds");
    double v = *n->value<double>();
    if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0) || v > 1e9) {
      return ConfigError(Key(k), allow_zero ? "must be a non-negative number of seconds"
                                            : "must be a positive number of seconds");
    }
    out = static_cast<Millis>(std::llround(v * 1000));
    if (!allow_zero && out == 0) return ConfigError(Key(k), "must be at least 0.001 seconds");
    return {};
  }

  Status Fraction(std::string_view k, double& out) {
    const toml::node* n = Take(k);
    if (!n) return {};
    if (!n->is_number()) return ConfigError(Key(k), "must be a number");
    double v = *n->value<double>();
    if (!std::isfinite(v) || v < 0 || v > 1) return ConfigError(Key(k), "must be between 0 and 1");
    out = v;
    return {};
  }

  const toml::node* Node(std::string_view k) { return Take(k); }
  const toml::table* Table(std::string_view k) {
    const toml::node* n = Take(k);
    return n ? n->as_table() : nullptr;
  }
  bool Has(std::string_view k) const { return t_.contains(k); }
  bool IsTable(std::string_view k) const {
    const toml::node* n = t_.get(k);
    return n && n->is_table();
  }

  // The first key that was never read, if any.
  Status NoUnknownKeys() const {
    for (auto&& [k, v] : t_) {
      if (!seen_.count(std::string(k.str()))) return ConfigError(Key(k.str()), "unknown key");
    }
    return {};
  }

 private:
  const toml::node* Take(std::string_view k) {
    seen_.insert(std::string(k));
    return t_.get(k);
  }
  const toml::table& t_;
  std::string prefix_;
  std::set<std::string> seen_;
};

#define RETURN_IF_ERROR(expr)                \
  do {                                       \
    if (auto st_ = (expr); !st_) return st_; \
  } while (0)

// `backoff = { base, max, jitter }` in the table `r` reads, if present.
Status LoadBackoff(TableReader& r, BackoffPolicy& backoff) {
  if (!r.Has("backoff")) return {};
  if (!r.IsTable("backoff")) return ConfigError(r.Key("backoff"), "must be a table");
  TableReader br(*r.Table("backoff"), r.Key("backoff"));
  RETURN_IF_ERROR(br.Seconds("base", true, backoff.base));
  RETURN_IF_ERROR(br.Seconds("max", true, backoff.max));
  RETURN_IF_ERROR(br.Fraction("jitter", backoff.jitter));
  RETURN_IF_ERROR(br.NoUnknownKeys());
  if (backoff.max < backoff.base) {
    return ConfigError(br.Key("max"), "must not be less than backoff.base");
  }
  return {};
}

Status StringArray(TableReader& r, std::string_view k, std::vector<std::string>& out) {
  const toml::node* n = r.Node(k);
  if (!n) return {};
  const toml::array* a = n->as_array();
  if (!a) return ConfigError(r.Key(k), "must be an array of strings");
  out.clear();
  for (const toml::node& item : *a) {
    auto v = item.value<std::string>();
    if (!item.is_string() || !v) return ConfigError(r.Key(k), "must be an array of strings");
    out.push_back(*v);
  }
  return {};
}

Status StringTable(TableReader& r, std::string_view k, std::map<std::string, std::string>& out) {
  if (!r.Has(k)) return {};
  if (!r.IsTable(k)) return ConfigError(r.Key(k), "must be a table of strings");
  out.clear();
  for (auto&& [name, node] : *r.Table(k)) {
    auto v = node.value<std::string>();
    if (!node.is_string() || !v) {
      return ConfigError(r.Key(k) + "." + std::string(name.str()), "must be a string");
    }
    out.emplace(std::string(name.str()), *v);
  }
  return {};
}

Status LoadExec(TableReader& r, ExecConfig& e) {
  RETURN_IF_ERROR(StringArray(r, "command", e.command));
  if (e.command.empty() || e.command.front().empty()) {
    return ConfigError(r.Key("command"), "is required: the program and its arguments, no shell");
  }
  for (const std::string& arg : e.command) {
    if (arg.find('\0') != std::string::npos) {
      return ConfigError(r.Key("command"), "must not contain NUL characters");
    }
  }
  RETURN_IF_ERROR(r.String("result_content_type", e.result_content_type));
  if (e.result_content_type.empty()) {
    return ConfigError(r.Key("result_content_type"), "must not be empty");
  }
  RETURN_IF_ERROR(StringTable(r, "env", e.env));
  for (const auto& [name, value] : e.env) {
    if (name.empty() || name.find('=') != std::string::npos ||
        value.find('\0') != std::string::npos || name.rfind("ACCEPTD_", 0) == 0) {
      return ConfigError(r.Key("env") + "." + name,
                         "names are non-empty, without '=', and not ACCEPTD_* (set by acceptd)");
    }
  }
  RETURN_IF_ERROR(StringArray(r, "inherit_env", e.inherit_env));
  RETURN_IF_ERROR(r.Seconds("kill_grace", true, e.kill_grace));
  int64_t max = static_cast<int64_t>(e.max_result_bytes);
  RETURN_IF_ERROR(r.Int("max_result_bytes", 1, int64_t{1} << 32, max));
  e.max_result_bytes = static_cast<size_t>(max);
  if (const toml::node* n = r.Node("retry_exit_codes")) {
    const toml::array* a = n->as_array();
    if (!a) return ConfigError(r.Key("retry_exit_codes"), "must be an array of exit codes");
    e.retry_exit_codes.clear();
    for (const toml::node& item : *a) {
      auto v = item.value<int64_t>();
      if (!item.is_integer() || !v || *v < 1 || *v > 255) {
        return ConfigError(r.Key("retry_exit_codes"), "must be an array of integers 1..255");
      }
      e.retry_exit_codes.push_back(static_cast<int>(*v));
    }
  }
  if (const toml::node* n = r.Node("retry_on_signal")) {
    if (!n->is_boolean()) return ConfigError(r.Key("retry_on_signal"), "must be true or false");
    e.retry_on_signal = *n->value<bool>();
  }
  RETURN_IF_ERROR(r.String("work_dir", e.work_dir));
  return {};
}

Status LoadHttpHandler(TableReader& r, HttpHandlerConfig& h) {
  RETURN_IF_ERROR(r.String("url", h.url));
  if (h.url.empty()) return ConfigError(r.Key("url"), "is required: the backend's http(s) URL");
  RETURN_IF_ERROR(r.String("method", h.method));
  if (h.method.empty() ||
      !std::all_of(h.method.begin(), h.method.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return ConfigError(r.Key("method"), "must be an HTTP method in capitals, like \"POST\"");
  }
  RETURN_IF_ERROR(StringTable(r, "headers", h.headers));
  int64_t max = static_cast<int64_t>(h.max_result_bytes);
  RETURN_IF_ERROR(r.Int("max_result_bytes", 1, int64_t{1} << 32, max));
  h.max_result_bytes = static_cast<size_t>(max);
  if (const toml::node* n = r.Node("verify_tls")) {
    if (!n->is_boolean()) return ConfigError(r.Key("verify_tls"), "must be true or false");
    h.verify_tls = *n->value<bool>();
  }
  return {};
}

Status LoadQueue(const std::string& name, const toml::table& t, QueueConfig& q) {
  TableReader r(t, "queues." + name);
  q.name = name;
  RETURN_IF_ERROR(r.String("handler", q.handler));
  if (q.handler.empty()) return ConfigError(r.Key("handler"), "is required");
  if (!HandlerKinds().count(q.handler)) {
    return ConfigError(r.Key("handler"), fmt::format("unknown handler '{}' (known: {})", q.handler,
                                                     fmt::join(HandlerKindNames(), ", ")));
  }
  int64_t v = q.concurrency;
  RETURN_IF_ERROR(r.Int("concurrency", 1, 4096, v));
  q.concurrency = static_cast<int>(v);
  RETURN_IF_ERROR(r.Int("max_depth", 1, int64_t{1} << 40, q.max_depth));
  v = q.max_attempts;
  RETURN_IF_ERROR(r.Int("max_attempts", 1, 1000, v));
  q.max_attempts = static_cast<int>(v);
  RETURN_IF_ERROR(r.Seconds("timeout", false, q.timeout));
  RETURN_IF_ERROR(r.Seconds("retention", true, q.retention));
  RETURN_IF_ERROR(LoadBackoff(r, q.backoff));
  // A kind's own keys are read only for that kind: elsewhere they are unknown.
  if (q.handler == kExternalHandler) {
    RETURN_IF_ERROR(r.Seconds("lease", false, q.lease_duration));
    if (q.lease_duration != 0 && (q.lease_duration < 1'000 || q.lease_duration > 3'600'000)) {
      return ConfigError(r.Key("lease"), "must be from 1 to 3600 seconds");
    }
  } else if (q.handler == "exec") {
    RETURN_IF_ERROR(LoadExec(r, q.exec));
  } else if (q.handler == "http") {
    RETURN_IF_ERROR(LoadHttpHandler(r, q.http));
  }
  // What only this machine can tell (a command in PATH, ...) is checked by
  // the kind's factory when `serve` makes the handlers (after logging is set
  // up: making an exec handler sweeps strays of a crashed run); its error
  // names the key too. Loading a config has no side effects.
  return r.NoUnknownKeys();
}

Status LoadCallbacks(TableReader& r, ServerConfig& c) {
  RETURN_IF_ERROR(r.String("secret", c.callback_secret));
  if (!c.callback_secret.empty()) {
    if (auto signer = webhooks::WebhookSigner::FromSecret(c.callback_secret); !signer) {
      return ConfigError(r.Key("secret"), signer.error().detail);
    }
  }
  if (r.Has("allow")) {
    const toml::node* n = r.Node("allow");
    const toml::array* ranges = n->as_array();
    if (!ranges) return ConfigError(r.Key("allow"), "must be an array of address ranges");
    c.callback_allow.clear();
    for (const toml::node& item : *ranges) {
      auto text = item.value<std::string>();
      if (!item.is_string() || !text) {
        return ConfigError(r.Key("allow"), "must be an array of strings like \"10.0.0.0/8\"");
      }
      auto range = webhooks::AddressRange::Parse(*text);
      if (!range) return ConfigError(r.Key("allow"), range.error().detail);
      c.callback_allow.push_back(std::move(*range));
    }
  }
  CallbackPolicy& p = c.engine.callbacks;
  int64_t v = p.max_attempts;
  RETURN_IF_ERROR(r.Int("max_attempts", 1, 1000, v));
  p.max_attempts = static_cast<int>(v);
  RETURN_IF_ERROR(r.Seconds("timeout", false, p.timeout));
  v = p.concurrency;
  RETURN_IF_ERROR(r.Int("concurrency", 1, 4096, v));
  p.concurrency = static_cast<int>(v);
  RETURN_IF_ERROR(r.Seconds("poll_interval", false, p.poll_interval));
  RETURN_IF_ERROR(LoadBackoff(r, p.backoff));
  return r.NoUnknownKeys();
}

bool ValidQueueName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

// One `[[schedules]]` table (the `index`-th). `queues`: those configured.
Status LoadSchedule(const toml::table& t, size_t index, const std::vector<QueueConfig>& queues,
                    ScheduleConfig& s) {
  TableReader r(t, fmt::format("schedules[{}]", index));
  RETURN_IF_ERROR(r.String("name", s.name));
  if (!r.Has("name")) return ConfigError(r.Key("name"), "is required");
  if (!ValidQueueName(s.name)) {
    return ConfigError(r.Key("name"),
                       "schedule names use letters, digits, '-', '_' and '.' (1-64)");
  }
  std::string cron;
  RETURN_IF_ERROR(r.String("cron", cron));
  if (!r.Has("cron")) {
    return ConfigError(r.Key("cron"),
                       "is required: 5 fields (\"30 2 * * *\") or 6 with seconds first");
  }
  auto expr = CronExpr::Parse(cron);
  if (!expr) return ConfigError(r.Key("cron"), expr.error().detail);
  s.cron = std::move(*expr);
  std::string zone = "UTC";
  RETURN_IF_ERROR(r.String("timezone", zone));
  auto tz = LoadTimeZone(zone);
  if (!tz) return ConfigError(r.Key("timezone"), tz.error().detail);
  s.zone = std::move(*tz);
  RETURN_IF_ERROR(r.String("queue", s.queue));
  if (!r.Has("queue")) return ConfigError(r.Key("queue"), "is required");
  if (std::none_of(queues.begin(), queues.end(),
                   [&](const QueueConfig& q) { return q.name == s.queue; })) {
    return ConfigError(r.Key("queue"), fmt::format("no queue named '{}'", s.queue));
  }
  RETURN_IF_ERROR(r.String("payload", s.payload));
  RETURN_IF_ERROR(r.String("content_type", s.content_type));
  if (s.content_type.empty()) return ConfigError(r.Key("content_type"), "must not be empty");
  std::string on_missed = ToString(s.on_missed);
  RETURN_IF_ERROR(r.String("on_missed", on_missed));
  if (on_missed == "run_once") {
    s.on_missed = MissedPolicy::kRunOnce;
  } else if (on_missed == "skip") {
    s.on_missed = MissedPolicy::kSkip;
  } else {
    return ConfigError(r.Key("on_missed"), "must be \"run_once\" or \"skip\"");
  }
  RETURN_IF_ERROR(r.NoUnknownKeys());
  // "0 0 30 2 *" parses but never fires: say so now, not never.
  if (!NextTick(s, SystemClock::Instance().Now())) {
    return ConfigError(r.Key("cron"), fmt::format("\"{}\" never fires", cron));
  }
  return {};
}

}  // namespace

std::vector<QueueConfig> DefaultQueues() {
  std::vector<QueueConfig> out;
  for (const std::string& name : BuiltinHandlerNames()) {
    QueueConfig q;
    q.name = name;
    q.handler = name;
    out.push_back(q);
  }
  return out;
}

Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Error::InvalidArgument(fmt::format("listen address '{}' is not HOST:PORT", listen));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string_view port_text = std::string_view(listen).substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port > 65535) {
    return Error::InvalidArgument(fmt::format("listen address '{}' has an invalid port", listen));
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

namespace {

Error ParseError(std::string_view source, const toml::parse_error& e) {
  return Error::InvalidArgument(fmt::format("config file {}: {} (line {}, column {})", source,
                                            e.description(), e.source().begin.line,
                                            e.source().begin.column));
}

// `path`: the file's path (or the name of a text), against which a relative
// api_keys_file is resolved.
Status LoadConfigTable(const toml::table& root, std::string_view path, ServerConfig& c) {
  TableReader r(root, "");
  if (r.Has("server")) {
    if (!r.IsTable("server")) return ConfigError("server", "must be a table");
    TableReader s(*r.Table("server"), "server");
    RETURN_IF_ERROR(s.String("listen", c.listen));
    if (auto l = ParseListen(c.listen); !l) return ConfigError("server.listen", l.error().detail);
    RETURN_IF_ERROR(s.String("store", c.store));
    int64_t v = c.store_pool_size;
    RETURN_IF_ERROR(s.Int("store_pool_size", 1, 1'000, v));
    c.store_pool_size = static_cast<int>(v);
    if (const toml::node* n = s.Node("unsafe_durability")) {
      if (!n->is_boolean()) return ConfigError("server.unsafe_durability", "must be true or false");
      c.unsafe_durability = *n->value<bool>();
    }
    v = c.threads;
    RETURN_IF_ERROR(s.Int("threads", 0, 256, v));
    c.threads = static_cast<int>(v);
    v = static_cast<int64_t>(c.limits.body_limit);
    // SQLite stores a value of at most 1e9 bytes; stay well below it.
    RETURN_IF_ERROR(s.Int("body_limit", 1, int64_t{512} << 20, v));
    c.limits.body_limit = static_cast<size_t>(v);
    v = static_cast<int64_t>(c.limits.header_limit);
    RETURN_IF_ERROR(s.Int("header_limit", 1024, 1 << 20, v));
    c.limits.header_limit = static_cast<size_t>(v);
    v = static_cast<int64_t>(c.limits.max_header_count);
    RETURN_IF_ERROR(s.Int("max_header_count", 1, 10'000, v));
    c.limits.max_header_count = static_cast<size_t>(v);
    RETURN_IF_ERROR(s.Seconds("header_timeout", false, c.limits.header_timeout));
    RETURN_IF_ERROR(s.Seconds("request_timeout", false, c.limits.request_timeout));
    RETURN_IF_ERROR(s.Seconds("idle_timeout", false, c.limits.idle_timeout));
    v = static_cast<int64_t>(c.limits.max_connections);
    RETURN_IF_ERROR(s.Int("max_connections", 1, 1'000'000, v));
    c.limits.max_connections = static_cast<size_t>(v);
    RETURN_IF_ERROR(s.Seconds("shutdown_grace", true, c.engine.shutdown_grace));
    RETURN_IF_ERROR(s.Seconds("lease", false, c.engine.lease_duration));
    // Renewal runs every lease/3 but no more often than every 50 ms; a shorter
    // lease would expire between renewals.
    if (c.engine.lease_duration < kMinLease) {
      return ConfigError("server.lease", "must be at least 0.5 seconds");
    }
    RETURN_IF_ERROR(s.Seconds("retry_after", false, c.engine.retry_after));
    RETURN_IF_ERROR(s.Seconds("retry_after_max", false, c.engine.retry_after_max));
    if (c.engine.retry_after_max < c.engine.retry_after) {
      return ConfigError("server.retry_after_max", "must not be less than server.retry_after");
    }
    RETURN_IF_ERROR(s.Seconds("max_wait", true, c.api.max_wait));
    RETURN_IF_ERROR(s.Seconds("events_heartbeat", false, c.api.events_heartbeat));
    RETURN_IF_ERROR(s.Int("max_event_streams", 0, 1'000'000, c.api.max_event_streams));
    RETURN_IF_ERROR(s.Seconds("promote_interval", false, c.engine.promote_interval));
    RETURN_IF_ERROR(s.Seconds("purge_interval", false, c.engine.purge_interval));
    if (s.Node("watch_poll_interval")) {
      Millis watch_poll = 0;
      RETURN_IF_ERROR(s.Seconds("watch_poll_interval", true, watch_poll));
      c.engine.watch_poll_interval = watch_poll;
    }
    RETURN_IF_ERROR(s.Seconds("tombstone_retention", true, c.engine.tombstone_retention));
    int64_t status_cache = static_cast<int64_t>(c.engine.status_cache_size);
    RETURN_IF_ERROR(s.Int("status_cache_size", 0, 100'000'000, status_cache));
    c.engine.status_cache_size = static_cast<size_t>(status_cache);
    RETURN_IF_ERROR(s.NoUnknownKeys());
  }
  if (r.Has("log")) {
    if (!r.IsTable("log")) return ConfigError("log", "must be a table");
    TableReader l(*r.Table("log"), "log");
    RETURN_IF_ERROR(l.String("dir", c.log.dir));
    RETURN_IF_ERROR(l.String("level", c.log.level));
    int64_t v = static_cast<int64_t>(c.log.max_size);
    RETURN_IF_ERROR(l.Int("max_size", 4096, int64_t{1} << 40, v));
    c.log.max_size = static_cast<size_t>(v);
    v = c.log.max_files;
    RETURN_IF_ERROR(l.Int("max_files", 1, 1000, v));
    c.log.max_files = static_cast<int>(v);
    RETURN_IF_ERROR(l.String("format", c.log.format));
    if (c.log.format != "text" && c.log.format != "json") {
      return ConfigError("log.format", "must be \"text\" or \"json\"");
    }
    if (const toml::node* n = l.Node("access")) {
      if (!n->is_boolean()) return ConfigError("log.access", "must be true or false");
      c.log.access = *n->value<bool>();
    }
    RETURN_IF_ERROR(l.NoUnknownKeys());
  }
  if (r.Has("callbacks")) {
    if (!r.IsTable("callbacks")) return ConfigError("callbacks", "must be a table");
    TableReader cb(*r.Table("callbacks"), "callbacks");
    RETURN_IF_ERROR(LoadCallbacks(cb, c));
  }
  if (r.Has("ui")) {
    if (!r.IsTable("ui")) return ConfigError("ui", "must be a table");
    TableReader ur(*r.Table("ui"), "ui");
    for (auto [key, out] : {std::pair<const char*, bool*>{"enabled", &c.api.ui_enabled},
                            std::pair<const char*, bool*>{"open", &c.api.ui_open}}) {
      if (const toml::node* n = ur.Node(key)) {
        if (!n->is_boolean()) return ConfigError(ur.Key(key), "must be true or false");
        *out = *n->value<bool>();
      }
    }
    RETURN_IF_ERROR(ur.NoUnknownKeys());
  }
  if (r.Has("compat")) {
    if (!r.IsTable("compat")) return ConfigError("compat", "must be a table");
    TableReader cr(*r.Table("compat"), "compat");
    RETURN_IF_ERROR(cr.String("queue", c.compat.queue));
    RETURN_IF_ERROR(cr.NoUnknownKeys());
  }
  if (r.Has("queues")) {
    if (!r.IsTable("queues")) return ConfigError("queues", "must be a table of queue tables");
    const toml::table* queues = r.Table("queues");
    c.queues.clear();
    for (auto&& [name, node] : *queues) {
      std::string key = "queues." + std::string(name.str());
      if (!ValidQueueName(name.str())) {
        return ConfigError(key, "queue names use letters, digits, '-', '_' and '.' (1-64)");
      }
      if (!node.is_table()) return ConfigError(key, "must be a table");
      QueueConfig q;
      RETURN_IF_ERROR(LoadQueue(std::string(name.str()), *node.as_table(), q));
      c.queues.push_back(std::move(q));
    }
    if (c.queues.empty()) return ConfigError("queues", "declares no queue");
  }
  if (r.Has("compat")) {
    const auto& queues = c.queues.empty() ? DefaultQueues() : c.queues;
    if (std::none_of(queues.begin(), queues.end(),
                     [&](const QueueConfig& q) { return q.name == c.compat.queue; })) {
      return ConfigError("compat.queue", fmt::format("no queue named '{}'", c.compat.queue));
    }
  }
  if (r.Has("schedules")) {
    const toml::array* tables = r.Node("schedules")->as_array();
    if (!tables) {
      return ConfigError("schedules", "must be an array of tables ([[schedules]])");
    }
    const auto& queues = c.queues.empty() ? DefaultQueues() : c.queues;
    std::vector<ScheduleConfig> schedules;
    std::set<std::string> names;
    for (size_t i = 0; i < tables->size(); ++i) {
      const toml::table* t = (*tables)[i].as_table();
      if (!t) return ConfigError(fmt::format("schedules[{}]", i), "must be a table");
      ScheduleConfig s;
      RETURN_IF_ERROR(LoadSchedule(*t, i, queues, s));
      if (!names.insert(s.name).second) {
        return ConfigError(fmt::format("schedules[{}].name", i),
                           fmt::format("another schedule is named '{}'", s.name));
      }
      schedules.push_back(std::move(s));
    }
    c.schedules = std::move(schedules);
  }
  if (r.Has("api_keys") || r.Has("api_keys_file")) {
    std::vector<http::ApiKey> keys;  // both sources together, checked for duplicates
    if (r.Has("api_keys")) RETURN_IF_ERROR(LoadApiKeys(*r.Node("api_keys"), "api_keys", keys));
    std::string file;
    RETURN_IF_ERROR(r.String("api_keys_file", file));
    if (r.Has("api_keys_file")) {
      if (file.empty()) return ConfigError("api_keys_file", "must name a file");
      std::filesystem::path p(file);
      if (p.is_relative()) p = std::filesystem::path(path).parent_path() / p;
      RETURN_IF_ERROR(LoadApiKeysFile(p.string(), keys));
    }
    c.api_keys = std::move(keys);
  }
  return r.NoUnknownKeys();
}

}  // namespace

Status LoadConfigFile(const std::string& path, ServerConfig& c) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return ParseError(path, e);
  }
  return LoadConfigTable(root, path, c);
}

Status LoadConfigText(std::string_view text, std::string_view source, ServerConfig& c) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return ParseError(source, e);
  }
  return LoadConfigTable(root, source, c);
}

}  // namespace acceptd
