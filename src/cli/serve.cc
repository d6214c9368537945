#include "cli/serve.h"

#include <sys/resource.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cstdlib>
#include <cstring>

#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include "api/job_document.h"
#include "api/v1_api.h"
#include "cli/logging.h"
#include "cli/server_routes.h"
#include "engine/engine.h"
#include "http/auth.h"
#include "http/router.h"
#include "http/server.h"
#include "store/job_store.h"
#include "webhooks/webhook_sender.h"
#include "workers/registry.h"

namespace acceptd {
namespace {

std::string NodeId() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return fmt::format("{}:{}:{}", host, getpid(), JobId::Random().ToHex().substr(0, 8));
}

// File descriptors kept for everything but client connections: the store,
// log files, callback deliveries, worker pipes, and connections being
// refused beyond max_connections (see http/server.h).
constexpr size_t kReservedFds = 512;

// max_connections is only a promise if that many sockets fit under the
// open-file limit (Debian's default soft limit is 1024). Raises the soft
// limit as far as needed and allowed; if the hard limit is still too low,
// serves fewer connections, so that the excess gets a 503 rather than accept()
// failing with EMFILE and leaving clients in the listen backlog.
size_t FitConnectionsToFdLimit(size_t max_connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return max_connections;
  const rlim_t wanted = static_cast<rlim_t>(max_connections + kReservedFds);
  if (lim.rlim_cur < wanted) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max == RLIM_INFINITY ? wanted : std::min(lim.rlim_max, wanted);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur >= wanted) return max_connections;
  const size_t fit =
      lim.rlim_cur > 2 * kReservedFds ? lim.rlim_cur - kReservedFds : lim.rlim_cur / 2;
  spdlog::warn(
      "server.max_connections = {} needs {} file descriptors but the limit is {} (ulimit -n); "
      "serving at most {} connections",
      max_connections, wanted, lim.rlim_cur, fit);
  return fit;
}

// glibc's malloc hands freed memory back to the kernel as soon as 128 KiB
// lie free at the top of a heap: for the per-thread heaps of the threads
// that pass a job along (HTTP loop, engine, store sync, handlers), that is a
// madvise(MADV_DONTNEED) and then page faults to get the pages back, over
// and over. Measured (16 clients submitting and long-polling echo jobs,
// server pinned to one core): 75,000 madvise calls in 10 s, about 2 per job,
// and 3,900 jobs/s at a 4.0 ms p50; with a 32 MiB threshold, 7,300-7,800
// jobs/s at a 2.0-2.1 ms p50. The price: up to that much free memory per
// heap stays with the process after a peak. Fixed thresholds (which also
// stop glibc's own adjustments); an operator's GLIBC_TUNABLES for either
// setting wins (docs/operations.md).
constexpr int kMallocTrimThreshold = 32 << 20;
constexpr int kMallocMmapThreshold = 4 << 20;  // larger blocks: mmap'ed, returned on free

void TuneMalloc() {
#ifdef __GLIBC__
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && (std::strstr(tunables, "malloc.trim_threshold") ||
                   std::strstr(tunables, "malloc.mmap_threshold"))) {
    return;
  }
  mallopt(M_TRIM_THRESHOLD, kMallocTrimThreshold);
  mallopt(M_MMAP_THRESHOLD, kMallocMmapThreshold);
#endif
}

// True for loopback listen hosts (only local processes can connect).
bool IsLoopback(const std::string& host) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return host == "localhost";
  return address.is_loopback();
}

}  // namespace

