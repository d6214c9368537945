// Fuzz target: the TOML config loader (cli/server_config.h, LoadConfigText).
// The input is a config file.
//
// Invariants: no exception escapes (toml++ reports parse errors by
// throwing; the loader must turn every one into a Status); loading is
// deterministic; a config that loads holds only values within the ranges
// the loader promises.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "cli/server_config.h"
#include "fuzz_check.h"

namespace {

using namespace acceptd;

void CheckBackoff(const BackoffPolicy& b) {
  FUZZ_CHECK(b.base >= 0 && b.max >= b.base);
  FUZZ_CHECK(b.jitter >= 0 && b.jitter <= 1);
}

void CheckLoaded(const ServerConfig& c) {
  FUZZ_CHECK(ParseListen(c.listen).ok());
  FUZZ_CHECK(c.threads >= 0 && c.threads <= 256);
  FUZZ_CHECK(c.limits.body_limit >= 1 && c.limits.body_limit <= (size_t{512} << 20));
  FUZZ_CHECK(c.limits.header_limit >= 1024 && c.limits.header_limit <= (1 << 20));
  FUZZ_CHECK(c.limits.request_timeout > 0 && c.limits.idle_timeout > 0);
  FUZZ_CHECK(c.engine.lease_duration >= 500);
  FUZZ_CHECK(c.engine.retry_after > 0 && c.engine.retry_after_max >= c.engine.retry_after);
  FUZZ_CHECK(c.api.max_wait >= 0 && c.api.events_heartbeat > 0);
  FUZZ_CHECK(c.api.max_event_streams >= 0);
  FUZZ_CHECK(c.log.max_files >= 1 && c.log.max_size >= 4096);
  FUZZ_CHECK(c.engine.callbacks.max_attempts >= 1 && c.engine.callbacks.concurrency >= 1);
  CheckBackoff(c.engine.callbacks.backoff);
  std::set<std::string> names;
  for (const QueueConfig& q : c.queues) {
    FUZZ_CHECK(!q.name.empty() && q.name.size() <= 64);
    FUZZ_CHECK(names.insert(q.name).second);
    FUZZ_CHECK(!q.handler.empty());
    FUZZ_CHECK(q.concurrency >= 1 && q.concurrency <= 4096);
    FUZZ_CHECK(q.max_depth >= 1 && q.max_attempts >= 1 && q.max_attempts <= 1000);
    FUZZ_CHECK(q.timeout > 0 && q.retention >= 0);
    CheckBackoff(q.backoff);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ServerConfig first, second;
  const Status a = LoadConfigText(text, "fuzz.toml", first);
  const Status b = LoadConfigText(text, "fuzz.toml", second);
  FUZZ_CHECK(a.ok() == b.ok());
  if (!a.ok()) {
    FUZZ_CHECK(a.error().code == ErrorCode::kInvalidArgument);
    FUZZ_CHECK(a.error().detail == b.error().detail);
    return 0;
  }
  CheckLoaded(first);
  return 0;
}
