// submit: bulk-loads jobs as fast as the server takes them. Each of
// --connections keep-alive connections writes --pipeline requests at once and
// then reads their responses (acceptd answers a connection's requests in
// order, one at a time, so pipelining hides the client's turnaround).
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "loadgen/client.h"
#include "loadgen/modes.h"

namespace bench {

int RunSubmit(const Args& args) {
  const Target target = ParseTarget(args.Required("target"));
  const std::string path = args.Str("path", "/v1/queues/echo/jobs?delay=100000");
  const int64_t count = args.Int("count", 10000);
  const int64_t connections = std::max<int64_t>(1, args.Int("connections", 256));
  const int64_t pipeline = std::max<int64_t>(1, args.Int("pipeline", 4));
  const auto body_bytes = static_cast<size_t>(args.Int("body-bytes", 100));
  const std::string ids_out = args.Str("ids-out");
  const int64_t ids_keep = args.Int("ids-keep", -1);  // -1: every id; else a uniform sample
  const std::string out = args.Str("out");
  const std::string figure = args.Str("figure", "bulk_submit_rps");
  const bool progress = args.Int("progress", 1) != 0;
  args.CheckAllUsed();

  asio::io_context ctx{1};
  const std::string one = PostRequest(target, path, "application/json", JsonPayload(body_bytes));
  std::string batch;
  for (int64_t i = 0; i < pipeline; ++i) batch += one;

  int64_t remaining = count, ok = 0, errors = 0, active = 0, ids_seen = 0;
  std::map<int, int64_t> statuses;
  std::vector<std::string> ids;
  std::mt19937_64 rng(std::random_device{}());
  std::string first_error;

  auto record_id = [&](std::string id) {
    ++ids_seen;
    if (ids_keep < 0 || static_cast<int64_t>(ids.size()) < ids_keep) {
      ids.push_back(std::move(id));
    } else if (ids_keep > 0) {  // reservoir sampling over the whole run
      auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(ids_seen));
      if (j < ids_keep) ids[static_cast<size_t>(j)] = std::move(id);
    }
  };

  auto worker = [&]() -> asio::awaitable<void> {
    int64_t unread = 0;
    try {
      Conn conn(co_await asio::this_coro::executor);
      co_await conn.Connect(target.endpoint);
      while (remaining > 0) {
        const int64_t k = std::min(pipeline, remaining);
        remaining -= k;
        unread = k;
        co_await conn.Write(std::string_view(batch).substr(0, one.size() * k));
        for (int64_t i = 0; i < k; ++i) {
          Response res = co_await conn.Read();
          --unread;
          const int status = static_cast<int>(res.result_int());
          ++statuses[status];
          std::string id;
          if (status == 202) id = IdFromLocation(res[http::field::location]);
          if (id.empty()) {
            ++errors;
            if (first_error.empty())
              first_error = "status " + std::to_string(status) + ": " + res.body();
            continue;
          }
          ++ok;
          record_id(std::move(id));
        }
        unread = 0;
      }
    } catch (const std::exception& e) {
      errors += unread;
      if (first_error.empty()) first_error = e.what();
    }
    --active;
  };

  const auto start = Clock::now();
  for (int64_t i = 0; i < connections; ++i) {
    ++active;  // before the first suspension, so the progress loop sees it
    asio::co_spawn(ctx, worker(), asio::detached);
  }
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(ctx);
        auto last = Clock::now();
        while (active > 0) {
          timer.expires_after(std::chrono::milliseconds(200));
          co_await timer.async_wait(asio::use_awaitable);
          if (progress && Clock::now() - last >= std::chrono::seconds(10)) {
            last = Clock::now();
            std::cerr << "submit: " << ok << "/" << count << " accepted, " << errors << " errors, "
                      << static_cast<int64_t>(static_cast<double>(ok) /
                                              Seconds(Clock::now() - start))
                      << "/s\n";
          }
        }
      },
      asio::detached);
  ctx.run();
  const double seconds = Seconds(Clock::now() - start);
  if (remaining > 0) errors += remaining;  // workers that died left requests unsent

  if (!ids_out.empty()) {
    std::ofstream f(ids_out, std::ios::trunc);
    for (const auto& id : ids) f << id << "\n";
  }
  boost::json::object st;
  for (auto [code, n] : statuses) st[std::to_string(code)] = n;
  boost::json::object line{{"figure", figure},     {"value", static_cast<double>(ok) / seconds},
                           {"accepted", ok},       {"errors", errors},
                           {"seconds", seconds},   {"connections", connections},
                           {"pipeline", pipeline}, {"statuses", st}};
  if (!first_error.empty()) line["first_error"] = first_error;
  EmitLine(out, boost::json::serialize(line));
  if (errors > 0) {
    std::cerr << "submit: " << errors << " requests failed; first: " << first_error << "\n";
    return 3;
  }
  return 0;
}

}  // namespace bench