int RunServe(const ServerConfig& config) {
  TuneMalloc();
  if (auto st = SetUpLogging(config.log); !st) {
    std::cerr << "acceptd: " << st.error().detail << "\n";
    return 2;
  }
  auto listen = ParseListen(config.listen);
  if (!listen) {
    std::cerr << "acceptd: " << listen.error().detail << "\n";
    return 2;
  }
  EngineOptions engine_options = config.engine;
  if (engine_options.node_id.empty()) engine_options.node_id = NodeId();
  StoreOptions store_options;
  store_options.pool_size = config.store_pool_size;
  store_options.unsafe_durability = config.unsafe_durability;
  store_options.node_name = engine_options.node_id;
  auto store = OpenStore(config.store, store_options);
  if (!store) {
    std::cerr << "acceptd: cannot open store " << RedactStoreUrl(config.store) << ": "
              << store.error().message << "\n";
    return 1;
  }

  std::vector<QueueSpec> specs;
  for (const QueueConfig& q : config.queues.empty() ? DefaultQueues() : config.queues) {
    auto handler = MakeHandler(q);
    if (!handler) {
      std::cerr << "acceptd: " << handler.error().detail << "\n";
      return 2;
    }
    specs.push_back(QueueSpec{q, std::move(*handler)});
  }
  Engine engine(engine_options, std::move(*store), std::move(specs), SystemClock::Instance());
  engine.SetSchedules(config.schedules);

  api::ApiOptions api_options = config.api;
  api_options.callback_policy = webhooks::AddressPolicy(config.callback_allow);
  if (!config.callback_secret.empty()) {
    api_options.callbacks_enabled = true;
    webhooks::WebhookSenderOptions sender;
    sender.policy = api_options.callback_policy;
    sender.timeout = config.engine.callbacks.timeout;
    sender.render = [](const Job& job) { return api::JobDocument(job); };
    engine.SetCallbackSender(std::make_unique<webhooks::WebhookSender>(
        webhooks::WebhookSigner::FromSecret(config.callback_secret).value(), std::move(sender)));
  }

  http::Router router;
  const http::Authenticator auth(config.api_keys);
  router.SetAuthenticator(&auth);
  if (auth.enabled()) {
    spdlog::info("API keys: {} configured; every route but /healthz and /openapi.json needs one",
                 config.api_keys.size());
  } else if (!IsLoopback(listen->first)) {
    spdlog::warn(
        "no API keys are configured and acceptd listens on {}: anyone who can reach it may submit, "
        "read and cancel jobs. Configure [[api_keys]], bind to loopback, or put it behind a "
        "gateway that authenticates (docs/operations.md)",
        listen->first);
  }
  api_options.keys_enabled = auth.enabled();
  api::CompatOptions compat = config.compat;
  compat.redirect_timeout = config.engine.callbacks.timeout;
  ServerRoutes routes(engine, router, api_options, compat);
  routes.Register(router);
  router.SetAccessLog(MakeAccessLog(config.log));
  const int threads =
      config.threads > 0 ? config.threads : static_cast<int>(std::thread::hardware_concurrency());
  http::ServerLimits limits = config.limits;
  limits.max_connections = FitConnectionsToFdLimit(limits.max_connections);
  http::HttpServer server(
      limits,
      [&router](http::Request& req, const http::Peer& peer) { return router.Route(req, peer); },
      threads);
  routes.metrics().SetExtra([&server](metrics::MetricsText& out) {
    out.Family("acceptd_http_connections", "gauge", "Client connections being served.");
    out.Sample("acceptd_http_connections", {}, static_cast<uint64_t>(server.open_connections()));
  });
  auto port = server.Listen(listen->first, listen->second);
  if (!port) {
    std::cerr << "acceptd: " << port.error().message << "\n";
    return 1;
  }

  // Asio turns SIGINT/SIGTERM into a completion on this thread, whichever
  // thread the kernel delivered them to.
  boost::asio::io_context signals_ctx;
  boost::asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
  engine.Start();
  server.Start();
  spdlog::info("acceptd listening on {}:{} store={} http_threads={}", listen->first, *port,
               RedactStoreUrl(config.store), threads);

  int signal_number = 0;
  signals.async_wait([&](boost::system::error_code, int sig) { signal_number = sig; });
  signals_ctx.run();
  spdlog::info("received signal {}: shutting down (grace {} ms)", signal_number,
               config.engine.shutdown_grace);
  engine.Shutdown();  // submits get 503 from here on; status polls still answer
  server.Stop();
  spdlog::info("acceptd stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace acceptd
