// check, idle, fsync, freeport, waitready: the suite's small helpers.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/job.h"
#include "loadgen/client.h"
#include "loadgen/modes.h"

namespace bench {
namespace json = boost::json;

// check: every id must be known to the server (any status but 404 / 5xx).
int RunCheck(const Args& args) {
  const Target target = ParseTarget(args.Required("target"));
  const std::string ids_file = args.Required("ids");
  const std::string name = args.Str("name", "ids_exist");
  const std::string out = args.Str("out");
  const int64_t connections = std::max<int64_t>(1, args.Int("connections", 8));
  args.CheckAllUsed();

  std::vector<std::string> ids;
  std::ifstream in(ids_file);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) ids.push_back(line);
  }
  size_t next = 0;
  int64_t present = 0, missing = 0, bad = 0;
  std::map<int, int64_t> statuses;
  std::string first_problem;
  asio::io_context ctx{1};
  auto worker = [&]() -> asio::awaitable<void> {
    try {
      Conn conn(co_await asio::this_coro::executor);
      co_await conn.Connect(target.endpoint);
      while (next < ids.size()) {
        const std::string& id = ids[next++];
        if (!acceptd::JobId::Parse(id)) {
          ++bad;
          if (first_problem.empty()) first_problem = "not a job id: '" + id + "'";
          continue;
        }
        // Named, not a temporary inside co_await (GCC 12; see src/api/await_engine.h).
        const std::string request = GetRequest(target, "/v1/jobs/" + id);
        Response res = co_await conn.RoundTrip(request);
        const int status = static_cast<int>(res.result_int());
        ++statuses[status];
        if (status == 404) {
          ++missing;
          if (first_problem.empty()) first_problem = "404 for accepted job " + id;
        } else if (status >= 400) {
          ++bad;
          if (first_problem.empty()) first_problem = "status " + std::to_string(status);
        } else {
          ++present;
        }
      }
    } catch (const std::exception& e) {
      ++bad;
      if (first_problem.empty()) first_problem = e.what();
    }
  };
  for (int64_t i = 0; i < connections; ++i) asio::co_spawn(ctx, worker(), asio::detached);
  ctx.run();

  const bool ok =
      !ids.empty() && missing == 0 && bad == 0 && present == static_cast<int64_t>(ids.size());
  json::object st;
  for (auto [code, n] : statuses) st[std::to_string(code)] = n;
  json::object line{{"check", name},      {"ok", ok},           {"checked", ids.size()},
                    {"present", present}, {"missing", missing}, {"statuses", st}};
  if (!first_problem.empty()) line["first_problem"] = first_problem;
  if (ids.empty()) line["first_problem"] = "no ids in " + ids_file;
  EmitLine(out, json::serialize(line));
  std::cerr << "check " << name << ": " << present << "/" << ids.size() << " present"
            << (ok ? "" : " FAILED: " + first_problem) << "\n";
  return ok ? 0 : 3;
}

