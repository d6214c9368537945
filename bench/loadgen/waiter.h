// How a client learns that a job finished. By default (--wait longpoll:30)
// it long-polls: `GET /v1/jobs/{id}?wait=30` on the job's keep-alive
// connection, repeated while the answer is 202 (the server holds each request
// until the job is terminal or the wait ran out). `--wait poll` instead polls
// GET /v1/jobs/{id} back to back, for comparison.
#pragma once

#include <memory>
#include <string>

#include "loadgen/client.h"

namespace bench {

struct WaitOutcome {
  int status = 0;    // the last status seen: 302 succeeded, 200 failed/canceled, 0 timed out
  int requests = 0;  // status requests sent
  bool succeeded() const { return status == 302; }
};

class CompletionWaiter {
 public:
  virtual ~CompletionWaiter() = default;
  // For the output: how completion was observed.
  virtual std::string Describe() const = 0;
  // Returns when the job left queued/running (any status but 202) or at `deadline`.
  virtual asio::awaitable<WaitOutcome> Wait(Conn& conn, const std::string& id,
                                            Clock::time_point deadline) = 0;
};

// "poll" (tight polling) or "longpoll:SECONDS".
std::unique_ptr<CompletionWaiter> MakeWaiter(const std::string& spec, const Target& target);

}  // namespace bench
