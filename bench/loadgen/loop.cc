// loop and latency: the whole submit -> run -> completed loop of a job.
//
// loop:    --connections closed loops; each submits a job, waits until it
//          succeeded (see waiter.h), then submits the next. The completion
//          rate is the loop's maximum throughput for that many clients.
//          With --lease-workers N, N external workers run in the same
//          process: each long-polls POST /v1/queues/{--lease-queue}/leases
//          (?wait=1) on its own keep-alive connection and completes each job
//          at once with its payload (a no-op job), so the loop measures
//          acceptd's lease protocol (docs/workers.md) instead of an
//          in-process handler.
// latency: an open loop: jobs start on a fixed schedule (--rate per second),
//          each on a free keep-alive connection from a pool. Latency runs from
//          the job's scheduled start (so a stalled client or server cannot hide
//          queueing: no coordinated omission) to the status response that
//          says it succeeded.
// Both take --wait-target HOST:PORT: jobs are then submitted to --target and
// waited for on another node (its own keep-alive connections), which
// measures how fast a completion on one node wakes a waiter on another.
#include <cmath>
#include <deque>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "loadgen/client.h"
#include "loadgen/modes.h"
#include "loadgen/waiter.h"

namespace bench {
namespace {

namespace json = boost::json;

constexpr auto kJobDeadline = std::chrono::seconds(60);

struct JobTimes {
  Clock::time_point sent, accepted, done;
  int status_requests = 0;
};

// Submits one job and waits for it; throws on a transport error, returns
// false (with `error` set) on an unexpected status.
// `wait_conn`: where to wait (another node), or the submit's own connection.
asio::awaitable<bool> RunOneJob(Conn& conn, Conn* wait_conn, const std::string& submit,
                                CompletionWaiter& waiter, JobTimes& t, std::string& error) {
  t.sent = Clock::now();
  Response res = co_await conn.RoundTrip(submit);
  t.accepted = Clock::now();
  std::string id;
  if (res.result_int() == 202) id = IdFromLocation(res[http::field::location]);
  if (id.empty()) {
    error = "submit: status " + std::to_string(res.result_int()) + ": " + res.body();
    co_return false;
  }
  Conn& waiting = wait_conn ? *wait_conn : conn;
  WaitOutcome w = co_await waiter.Wait(waiting, id, t.sent + kJobDeadline);
  t.done = Clock::now();
  t.status_requests = w.requests;
  if (!w.succeeded()) {
    error = "job " + id + " ended with status " + std::to_string(w.status) +
            (w.status == 0 ? " (not done in 60 s)" : "");
    co_return false;
  }
  co_return true;
}

struct Common {
  Target target;
  std::optional<Target> wait_target;  // --wait-target: wait on another node
  std::string submit;
  std::unique_ptr<CompletionWaiter> waiter;
  double duration, warmup;
  std::string out, figure;
};

Common ReadCommon(const Args& args, const char* default_figure) {
  Common c;
  c.target = ParseTarget(args.Required("target"));
  const std::string path = args.Str("path", "/v1/queues/echo/jobs");
  c.submit = PostRequest(c.target, path, "application/json",
                         JsonPayload(static_cast<size_t>(args.Int("body-bytes", 100))));
  if (const std::string w = args.Str("wait-target", ""); !w.empty()) c.wait_target = ParseTarget(w);
  c.waiter = MakeWaiter(args.Str("wait", "longpoll:30"), c.wait_target.value_or(c.target));
  c.duration = args.Double("duration", 10);
  c.warmup = args.Double("warmup", 1);
  c.out = args.Str("out");
  c.figure = args.Str("figure", default_figure);
  return c;
}

Clock::duration FromSeconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Milliseconds for the JSON output; null when there were no samples.
json::value Ms(double us) {
  if (std::isnan(us)) return nullptr;
  return us / 1000.0;
}

// Keep-alive connections handed to jobs; grows up to `max`, then jobs wait.
//
// An idle connection is closed instead of reused once it nears the server's
// deadline for it, as HTTP clients do: a request written to a connection the
// server is closing at that moment fails with "end of stream". A used
// connection may idle for kMaxIdle (acceptd's idle_timeout: 60 s); one that
// has not carried a request yet (opened before the clock starts, or in a
// burst) only kMaxIdleUnused, since the server counts its header_timeout
// (10 s) from the accept. Latency runs failed on those: the pool's least used
// connections, opened before the run, were first needed 10-20 s into it.
class ConnPool {
 public:
  static constexpr std::chrono::seconds kMaxIdle{20};
  static constexpr std::chrono::seconds kMaxIdleUnused{5};

  ConnPool(asio::any_io_executor ex, tcp::endpoint ep, size_t max)
      : ex_(std::move(ex)), ep_(ep), max_(max) {}