// idle: opens --connections keep-alive connections, sends one GET on each (so
// every one is a served HTTP connection), then leaves them idle, with no
// request pending, and reads the server's RSS. The secondary figure next to
// `waiters` (waiters.cc), whose connections each hold a long-poll.
int RunIdle(const Args& args) {
  const Target target = ParseTarget(args.Required("target"));
  const int64_t n = args.Int("connections", 10000);
  const int pid = static_cast<int>(args.Int("pid", 0));
  const int64_t concurrency = std::max<int64_t>(1, args.Int("concurrency", 200));
  const double settle = args.Double("settle", 1.0);
  const std::string path = args.Str("path", "/healthz");
  const std::string out = args.Str("out");
  const std::string figure = args.Str("figure", "idle_conns");
  args.CheckAllUsed();
  if (pid <= 0) throw std::invalid_argument("--pid of the server is required");

  const int64_t rss_before = ProcessRssBytes(pid);
  asio::io_context ctx{1};
  std::vector<std::unique_ptr<Conn>> conns;
  conns.reserve(static_cast<size_t>(n));
  int64_t next = 0, failed = 0;
  std::string first_error;
  const std::string req = GetRequest(target, path);
  // A bounded number of connects in flight: the listen backlog is finite.
  auto opener = [&]() -> asio::awaitable<void> {
    while (next < n) {
      ++next;
      auto conn = std::make_unique<Conn>(co_await asio::this_coro::executor);
      try {
        co_await conn->Connect(target.endpoint);
        Response res = co_await conn->RoundTrip(req);
        if (res.result_int() != 200) throw std::runtime_error("status " + res.body());
        conns.push_back(std::move(conn));
      } catch (const std::exception& e) {
        ++failed;
        if (first_error.empty()) first_error = e.what();
      }
    }
  };
  const auto start = Clock::now();
  for (int64_t i = 0; i < concurrency; ++i) asio::co_spawn(ctx, opener(), asio::detached);
  ctx.run();
  const double open_seconds = Seconds(Clock::now() - start);
  std::this_thread::sleep_for(std::chrono::duration<double>(settle));
  const int64_t rss_after = ProcessRssBytes(pid);
  const auto open = static_cast<int64_t>(conns.size());

  json::object detail{{"connections", open},
                      {"failed", failed},
                      {"open_seconds", open_seconds},
                      {"rss_before_bytes", rss_before},
                      {"rss_after_bytes", rss_after}};
  if (!first_error.empty()) detail["first_error"] = first_error;
  EmitLine(out, json::serialize(json::object{
                    {"figure", figure + "_rss_bytes"}, {"value", rss_after}, {"detail", detail}}));
  EmitLine(
      out,
      json::serialize(json::object{
          {"figure", figure + "_rss_bytes_per_conn"},
          {"value",
           open ? static_cast<double>(rss_after - rss_before) / static_cast<double>(open) : 0.0}}));
  std::cerr << "idle: " << open << " connections open (" << failed << " failed), server RSS "
            << rss_before / 1024 << " KiB -> " << rss_after / 1024 << " KiB\n";
  for (auto& c : conns) c->Close();
  return failed > 0 ? 3 : 0;
}

// fsync: how many durable 4 KiB appends per second the disk under --dir
// takes (write + fdatasync, as SQLite's WAL commit does). Submits/s above this
// are only possible through group commit.
int RunFsync(const Args& args) {
  const std::string dir = args.Required("dir");
  const double seconds = args.Double("seconds", 2);
  const std::string out = args.Str("out");
  const std::string figure = args.Str("figure", "disk_fsyncs_per_s");
  args.CheckAllUsed();

  const std::string path = dir + "/fsync-probe.tmp";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  std::vector<char> block(4096, 'x');
  int64_t ops = 0;
  off_t offset = 0;
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    if (::pwrite(fd, block.data(), block.size(), offset) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      throw std::runtime_error("write/fdatasync failed: " + why);
    }
    ++ops;
    offset = (offset + 4096) % (64 << 20);
  }
  const double elapsed = Seconds(Clock::now() - start);
  ::close(fd);
  ::unlink(path.c_str());
  EmitLine(out, json::serialize(json::object{{"figure", figure},
                                             {"value", static_cast<double>(ops) / elapsed},
                                             {"detail", json::object{{"dir", dir}}}}));
  return 0;
}

int RunFreePort(const Args& args) {
  args.CheckAllUsed();
  asio::io_context ctx;
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::cout << acceptor.local_endpoint().port() << "\n";
  return 0;
}

// waitready: polls GET --path until it answers --expect (200) or --timeout passes.
int RunWaitReady(const Args& args) {
  const Target target = ParseTarget(args.Required("target"));
  const double timeout = args.Double("timeout", 30);
  const std::string path = args.Str("path", "/readyz");
  const int64_t expect = args.Int("expect", 200);
  args.CheckAllUsed();
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout));
  std::string last = "no answer";
  while (Clock::now() < deadline) {
    asio::io_context ctx{1};
    bool ready = false;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          try {
            Conn conn(co_await asio::this_coro::executor);
            co_await conn.Connect(target.endpoint);
            const std::string request = GetRequest(target, path);
            Response res = co_await conn.RoundTrip(request);
            ready = static_cast<int64_t>(res.result_int()) == expect;
            last = "status " + std::to_string(res.result_int());
          } catch (const std::exception& e) {
            last = e.what();
          }
        },
        asio::detached);
    ctx.run();
    if (ready) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "waitready: " << target.host << path << " not ready after " << timeout
            << " s: " << last << "\n";
  return 1;
}

}  // namespace bench
