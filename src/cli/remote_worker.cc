#include "cli/remote_worker.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <iostream>
#include <random>
#include <thread>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "core/clock.h"

namespace acceptd::cli {

using client::LeaseClient;
using client::LeasedJob;
using SteadyClock = std::chrono::steady_clock;

namespace {

enum class CancelReason { kNone, kRequested, kStale, kTimeout, kShutdown };

std::string Seconds(Millis d) { return client::FormatSeconds(d); }

Millis Since(SteadyClock::time_point t) {
  return std::chrono::duration_cast<Millis>(SteadyClock::now() - t);
}

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

// One attempt of one job: the JobContext its handler sees, and what the
// heartbeat thread and the shutdown share with it. mu guards everything
// but `reason`, which handlers poll without a lock.
class RemoteWorker::JobRun final : public JobContext {
 public:
  JobRun(JobId id, int attempt, SteadyClock::time_point leased, Millis lease_duration)
      : lease_until(leased + lease_duration), id_(id), attempt_(attempt) {}

  const JobId& job_id() const override { return id_; }
  int attempt() const override { return attempt_; }
  bool cancelled() const override { return reason_.load() != CancelReason::kNone; }

  bool WaitFor(std::chrono::milliseconds d) override {
    std::unique_lock lock(mu);
    cv.wait_for(lock, d, [&] { return cancelled(); });
    return !cancelled();
  }

  void ReportProgress(int percent, std::string message) override {
    std::lock_guard lock(mu);
    progress = client::Progress{std::clamp(percent, 0, 100), std::move(message)};
    cv.notify_all();
  }

  // The first reason wins: a timeout after a cancel is still a cancel.
  void Cancel(CancelReason why) {
    std::lock_guard lock(mu);
    CancelLocked(why);
  }
  void CancelLocked(CancelReason why) {
    CancelReason none = CancelReason::kNone;
    reason_.compare_exchange_strong(none, why);
    cv.notify_all();
  }
  CancelReason reason() const { return reason_.load(); }

  std::mutex mu;
  std::condition_variable cv;  // progress, cancel, done
  std::optional<client::Progress> progress;
  bool done = false;                    // the handler returned: heartbeats stop
  SteadyClock::time_point lease_until;  // as last extended

 private:
  const JobId id_;
  const int attempt_;
  std::atomic<CancelReason> reason_{CancelReason::kNone};
};

RemoteWorker::RemoteWorker(std::shared_ptr<Handler> handler, RemoteWorkerOptions options)
    : handler_(std::move(handler)),
      options_(std::move(options)),
      jitter_state_(std::random_device{}()) {
  options_.concurrency = std::max(options_.concurrency, 1);
  options_.backoff_min = std::max(options_.backoff_min, Millis(1));
  options_.backoff_max = std::max(options_.backoff_max, options_.backoff_min);
}

RemoteWorker::~RemoteWorker() = default;

void RemoteWorker::Log(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
    return;
  }
  static std::mutex log_mu;
  const std::string text = FormatRfc3339(SystemClock::Instance().Now()) +
                           " acceptd worker: " + OneLine(std::string(line)) + "\n";
  std::lock_guard lock(log_mu);
  std::cerr << text << std::flush;
}

Millis RemoteWorker::Jitter(Millis d) {
  std::lock_guard lock(mu_);
  // +-20%, so that many workers cut off together do not come back together.
  jitter_state_ = jitter_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
  const double f = 0.8 + 0.4 * static_cast<double>(jitter_state_ >> 11) / 9007199254740992.0;
  return Millis(static_cast<int64_t>(static_cast<double>(d.count()) * f));
}

bool RemoteWorker::PauseUnlessStopping(Millis d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

void RemoteWorker::Stop() {
  std::lock_guard lock(mu_);
  if (stopping_) {
    cut_grace_ = true;
  } else {
    stopping_ = true;
    for (auto& poll : polls_) poll->Interrupt();
  }
  cv_.notify_all();
}

void RemoteWorker::Fatal(Error error) {
  std::lock_guard lock(mu_);
  if (!fatal_) fatal_ = std::move(error);
  if (!stopping_) {
    stopping_ = true;
    for (auto& poll : polls_) poll->Interrupt();
  }
  cv_.notify_all();
}

RemoteWorkerStats RemoteWorker::stats() const {
  return {leased_.load(), completed_.load(), failed_.load(), released_.load(), dropped_.load()};
}

Result<void> RemoteWorker::Run() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < options_.concurrency; ++i) {
      polls_.push_back(std::make_unique<LeaseClient>(options_.client));
      if (stopping_) polls_.back()->Interrupt();
    }
    loops_ = options_.concurrency;
  }
  Log(fmt::format("leasing from queue '{}' at {} with {} loop(s)", options_.queue,
                  options_.client.base_url, options_.concurrency));
  for (auto& poll : polls_) {
    threads.emplace_back([this, p = poll.get()] {
      Loop(*p);
      std::lock_guard lock(mu_);
      --loops_;
      cv_.notify_all();
    });
  }
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || loops_ == 0; });
    if (!running_.empty()) {
      Log(fmt::format("stopping: {} job(s) running, waiting up to {} s for them", running_.size(),
                      Seconds(options_.shutdown_grace)));
    }
    cv_.wait_for(lock, options_.shutdown_grace, [&] { return loops_ == 0 || cut_grace_; });
    cancel_running_ = true;
    if (!running_.empty()) {
      Log(fmt::format("stopping: cancelling {} job(s) still running; their leases are released",
                      running_.size()));
    }
    for (JobRun* run : running_) run->Cancel(CancelReason::kShutdown);
  }
  for (auto& t : threads) t.join();
  std::lock_guard lock(mu_);
  if (fatal_) return *fatal_;
  return {};
}

