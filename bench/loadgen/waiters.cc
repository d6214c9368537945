// waiters: the server's RSS with N concurrent long-poll waiters.
//
//   1. submits --jobs jobs that stay pending for the whole measurement
//      (default POST /v1/queues/echo/jobs?delay=600: they stay queued);
//   2. checks that the server holds a long-poll (GET ?wait=0.3 on one of
//      them answers 202 after >= 0.25 s), then reads the RSS of the idle
//      server (the baseline);
//   3. opens --connections keep-alive connections and sends one
//      `GET /v1/jobs/{id}?wait=--wait` on each (ids dealt round-robin), then
//      keeps reading every connection: a response before the RSS reading is
//      an error (the jobs are pending, so every wait must still be running);
//   4. waits until the server has read every request: as many established
//      server-side sockets on the port as connections, none with unread bytes
//      (/proc/net/tcp), plus --settle seconds for the handlers to park;
//   5. reads the server's RSS, then closes every connection.
//
// Emits {figure}_rss_bytes (the RSS with the waiters), {figure}_rss_bytes_over_idle
// (minus the baseline) and {figure}_rss_bytes_per_waiter. Exit 3 when any
// connection failed, any response came early, or the requests could not be
// confirmed in flight; such a run's figures are named {figure}_failed_run_*
// instead (kept in the results JSON, out of the table).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "loadgen/client.h"
#include "loadgen/modes.h"