  asio::awaitable<std::unique_ptr<Conn>> Acquire() {
    while (!idle_.empty()) {
      Idle idle = std::move(idle_.back());
      idle_.pop_back();
      const auto max_idle = idle.conn->used() ? kMaxIdle : kMaxIdleUnused;
      if (Clock::now() - idle.since < max_idle) co_return std::move(idle.conn);
      --total_;  // too old to trust: closed when `idle` goes
    }
    if (total_ >= max_) {
      ++waits_;
      Waiter w{asio::steady_timer(ex_, Clock::time_point::max()), nullptr};
      waiters_.push_back(&w);
      co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (w.handed) co_return std::move(w.handed);
      // Handed nothing: a connection was dropped, so we may open one.
    }
    ++total_;
    peak_ = std::max(peak_, total_);
    auto c = std::make_unique<Conn>(ex_);
    try {
      co_await c->Connect(ep_);
    } catch (...) {
      --total_;
      throw;
    }
    co_return c;
  }

  // A broken connection is dropped; a healthy one goes to a waiting job first.
  void Release(std::unique_ptr<Conn> c) {
    if (c && !c->open()) c.reset();
    if (!c) --total_;
    if (!waiters_.empty()) {
      Waiter* w = waiters_.front();
      waiters_.pop_front();
      w->handed = std::move(c);  // null: the waiter opens a new connection
      w->timer.cancel();
      return;
    }
    if (c) idle_.push_back(Idle{std::move(c), Clock::now()});
  }

  size_t peak() const { return peak_; }
  int64_t waits() const { return waits_; }