void RemoteWorker::Loop(LeaseClient& poll) {
  LeaseClient c(options_.client);  // complete/fail/release and heartbeats: never interrupted
  Millis backoff = options_.backoff_min;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto r = poll.Lease(options_.queue, options_.lease);
    if (!r) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      if (!client::IsRetryable(r.error())) {
        Log(fmt::format("cannot lease from queue '{}': {}", options_.queue, r.error().detail));
        Fatal(std::move(r).error());
        return;
      }
      const Millis pause = Jitter(backoff);
      Log(fmt::format("cannot lease from queue '{}': {}; retrying in {} s", options_.queue,
                      r.error().detail, Seconds(pause)));
      if (!PauseUnlessStopping(pause)) return;
      backoff = std::min(backoff * 2, options_.backoff_max);
      continue;
    }
    backoff = options_.backoff_min;
    if (!r->has_value()) continue;  // no job within `wait`
    LeasedJob job = std::move(**r);
    ++leased_;
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    if (stopping) {
      // Leased as the worker was told to stop: give it back untouched.
      auto rel = c.Release(job.lease_url);
      ++released_;
      Log(fmt::format("job {} attempt {}: leased while stopping; {}", job.job_id, job.attempt,
                      rel ? "released" : "release failed: " + rel.error().detail));
      return;
    }
    RunJob(c, std::move(job));
  }
}

void RemoteWorker::RunJob(LeaseClient& c, LeasedJob job) {
  const auto leased = SteadyClock::now();
  if (job.lease_duration <= Millis(0)) {
    // Not said, or "0" (whole seconds, rounded down: a 1 s lease can read 0):
    // assume the shortest lease, so heartbeats come often enough either way.
    job.lease_duration = options_.lease.lease.value_or(kAssumedLeaseDuration);
  }
  // ParseLeaseResponse checked the form (32 lowercase hex).
  const JobId id = JobId::Parse(job.job_id).value_or(JobId{});
  JobRun run(id, job.attempt, leased, job.lease_duration);
  {
    std::lock_guard lock(mu_);
    if (cancel_running_) run.Cancel(CancelReason::kShutdown);
    running_.insert(&run);
  }
  std::thread heartbeats([&] { Heartbeats(c, job, run); });
  HandlerOutcome outcome;
  try {
    outcome = handler_->Run(job.payload, job.content_type, run);
  } catch (const std::exception& e) {
    // Handlers return failures; one that throws is a bug, reported as a
    // retryable failure rather than a dead worker.
    outcome = HandlerFailure{fmt::format("the handler threw: {}", e.what()), true, "handler_error"};
  }
  {
    std::lock_guard lock(run.mu);
    run.done = true;
    run.cv.notify_all();
  }
  heartbeats.join();
  {
    std::lock_guard lock(mu_);
    running_.erase(&run);
  }
  Report(c, job, run, std::move(outcome), Since(leased));
}

