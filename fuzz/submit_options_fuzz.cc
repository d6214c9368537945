// Fuzz target: the query string of a submit (POST /v1/queues/{queue}/jobs?...)
// -> api::QueryParams -> api::ParseSubmitOptions (api/request_options.h).
//
// The input is the query string. Invariants: every option read is within its
// documented range; the options re-encoded as a query string parse back to
// the same values; the decoded parameters, percent-encoded again, decode to
// themselves; with callbacks disabled the outcome differs only by refusing
// `callback`; a callback kept is exactly what ParseCallbackUrl makes of it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "api/request_options.h"
#include "fuzz_check.h"

namespace {

using namespace acceptd;
using api::SubmitOptions;

std::string Seconds(Millis ms) { return fmt::format("{}.{:03}", ms / 1000, ms % 1000); }

bool SameTarget(const webhooks::CallbackTarget& a, const webhooks::CallbackTarget& b) {
  return a.tls == b.tls && a.host == b.host && a.port == b.port && a.target == b.target &&
         a.host_header == b.host_header;
}

bool SameOptions(const SubmitOptions& a, const SubmitOptions& b) {
  return a.max_attempts == b.max_attempts && a.timeout == b.timeout && a.delay == b.delay &&
         a.priority == b.priority && a.callback_url == b.callback_url &&
         SameTarget(a.callback, b.callback);
}

std::string Encode(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

void CheckRanges(const SubmitOptions& o) {
  if (o.max_attempts) FUZZ_CHECK(*o.max_attempts >= 1 && *o.max_attempts <= api::kMaxAttemptsLimit);
  if (o.timeout) FUZZ_CHECK(*o.timeout > 0 && *o.timeout <= api::kMaxTimeout);
  if (o.delay) FUZZ_CHECK(*o.delay >= 0 && *o.delay <= api::kMaxDelay);
  if (o.priority) FUZZ_CHECK(*o.priority >= -api::kMaxPriority && *o.priority <= api::kMaxPriority);
}

// The options written back as a query string.
std::string Requery(const SubmitOptions& o) {
  std::string q = "/v1/queues/q/jobs?";
  if (o.max_attempts) q += fmt::format("max_attempts={}&", *o.max_attempts);
  if (o.timeout) q += "timeout=" + Seconds(*o.timeout) + "&";
  if (o.delay) q += "delay=" + Seconds(*o.delay) + "&";
  if (o.priority) q += fmt::format("priority={}&", *o.priority);
  if (!o.callback_url.empty()) q += "callback=" + Encode(o.callback_url) + "&";
  q.pop_back();
  return q;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  const std::string target = "/v1/queues/q/jobs?" + std::string(query);
  const auto params = api::QueryParams(target);
  if (!params) return 0;

  // Decoding is the inverse of encoding.
  std::string reencoded = "/x?";
  for (const auto& [k, v] : *params) {
    if (reencoded.size() > 3) reencoded += '&';
    reencoded += Encode(k) + "=" + Encode(v);
  }
  const auto params2 = api::QueryParams(reencoded);
  FUZZ_CHECK(params2 && *params2 == *params);

  SubmitOptions with, without;
  const auto bad_with = api::ParseSubmitOptions(*params, true, with);
  const auto bad_without = api::ParseSubmitOptions(*params, false, without);
  CheckRanges(with);
  CheckRanges(without);
  FUZZ_CHECK(without.callback_url.empty());
  if (bad_with) {
    FUZZ_CHECK(!bad_with->why.empty());
    FUZZ_CHECK(bad_without.has_value());  // refusing callbacks accepts nothing more
  } else if (bad_without) {
    FUZZ_CHECK(bad_without->option == "callback");
  } else {
    FUZZ_CHECK(SameOptions(with, without));
  }
  if (!bad_with) {
    if (!with.callback_url.empty()) {
      auto target2 = webhooks::ParseCallbackUrl(with.callback_url);
      FUZZ_CHECK(target2 && SameTarget(*target2, with.callback));
    }
    // What was accepted, written back canonically, means the same.
    const std::string again = Requery(with);
    const auto params3 = api::QueryParams(again);
    FUZZ_CHECK(params3.has_value());
    SubmitOptions reparsed;
    FUZZ_CHECK(!api::ParseSubmitOptions(*params3, true, reparsed));
    FUZZ_CHECK(SameOptions(with, reparsed));
  }
  // The number parsers agree with their canonical spellings.
  for (const auto& [k, v] : *params) {
    if (auto i = api::ParseInt(v)) FUZZ_CHECK(api::ParseInt(std::to_string(*i)) == i);
    if (auto s = ParseSeconds(v)) FUZZ_CHECK(ParseSeconds(Seconds(*s)) == s);
  }
  return 0;
}