 private:
  struct Waiter {
    asio::steady_timer timer;
    std::unique_ptr<Conn> handed;
  };
  struct Idle {
    std::unique_ptr<Conn> conn;
    Clock::time_point since;  // released then
  };
  asio::any_io_executor ex_;
  tcp::endpoint ep_;
  size_t max_;
  size_t total_ = 0, peak_ = 0;
  int64_t waits_ = 0;
  std::vector<Idle> idle_;  // the most recently released last
  std::deque<Waiter*> waiters_;
};

}  // namespace

int RunLoop(const Args& args) {
  Common c = ReadCommon(args, "loop");
  const int64_t connections = std::max<int64_t>(1, args.Int("connections", 64));
  const int64_t lease_workers = std::max<int64_t>(0, args.Int("lease-workers", 0));
  const std::string lease_queue = args.Str("lease-queue", "external");
  const bool latency_figures = args.Int("latency-figures", 0) != 0;
  args.CheckAllUsed();

  asio::io_context ctx{1};
  const auto start = Clock::now();
  const auto window_start = start + FromSeconds(c.warmup);
  const auto end = window_start + FromSeconds(c.duration);
  int64_t completed = 0, errors = 0, status_requests = 0, jobs_in_window = 0;
  Samples latency;
  std::string first_error;

  int64_t clients_running = connections;
  auto worker = [&]() -> asio::awaitable<void> {
    Conn conn(co_await asio::this_coro::executor);
    std::optional<Conn> wait_conn;
    try {
      co_await conn.Connect(c.target.endpoint);
      if (c.wait_target) {
        wait_conn.emplace(co_await asio::this_coro::executor);
        co_await wait_conn->Connect(c.wait_target->endpoint);
      }
      while (Clock::now() < end) {
        JobTimes t;
        std::string error;
        Conn* waiting = wait_conn ? &*wait_conn : nullptr;
        const bool ok = co_await RunOneJob(conn, waiting, c.submit, *c.waiter, t, error);
        const bool in_window = t.done >= window_start && t.done < end;
        if (!ok) {
          ++errors;
          if (first_error.empty()) first_error = error;
          continue;
        }
        if (in_window) {
          ++completed;
          ++jobs_in_window;
          status_requests += t.status_requests;
          latency.Add(std::chrono::duration<double, std::micro>(t.done - t.sent).count());
        }
      }
    } catch (const std::exception& e) {
      ++errors;
      if (first_error.empty()) first_error = e.what();
    }
    --clients_running;
  };
  for (int64_t i = 0; i < connections; ++i) asio::co_spawn(ctx, worker(), asio::detached);

  int64_t leases = 0, lease_errors = 0;
  auto lease_worker = [&]() -> asio::awaitable<void> {
    Conn conn(co_await asio::this_coro::executor);
    const std::string lease =
        PostRequest(c.target, "/v1/queues/" + lease_queue + "/leases?wait=1", "text/plain", "");
    try {
      co_await conn.Connect(c.target.endpoint);
      // Until the last client saw its last job done: the jobs submitted just
      // before the end need workers too.
      while (clients_running > 0) {
        Response res = co_await conn.RoundTrip(lease);
        if (res.result_int() == 204) continue;
        std::string error;
        if (res.result_int() == 200) {
          const std::string complete =
              PostRequest(c.target, std::string(res[http::field::location]) + "/complete",
                          res[http::field::content_type], res.body());
          Response done = co_await conn.RoundTrip(complete);
          if (done.result_int() == 200) {
            ++leases;
            continue;
          }
          error = "complete: status " + std::to_string(done.result_int()) + ": " + done.body();
        } else {
          error = "lease: status " + std::to_string(res.result_int()) + ": " + res.body();
        }
        ++lease_errors;
        if (first_error.empty()) first_error = error;
        asio::steady_timer pause(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::use_awaitable);
      }
    } catch (const std::exception& e) {
      ++lease_errors;
      if (first_error.empty()) first_error = e.what();
    }
  };
  for (int64_t i = 0; i < lease_workers; ++i) asio::co_spawn(ctx, lease_worker(), asio::detached);
  ctx.run();
  errors += lease_errors;

  json::object line{
      {"figure", c.figure + "_jobs_per_s"},
      {"value", static_cast<double>(completed) / c.duration},
      {"completed", completed},
      {"errors", errors},
      {"seconds", c.duration},
      {"connections", connections},
      {"lease_workers", lease_workers},
      {"leases_completed", leases},
      {"wait", c.waiter->Describe()},
      {"status_requests_per_job",
       jobs_in_window ? static_cast<double>(status_requests) / static_cast<double>(jobs_in_window)
                      : 0.0},
      {"closed_loop_latency_ms", json::object{{"p50", Ms(latency.Percentile(50))},
                                              {"p99", Ms(latency.Percentile(99))},
                                              {"p99.9", Ms(latency.Percentile(99.9))}}}};
  if (!first_error.empty()) line["first_error"] = first_error;
  EmitLine(c.out, json::serialize(line));
  // --latency-figures 1: each job's submit -> seen-succeeded time as
  // figures of their own too (FIGURE_p50_ms, FIGURE_p99_ms).
  const std::pair<const char*, double> points[] = {{"_p50_ms", 50}, {"_p99_ms", 99}};
  for (const auto& [suffix, p] : std::span(points).first(latency_figures ? 2 : 0)) {
    EmitLine(c.out, json::serialize(json::object{{"figure", c.figure + suffix},
                                                 {"value", Ms(latency.Percentile(p))}}));
  }
  if (errors > 0) std::cerr << "loop: " << errors << " jobs failed; first: " << first_error << "\n";
  return errors > 0 ? 3 : 0;
}

int RunLatency(const Args& args) {
  Common c = ReadCommon(args, "e2e");
  const double rate = args.Double("rate", 100);
  const int64_t prewarm = std::max<int64_t>(0, args.Int("connections", 64));
  const int64_t max_connections = std::max<int64_t>(1, args.Int("max-connections", 2048));
  // --slow-out FILE: one line per measured job slower than --slow-ms, with
  // wall-clock times, to match against the server's own log of that moment.
  const std::string slow_out = args.Str("slow-out", "");
  const double slow_ms = args.Double("slow-ms", 20);
  args.CheckAllUsed();
  if (rate <= 0) throw std::invalid_argument("--rate must be positive");
  std::ofstream slow_file;
  if (!slow_out.empty()) {
    slow_file.open(slow_out, std::ios::app);
    if (!slow_file) throw std::runtime_error("cannot write " + slow_out);
  }
  // steady_clock -> wall clock, for the slow-job lines.
  const auto wall_offset = std::chrono::system_clock::now().time_since_epoch() -
                           std::chrono::duration_cast<std::chrono::system_clock::duration>(
                               Clock::now().time_since_epoch());
  auto wall_seconds = [&](Clock::time_point t) {
    return std::chrono::duration<double>(
               std::chrono::duration_cast<std::chrono::system_clock::duration>(
                   t.time_since_epoch()) +
               wall_offset)
        .count();
  };
  int64_t slow_jobs = 0;

  asio::io_context ctx{1};
  ConnPool pool(ctx.get_executor(), c.target.endpoint, static_cast<size_t>(max_connections));
  // Connections to the --wait-target node, if any.
  ConnPool wait_pool(ctx.get_executor(), c.wait_target.value_or(c.target).endpoint,
                     static_cast<size_t>(max_connections));
  Samples from_schedule, from_send, accept;
  int64_t errors = 0, in_flight = 0, scheduled_in_window = 0, status_requests = 0;
  double max_lag_us = 0;
  std::string first_error;
  Clock::time_point window_start, end;

  auto job = [&](Clock::time_point scheduled) -> asio::awaitable<void> {
    const bool in_window = scheduled >= window_start;
    try {
      auto conn = co_await pool.Acquire();
      std::unique_ptr<Conn> wait_conn;
      if (c.wait_target) wait_conn = co_await wait_pool.Acquire();
      JobTimes t;
      std::string error;
      bool ok = false;
      try {
        ok = co_await RunOneJob(*conn, wait_conn.get(), c.submit, *c.waiter, t, error);
      } catch (...) {
        conn->Close();
        pool.Release(std::move(conn));
        if (wait_conn) {
          wait_conn->Close();
          wait_pool.Release(std::move(wait_conn));
        }
        throw;
      }
      pool.Release(std::move(conn));
      if (wait_conn) wait_pool.Release(std::move(wait_conn));
      if (!ok) {
        ++errors;
        if (first_error.empty()) first_error = error;
      } else if (in_window) {
        using us = std::chrono::duration<double, std::micro>;
        from_schedule.Add(us(t.done - scheduled).count());
        from_send.Add(us(t.done - t.sent).count());
        accept.Add(us(t.accepted - t.sent).count());
        max_lag_us = std::max(max_lag_us, us(t.sent - scheduled).count());
        status_requests += t.status_requests;
        const double total_ms = us(t.done - scheduled).count() / 1000;
        if (total_ms >= slow_ms) {
          ++slow_jobs;
          if (slow_file) {
            slow_file << fmt::format(
                "{:.6f} total_ms={:.3f} send_lag_ms={:.3f} submit_202_ms={:.3f} "
                "wait_ms={:.3f} status_requests={}\n",
                wall_seconds(scheduled), total_ms, us(t.sent - scheduled).count() / 1000,
                us(t.accepted - t.sent).count() / 1000, us(t.done - t.accepted).count() / 1000,
                t.status_requests);
          }
        }
      }
    } catch (const std::exception& e) {
      ++errors;
      if (first_error.empty()) first_error = e.what();
    }
    --in_flight;
  };

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // Open the usual number of connections before the clock starts.
        std::vector<std::unique_ptr<Conn>> warm;
        for (int64_t i = 0; i < prewarm; ++i) warm.push_back(co_await pool.Acquire());
        for (auto& conn : warm) pool.Release(std::move(conn));

        const auto start = Clock::now() + std::chrono::milliseconds(50);
        window_start = start + FromSeconds(c.warmup);
        end = window_start + FromSeconds(c.duration);
        const auto interval = FromSeconds(1.0 / rate);
        asio::steady_timer timer(ctx);
        for (int64_t i = 0;; ++i) {
          const auto at = start + interval * i;
          if (at >= end) break;
          timer.expires_at(at);
          co_await timer.async_wait(asio::use_awaitable);
          ++in_flight;
          if (at >= window_start) ++scheduled_in_window;
          asio::co_spawn(ctx, job(at), asio::detached);
        }
        // Let the last jobs finish (each gives up after kJobDeadline).
        while (in_flight > 0) {
          timer.expires_after(std::chrono::milliseconds(5));
          co_await timer.async_wait(asio::use_awaitable);
        }
      },
      asio::detached);
  ctx.run();

  const auto done = static_cast<int64_t>(from_schedule.size());
  json::object detail{
      {"target_rate", rate},
      {"achieved_rate", static_cast<double>(done) / c.duration},
      {"jobs", done},
      {"scheduled", scheduled_in_window},
      {"errors", errors},
      {"seconds", c.duration},
      {"wait", c.waiter->Describe()},
      {"status_requests_per_job",
       done ? static_cast<double>(status_requests) / static_cast<double>(done) : 0.0},
      {"connections_peak", pool.peak()},
      {"pool_waits", pool.waits()},
      {"max_send_lag_ms", max_lag_us / 1000.0},
      {"slow_ms", slow_ms},
      {"slow_jobs", slow_jobs},
      {"from_send_ms", json::object{{"p50", Ms(from_send.Percentile(50))},
                                    {"p99", Ms(from_send.Percentile(99))},
                                    {"p99.9", Ms(from_send.Percentile(99.9))}}},
      {"submit_202_ms",
       json::object{{"p50", Ms(accept.Percentile(50))}, {"p99", Ms(accept.Percentile(99))}}},
  };
  const std::pair<const char*, double> points[] = {
      {"_p50_ms", 50}, {"_p99_ms", 99}, {"_p999_ms", 99.9}};
  for (const auto& [suffix, p] : points) {
    json::object line{{"figure", c.figure + suffix}, {"value", Ms(from_schedule.Percentile(p))}};
    line["detail"] = detail;
    EmitLine(c.out, json::serialize(line));
  }
  EmitLine(c.out, json::serialize(json::object{{"figure", c.figure + "_rate"},
                                               {"value", static_cast<double>(done) / c.duration}}));
  if (errors > 0) {
    std::cerr << "latency: " << errors << " jobs failed; first: " << first_error << "\n";
  }
  return errors > 0 ? 3 : 0;
}

}  // namespace bench
