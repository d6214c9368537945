// Handler: the public C++ API for code that runs jobs inside acceptd.
//
// To add a built-in handler: implement Handler, then register a factory under
// a name in src/workers/registry.cc; a queue selects it with `handler = "name"`.
//
// Run() is called on a worker thread, once per attempt, with the job's payload
// bytes and a JobContext. It returns a result body (stored byte for byte with
// its content type) or a failure saying whether another attempt may help.
// A handler must be thread-safe: one instance serves all attempts of a queue
// concurrently. Long-running handlers should wait with ctx.WaitFor() (or poll
// ctx.cancelled()) so that cancellation and per-attempt timeouts stop them
// early; a handler that ignores them keeps its worker slot until it returns.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/clock.h"
#include "core/job.h"

namespace acceptd {

class JobContext {
 public:
  virtual ~JobContext() = default;
  virtual const JobId& job_id() const = 0;
  virtual int attempt() const = 0;  // 1 for the first attempt
  // True once the job was canceled or its attempt timed out.
  virtual bool cancelled() const = 0;
  // Sleeps up to `d`; returns false at once if the job is (or becomes) cancelled.
  virtual bool WaitFor(std::chrono::milliseconds d) = 0;
  // Records progress (percent is clamped to 0..100); cheap, coalesced by the engine.
  virtual void ReportProgress(int percent, std::string message) = 0;
};

struct HandlerSuccess {
  std::string body;
  std::string content_type = "application/json";
};

struct HandlerFailure {
  // Not an aggregate, so that HandlerFailure{message, retryable, type} keeps
  // compiling (without missing-field warnings) as fields are added.
  explicit HandlerFailure(std::string message = {}, bool retryable = true,
                          std::string type = "handler_error",
                          std::optional<Millis> retry_after = {})
      : message(std::move(message)),
        retryable(retryable),
        type(std::move(type)),
        retry_after(retry_after) {}

  std::string message;
  bool retryable = true;
  std::string type = "handler_error";
  // Retryable only: the delay before the next attempt, instead of the
  // queue's backoff (a backend's Retry-After), capped at the queue's
  // backoff.max. nullopt: the backoff decides.
  std::optional<Millis> retry_after;
};

using HandlerOutcome = std::variant<HandlerSuccess, HandlerFailure>;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                             JobContext& ctx) = 0;
};

}  // namespace acceptd