void RemoteWorker::Heartbeats(LeaseClient& c, const LeasedJob& job, JobRun& run) {
  const auto start = SteadyClock::now();
  Millis interval = std::max(job.lease_duration / 3, Millis(50));
  auto next = start + interval;
  auto last_sent = start;
  std::optional<SteadyClock::time_point> deadline;
  if (job.timeout && *job.timeout > Millis(0)) deadline = start + *job.timeout;  // 0: none
  std::unique_lock lock(run.mu);
  while (!run.done) {
    auto wake = next;
    if (run.progress) wake = std::min(wake, last_sent + kProgressInterval);
    if (deadline) wake = std::min(wake, *deadline);
    run.cv.wait_until(lock, wake);
    if (run.done) break;
    const auto now = SteadyClock::now();
    if (deadline && now >= *deadline) {
      // The server does not extend the lease past the attempt's timeout:
      // stop the work now rather than when the lease runs out.
      deadline.reset();
      run.CancelLocked(CancelReason::kTimeout);
    }
    const bool due = now >= next || (run.progress && now >= last_sent + kProgressInterval);
    if (!due) continue;
    std::optional<client::Progress> progress = std::move(run.progress);
    run.progress.reset();
    lock.unlock();
    auto r = c.Heartbeat(job.lease_url, options_.lease.lease, progress);
    lock.lock();
    const auto answered = SteadyClock::now();
    last_sent = answered;
    if (r) {
      if (r->lease_duration) {
        run.lease_until = answered + *r->lease_duration;
        interval = std::max(*r->lease_duration / 3, Millis(50));
      } else {
        run.lease_until = answered + job.lease_duration;
      }
      next = answered + interval;
      if (r->cancel_requested) run.CancelLocked(CancelReason::kRequested);
      continue;
    }
    if (!client::IsRetryable(r.error())) {
      // 409: the lease is stale (expired and re-leased, job canceled,
      // finished or deleted); any other refusal is as final for this lease.
      Log(fmt::format("job {} attempt {}: heartbeat refused, stopping the attempt: {}", job.job_id,
                      job.attempt, r.error().detail));
      run.CancelLocked(CancelReason::kStale);
      return;
    }
    Log(fmt::format("job {} attempt {}: heartbeat failed (retrying): {}", job.job_id, job.attempt,
                    r.error().detail));
    if (progress && !run.progress) run.progress = std::move(progress);
    next = answered + std::min(kHeartbeatRetry, interval);
  }
}

template <typename F>
auto RemoteWorker::Retrying(JobRun& run, std::string_view what, F&& call) -> decltype(call()) {
  Millis backoff = options_.backoff_min;
  for (;;) {
    auto r = call();
    if (r || !client::IsRetryable(r.error())) return r;
    SteadyClock::time_point lease_until;
    {
      std::lock_guard lock(run.mu);
      lease_until = run.lease_until;
    }
    const Millis pause = Jitter(backoff);
    if (SteadyClock::now() + pause >= lease_until) return r;  // the server will hand it out again
    Log(fmt::format("job {} attempt {}: {} failed (retrying in {} s): {}", run.job_id().ToHex(),
                    run.attempt(), what, Seconds(pause), r.error().detail));
    std::this_thread::sleep_for(pause);
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

void RemoteWorker::Report(LeaseClient& c, const LeasedJob& job, JobRun& run, HandlerOutcome outcome,
                          Millis took) {
  const std::string head =
      fmt::format("job {} attempt {} ({} ms)", job.job_id, job.attempt, took.count());
  const CancelReason why = run.reason();
  auto unreported = [&](std::string_view what, const Error& e) {
    ++dropped_;
    Log(fmt::format("{}: {} not reported: {}", head, what, e.detail));
  };
  if (why == CancelReason::kStale) {
    ++dropped_;
    Log(fmt::format("{}: lease lost; outcome dropped", head));
    return;
  }
  auto release = [&](std::string_view because) {
    auto r = Retrying(run, "release", [&] { return c.Release(job.lease_url); });
    if (!r) return unreported("release", r.error());
    ++released_;
    Log(fmt::format("{}: {}; lease released (job {})", head, because, r->state));
  };
  auto fail = [&](const std::string& detail, bool retryable, std::string_view type,
                  std::optional<Millis> retry_after = std::nullopt) {
    auto r = Retrying(run, "fail",
                      [&] { return c.Fail(job.lease_url, detail, retryable, type, retry_after); });
    if (!r) return unreported("failure", r.error());
    ++failed_;
    Log(fmt::format("{}: failed ({}, {}): {}; job {}", head, type,
                    retryable ? "retryable" : "not retryable", detail, r->state));
  };
  if (why == CancelReason::kRequested) return release("canceled");
  if (auto* ok = std::get_if<HandlerSuccess>(&outcome)) {
    const size_t bytes = ok->body.size();
    auto r = Retrying(run, "complete",
                      [&] { return c.Complete(job.lease_url, ok->body, ok->content_type); });
    if (!r && r.error().code == ErrorCode::kPayloadTooLarge) {
      return fail(fmt::format("the result ({} bytes) is larger than the server accepts", bytes),
                  false, "result_too_large");
    }
    if (!r) return unreported("result", r.error());
    ++completed_;
    Log(fmt::format("{}: succeeded ({} bytes, {})", head, bytes, ok->content_type));
    return;
  }
  if (why == CancelReason::kShutdown) return release("stopped by shutdown");
  if (why == CancelReason::kTimeout) {
    return fail(fmt::format("attempt {} timed out after {} s", job.attempt,
                            Seconds(job.timeout.value_or(Millis(0)))),
                true, "timeout");
  }
  const auto& failure = std::get<HandlerFailure>(outcome);
  std::optional<Millis> retry_after;
  if (failure.retry_after) retry_after = Millis(*failure.retry_after);
  fail(failure.message, failure.retryable, failure.type, retry_after);
}

}  // namespace acceptd::cli
