// Fuzz target: the request headers the v1 API parses itself: `Prefer`
// (wait=N, api::PreferredWait), `Idempotency-Key` (api::ParseIdempotencyKey)
// and `Last-Event-ID` (api::ParseEventId). The input is the header's value,
// given to each parser.
//
// Invariants: a wait is never negative and is what its canonical spelling
// says; another preference in front of a Prefer value changes nothing; a
// key is 1..255 visible ASCII characters and its quoted form is the same
// key; an event id parsed, formatted and parsed again is the same id.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "api/event_id.h"
#include "api/request_options.h"
#include "fuzz_check.h"

using namespace acceptd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);

  const Millis wait = api::PreferredWait(value);
  FUZZ_CHECK(wait >= 0);
  if (wait > 0) {
    FUZZ_CHECK(api::PreferredWait(fmt::format("wait={}.{:03}", wait / 1000, wait % 1000)) == wait);
  }
  FUZZ_CHECK(api::PreferredWait("respond-async, " + std::string(value)) == wait);
  // ?wait= wins over Prefer; without it, Prefer is the answer.
  FUZZ_CHECK(api::RequestedWait("/v1/jobs/x", value) == wait);

  if (auto key = api::ParseIdempotencyKey(value)) {
    FUZZ_CHECK(!key->empty() && key->size() <= api::kMaxIdempotencyKey);
    for (char c : *key) FUZZ_CHECK(c >= 0x21 && c <= 0x7e);
    FUZZ_CHECK(api::ParseIdempotencyKey("\"" + *key + "\"") == key);
  }

  if (auto id = api::ParseEventId(value)) {
    FUZZ_CHECK(id->attempts >= 0 && id->millis >= 0);
    FUZZ_CHECK(api::ParseEventId(api::FormatEventId(*id)) == id);
  }
  return 0;
}
