#include "api/metrics_api.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/await_engine.h"
#include "http/problem.h"

namespace acceptd::api {

namespace asio = boost::asio;
using http::Response;

void MetricsApi::Register(http::Router& router) {
  router.Add(http::Verb::get, "/metrics", http::Access::Need(http::Scope::kMetrics),
             [this](http::Request& req, const http::PathParams& p) { return Metrics(req, p); });
}

asio::awaitable<Response> MetricsApi::Metrics(http::Request& req, const http::PathParams& p) {
  (void)req;
  if (p.principal && !p.principal->tenant.empty()) {
    co_return http::Problem(http::Status::forbidden,
                            "a key with a tenant may not read metrics: they cover every tenant's "
                            "jobs; use a key with the 'metrics' scope and no tenant");
  }
  Engine& engine = engine_;
  auto gauges = co_await AwaitEngine<std::vector<QueueGauge>>(
      [&engine](Engine::Callback<std::vector<QueueGauge>> cb) {
        engine.QueueGauges(std::move(cb));
      });
  if (!gauges) co_return http::Problem(gauges.error());
  metrics::MetricsText out;
  engine_.metrics().Write(out);
  WriteQueueGauges(*gauges, engine_.clock().Now(), out);
  out.Family("acceptd_longpoll_waiters", "gauge",
             "Long-polls (GET /v1/jobs/{id}?wait=) waiting for a job on this node.");
  out.Sample("acceptd_longpoll_waiters", {}, static_cast<uint64_t>(engine_.watchers().waiting()));
  out.Family("acceptd_event_streams", "gauge",
             "Event streams (GET /v1/jobs/{id}/events) open on this node.");
  out.Sample("acceptd_event_streams", {}, static_cast<uint64_t>(engine_.watchers().listening()));
  router_.WriteMetrics(out);
  if (extra_) extra_(out);
  WriteProcessMetrics(out);
  Response res{http::Status::ok, 11};
  res.set(http::Field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(http::Field::cache_control, "no-store");
  res.body() = out.Take();
  co_return res;
}

namespace {

// The process's start, in seconds since the epoch: /proc/self/stat's
// starttime (clock ticks after boot) plus the boot time from /proc/stat.
std::optional<double> StartTimeSeconds() {
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // Fields after the command name (which may hold spaces) start after ")".
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  // starttime is field 22; fields(…) starts at field 3.
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) {
      std::ifstream proc_stat("/proc/stat");
      std::string key;
      while (proc_stat >> key) {
        if (key == "btime") {
          double btime = 0;
          proc_stat >> btime;
          return btime + std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
        }
        proc_stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
      }
    }
  }
  return std::nullopt;
}

}  // namespace

void WriteProcessMetrics(metrics::MetricsText& out) {
  static const std::optional<double> start = StartTimeSeconds();
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    out.Family("process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds.");
    out.Sample("process_cpu_seconds_total", {}, cpu);
  }
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    const auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    out.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size, bytes.");
    out.Sample("process_virtual_memory_bytes", {}, size_pages * page);
    out.Family("process_resident_memory_bytes", "gauge", "Resident memory size, bytes.");
    out.Sample("process_resident_memory_bytes", {}, resident_pages * page);
  }
  std::error_code ec;
  uint64_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    out.Family("process_open_fds", "gauge", "Open file descriptors.");
    out.Sample("process_open_fds", {}, fds);
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    out.Family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    out.Sample("process_max_fds", {}, static_cast<uint64_t>(lim.rlim_cur));
  }
  if (start) {
    out.Family("process_start_time_seconds", "gauge",
               "Start time of the process since the Unix epoch, seconds.");
    out.Sample("process_start_time_seconds", {}, *start);
  }
}

}  // namespace acceptd::api
