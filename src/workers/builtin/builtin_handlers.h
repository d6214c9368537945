// The built-in in-process handlers.
//
//   greeting  {"name": N}  -> {"result": "Hello N...!"}   (the original demo)
//   echo      any bytes    -> the same bytes, same content type
//   sleep     {"ms": N}    -> {"slept_ms": N}; stops early when cancelled or
//                             timed out, reporting progress while it sleeps
//   fail      {"message": M, "retryable": true} -> always fails with M
//
// Malformed payloads fail without retry (another attempt cannot fix them).
#pragma once

#include "core/handler.h"

namespace acceptd {

class GreetingHandler final : public Handler {
 public:
  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override;
};

class EchoHandler final : public Handler {
 public:
  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override;
};

class SleepHandler final : public Handler {
 public:
  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override;
};

class FailHandler final : public Handler {
 public:
  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override;
};

}  // namespace acceptd