namespace bench {
namespace {

namespace json = boost::json;

struct ServerSockets {
  bool readable = false;  // /proc/net/tcp could be read
  int64_t established = 0;
  int64_t with_unread_bytes = 0;  // rx_queue > 0: a request the server has not read yet
};

// Server-side sockets of 127.0.0.1:port (IPv4) in /proc/net/tcp.
ServerSockets ServerSideSockets(uint16_t port) {
  ServerSockets s;
  std::ifstream in("/proc/net/tcp");
  if (!in) return s;
  s.readable = true;
  std::string line;
  std::getline(in, line);  // header
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, ":%04X", port);
  while (std::getline(in, line)) {
    // "  12: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 ..."
    std::istringstream f(line);
    std::string slot, local, remote, state, queues;
    if (!(f >> slot >> local >> remote >> state >> queues)) continue;
    if (local.size() < 5 || local.compare(local.size() - 5, 5, suffix) != 0) continue;
    if (state != "01") continue;  // ESTABLISHED (the listener is 0A)
    ++s.established;
    const auto colon = queues.find(':');
    if (colon != std::string::npos && std::stoul(queues.substr(colon + 1), nullptr, 16) > 0) {
      ++s.with_unread_bytes;
    }
  }
  return s;
}

asio::awaitable<void> Sleep(double seconds) {
  asio::steady_timer t(
      co_await asio::this_coro::executor,
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
  co_await t.async_wait(asio::use_awaitable);
}

}  // namespace

int RunWaiters(const Args& args) {
  const Target target = ParseTarget(args.Required("target"));
  const int pid = static_cast<int>(args.Int("pid", 0));
  const int64_t n = args.Int("connections", 10000);
  const int64_t job_count = std::max<int64_t>(1, args.Int("jobs", 10));
  const std::string wait = args.Str("wait", "60");
  const std::string submit_path = args.Str("submit-path", "/v1/queues/echo/jobs?delay=600");
  const int64_t concurrency = std::max<int64_t>(1, args.Int("concurrency", 200));
  const double settle = args.Double("settle", 1.0);
  const double confirm_timeout = args.Double("confirm-timeout", 20);
  const std::string out = args.Str("out");
  const std::string figure = args.Str("figure", "longpoll");
  args.CheckAllUsed();
  if (pid <= 0) throw std::invalid_argument("--pid of the server is required");
  if (wait.empty() || wait.find_first_not_of("0123456789.") != std::string::npos) {
    throw std::invalid_argument("--wait must be a number of seconds");
  }
  const double wait_s = std::stod(wait);

  asio::io_context ctx{1};
  std::vector<std::string> ids;
  std::vector<std::unique_ptr<Conn>> conns;
  conns.reserve(static_cast<size_t>(n));
  int64_t next = 0, failed = 0, openers_done = 0, early = 0;
  bool closing = false;
  std::map<int, int64_t> early_statuses;
  std::string setup_error, first_error, first_early;
  int64_t rss_before = -1, rss_after = -1;
  double open_seconds = 0, confirm_seconds = 0, oldest_wait_seconds = 0;
  ServerSockets sockets;
  Clock::time_point first_write{};

  // One connection: connect, send the long-poll, then read until we close it.
  auto opener = [&](std::vector<std::string> requests) -> asio::awaitable<void> {
    while (next < n) {
      const int64_t i = next++;
      auto conn = std::make_unique<Conn>(co_await asio::this_coro::executor);
      try {
        co_await conn->Connect(target.endpoint);
        if (first_write == Clock::time_point{}) first_write = Clock::now();
        co_await conn->Write(requests[static_cast<size_t>(i) % requests.size()]);
      } catch (const std::exception& e) {
        ++failed;
        if (first_error.empty()) first_error = e.what();
        continue;
      }
      Conn* c = conn.get();
      conns.push_back(std::move(conn));
      asio::co_spawn(
          co_await asio::this_coro::executor,
          [&, c]() -> asio::awaitable<void> {
            try {
              Response res = co_await c->Read();
              if (!closing) {
                ++early;
                ++early_statuses[static_cast<int>(res.result_int())];
                if (first_early.empty()) {
                  first_early = "status " + std::to_string(res.result_int()) + ": " +
                                res.body().substr(0, 200);
                }
              }
            } catch (const std::exception& e) {
              if (!closing) {
                ++early;
                if (first_early.empty()) first_early = std::string("connection: ") + e.what();
              }
            }
          },
          asio::detached);
    }
    ++openers_done;
  };

  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        try {
          // 1. The pending jobs.
          Conn setup(ex);
          co_await setup.Connect(target.endpoint);
          const std::string submit =
              PostRequest(target, submit_path, "application/json", JsonPayload(100));
          for (int64_t i = 0; i < job_count; ++i) {
            Response res = co_await setup.RoundTrip(submit);
            std::string id;
            if (res.result_int() == 202) id = IdFromLocation(res[http::field::location]);
            if (id.empty()) {
              throw std::runtime_error("submit " + submit_path + ": status " +
                                       std::to_string(res.result_int()) + ": " + res.body());
            }
            ids.push_back(id);
          }
          // 2. The server holds a long-poll on a pending job.
          const auto t0 = Clock::now();
          const std::string request = GetRequest(target, "/v1/jobs/" + ids[0] + "?wait=0.3");
          Response probe = co_await setup.RoundTrip(request);
          const double held = Seconds(Clock::now() - t0);
          if (probe.result_int() != 202 || held < 0.25) {
            throw std::runtime_error(
                "GET ?wait=0.3 on a pending job answered " + std::to_string(probe.result_int()) +
                " after " + std::to_string(held) +
                " s (expected 202 after 0.3 s): " + "does the server long-poll?");
          }
          setup.Close();
        } catch (const std::exception& e) {
          setup_error = e.what();
          co_return;
        }
        co_await Sleep(0.5);
        rss_before = ProcessRssBytes(pid);

        // 3. The waiters.
        std::vector<std::string> requests;
        for (const auto& id : ids)
          requests.push_back(GetRequest(target, "/v1/jobs/" + id + "?wait=" + wait));
        const auto start = Clock::now();
        for (int64_t i = 0; i < concurrency; ++i)
          asio::co_spawn(ex, opener(requests), asio::detached);
        while (openers_done < concurrency) co_await Sleep(0.01);
        open_seconds = Seconds(Clock::now() - start);

        // 4. Every request read by the server.
        const auto c0 = Clock::now();
        for (;;) {
          sockets = ServerSideSockets(target.endpoint.port());
          if (!sockets.readable) break;  // no /proc/net/tcp: --settle alone
          if (sockets.established >= static_cast<int64_t>(conns.size()) &&
              sockets.with_unread_bytes == 0) {
            break;
          }
          if (Seconds(Clock::now() - c0) > confirm_timeout) break;
          co_await Sleep(0.1);
        }
        confirm_seconds = Seconds(Clock::now() - c0);
        co_await Sleep(settle);

        // 5. The reading, then close.
        rss_after = ProcessRssBytes(pid);
        oldest_wait_seconds = Seconds(Clock::now() - first_write);
        closing = true;
        for (auto& c : conns) c->Close();
      },
      asio::detached);
  ctx.run();

  if (!setup_error.empty()) {
    std::cerr << "waiters: " << setup_error << "\n";
    return 1;
  }
  const auto open = static_cast<int64_t>(conns.size());
  const bool confirmed =
      sockets.readable && sockets.established >= open && sockets.with_unread_bytes == 0;
  json::object st;
  for (auto [code, count] : early_statuses) st[std::to_string(code)] = count;
  json::object detail{{"waiters", open},
                      {"failed", failed},
                      {"early_responses", early},
                      {"early_statuses", st},
                      {"jobs", job_count},
                      {"wait_seconds", wait_s},
                      {"open_seconds", open_seconds},
                      {"confirm_seconds", confirm_seconds},
                      {"oldest_wait_at_reading_seconds", oldest_wait_seconds},
                      {"server_sockets_established", sockets.established},
                      {"server_sockets_unread", sockets.with_unread_bytes},
                      {"in_flight_confirmed", confirmed},
                      {"rss_before_bytes", rss_before},
                      {"rss_after_bytes", rss_after}};
  if (!sockets.readable) detail["note"] = "/proc/net/tcp unreadable: settle time only";
  if (!first_error.empty()) detail["first_error"] = first_error;
  if (!first_early.empty()) detail["first_early_response"] = first_early;
  const bool past_wait = oldest_wait_seconds >= wait_s;
  const bool ok = failed == 0 && early == 0 && open == n && (confirmed || !sockets.readable) &&
                  !past_wait && rss_before > 0 && rss_after > 0;
  // A failed run's reading stays in the JSON under another name, out of the table.
  const std::string name = ok ? figure : figure + "_failed_run";
  EmitLine(out, json::serialize(json::object{
                    {"figure", name + "_rss_bytes"}, {"value", rss_after}, {"detail", detail}}));
  EmitLine(out, json::serialize(json::object{{"figure", name + "_rss_bytes_over_idle"},
                                             {"value", rss_after - rss_before}}));
  EmitLine(
      out,
      json::serialize(json::object{
          {"figure", name + "_rss_bytes_per_waiter"},
          {"value",
           open ? static_cast<double>(rss_after - rss_before) / static_cast<double>(open) : 0.0}}));
  std::cerr << "waiters: " << open << " long-polls sent (" << failed << " connections failed, "
            << early << " answered early" << (first_early.empty() ? "" : ": " + first_early)
            << "; server read every request: " << (confirmed ? "yes" : "NOT CONFIRMED")
            << "), server RSS " << rss_before / 1024 << " KiB -> " << rss_after / 1024 << " KiB"
            << (ok ? "" : " (run FAILED)") << "\n";
  if (past_wait) {
    std::cerr << "waiters: the reading came " << oldest_wait_seconds
              << " s after the first request, past its ?wait=" << wait << "\n";
  }
  return ok ? 0 : 3;
}

}  // namespace bench
