// Helpers for tests that run a real Engine: handlers made of lambdas, a
// recorder of the engine's Observer callbacks that tests wait on (with a
// deadline, never a sleep), and synchronous wrappers of the async API.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/handler.h"
#include "engine/engine.h"
#include "store/testing/store_test_util.h"

namespace acceptd::engine_testing {

using namespace std::chrono_literals;
using store_testing::MustFailed;

// How long a test waits for the engine before it gives up (a failure, not a hang).
inline constexpr std::chrono::milliseconds kWait = 15s;

class FnHandler final : public Handler {
 public:
  using Fn = std::function<HandlerOutcome(std::string_view payload, std::string_view content_type,
                                          JobContext& ctx)>;
  explicit FnHandler(Fn fn) : fn_(std::move(fn)) {}
  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override {
    return fn_(payload, content_type, ctx);
  }

 private:
  Fn fn_;
};

inline std::shared_ptr<Handler> MakeHandler(FnHandler::Fn fn) {
  return std::make_shared<FnHandler>(std::move(fn));
}

// A one-shot event for test code and handlers to meet at.
class Event {
 public:
  void Notify() {
    {
      std::lock_guard lock(mu_);
      set_ = true;
    }
    cv_.notify_all();
  }
  bool Wait(std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return set_; });
  }
  bool IsSet() {
    std::lock_guard lock(mu_);
    return set_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// Records every job the Observer reports; tests wait for conditions on it.
// Must outlive the engine it observes.
class JobRecorder {
 public:
  Engine::Observer Observer() {
    return [this](const Job& job) {
      {
        std::lock_guard lock(mu_);
        history_[job.id].push_back(job);
      }
      cv_.notify_all();
    };
  }

  // The first observed version of the job for which `pred` holds, waiting for it.
  std::optional<Job> WaitFor(const JobId& id, const std::function<bool(const Job&)>& pred,
                             std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mu_);
    std::optional<Job> found;
    cv_.wait_for(lock, timeout, [&] {
      auto it = history_.find(id);
      if (it == history_.end()) return false;
      for (const Job& j : it->second) {
        if (pred(j)) {
          found = j;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::optional<Job> WaitForState(const JobId& id, JobState state,
                                  std::chrono::milliseconds timeout = kWait) {
    return WaitFor(
        id, [state](const Job& j) { return j.state == state; }, timeout);
  }
  std::optional<Job> WaitTerminal(const JobId& id, std::chrono::milliseconds timeout = kWait) {
    return WaitFor(
        id, [](const Job& j) { return IsTerminal(j.state); }, timeout);
  }

  std::vector<Job> History(const JobId& id) {
    std::lock_guard lock(mu_);
    auto it = history_.find(id);
    return it == history_.end() ? std::vector<Job>{} : it->second;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<JobId, std::vector<Job>, JobIdHash> history_;
};

// Calls an async engine method and waits (with a deadline) for its callback.
template <typename T, typename Start>
Result<T> Await(Start start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kWait) != std::future_status::ready) {
    throw MustFailed("the engine did not answer in time");
  }
  return future.get();
}

inline Result<Job> SubmitSync(Engine& engine, SubmitRequest req) {
  return Await<Job>([&](Engine::Callback<Job> done) { engine.Submit(std::move(req), done); });
}
inline Result<CancelOutcome> CancelSync(Engine& engine, const JobId& id) {
  return Await<CancelOutcome>([&](auto done) { engine.Cancel(id, done); });
}
inline Result<CancelOutcome> DeleteSync(Engine& engine, const JobId& id) {
  return Await<CancelOutcome>([&](auto done) { engine.Delete(id, done); });
}

inline SubmitRequest Request(std::string queue, std::string payload = "{}") {
  SubmitRequest r;
  r.queue = std::move(queue);
  r.payload = std::move(payload);
  r.content_type = "application/json";
  return r;
}

// A queue with small, test-friendly settings.
inline QueueSpec Queue(std::string name, std::shared_ptr<Handler> handler, int concurrency = 2) {
  QueueSpec s;
  s.config.name = std::move(name);
  s.config.handler = "test";
  s.config.concurrency = concurrency;
  s.config.max_depth = 10'000;
  s.config.max_attempts = 3;
  s.config.timeout = 10'000;
  s.config.retention = 3'600'000;
  s.config.backoff = BackoffPolicy{1, 2, 0.0};
  s.handler = std::move(handler);
  return s;
}

inline EngineOptions Options() {
  EngineOptions o;
  o.node_id = "node-test";
  o.lease_duration = 30'000;
  o.shutdown_grace = 2'000;
  o.promote_interval = 5;
  o.purge_interval = 60'000;
  return o;
}

}  // namespace acceptd::engine_testing
