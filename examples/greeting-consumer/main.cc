// greeting-consumer: the original demo's consumer service (see consumer.h and
// README.md beside this file). Wiring only: flags, logging, the HTTP server,
// the poller, and a clean stop on SIGINT/SIGTERM.
#include <csignal>
#include <iostream>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "consumer.h"
#include "http/router.h"
#include "http/server.h"

namespace {

// Two event loops: /call-me hands its blocking work to the consumer's
// workers, so the loops only parse, route and write.
constexpr int kHttpThreads = 2;

acceptd::client::Millis Seconds(double s) {
  return acceptd::client::Millis(static_cast<int64_t>(s * 1000.0 + 0.5));
}

void SetUpLogging() {
  auto logger = spdlog::stderr_color_mt("greeting-consumer");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);  // one line per event, visible at once
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  namespace gc = greeting_consumer;
  CLI::App app{"greeting-consumer: the consumer service of the original demo, against acceptd"};
  std::string listen(gc::kDefaultListen);
  gc::ConsumerOptions options;
  double poll_interval = std::chrono::duration<double>(gc::kDefaultPollInterval).count();
  double timeout = std::chrono::duration<double>(gc::kDefaultProducerTimeout).count();
  app.add_option("--listen", listen, "Address to listen on, HOST:PORT")->capture_default_str();
  app.add_option("--producer", options.producer, "acceptd's base URL")->capture_default_str();
  app.add_option("--public-url", options.public_url,
                 "This service's URL as the producer reaches it (redirect_location is "
                 "PUBLIC-URL/jobs-result)")
      ->capture_default_str();
  app.add_option("--poll-interval", poll_interval,
                 "Seconds between polls of the pending tokens (pool-job)")
      ->check(CLI::Range(0.01, 86400.0))
      ->capture_default_str();
  app.add_option("--service-name", options.service_name, "service_name sent to the producer")
      ->capture_default_str();
  app.add_option("--api-key", options.api_key,
                 "acceptd API key with scopes submit and read, if the producer needs one")
      ->envname("ACCEPTD_API_KEY");
  app.add_option("--timeout", timeout, "Seconds allowed for each request to the producer")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "greeting-consumer: " << e.what() << "\n";
    return 2;
  }
  auto address = gc::ParseHostPort(listen);
  if (!address) {
    std::cerr << "greeting-consumer: --listen: " << address.error().detail << "\n";
    return 2;
  }
  options.poll_interval = Seconds(poll_interval);
  options.producer_timeout = Seconds(timeout);

  SetUpLogging();
  gc::Consumer consumer(options);
  acceptd::http::Router router;
  consumer.Register(router);
  acceptd::http::HttpServer server(
      acceptd::http::ServerLimits{},
      [&router](acceptd::http::Request& req, const acceptd::http::Peer& peer) {
        return router.Route(req, peer);
      },
      kHttpThreads);
  auto port = server.Listen(address->first, address->second);
  if (!port) {
    spdlog::error("cannot listen on {}: {}", listen, port.error().message);
    return 1;
  }

  // Asio turns SIGINT/SIGTERM into a completion on this thread.
  boost::asio::io_context signals_ctx;
  boost::asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
  server.Start();
  consumer.Start();
  const std::string host = address->first.find(':') == std::string::npos
                               ? address->first
                               : "[" + address->first + "]";  // IPv6
  spdlog::info("greeting-consumer listening on {}:{} producer={} public_url={} poll_interval={}s",
               host, *port, options.producer, options.public_url, poll_interval);

  int signal_number = 0;
  signals.async_wait([&](boost::system::error_code, int sig) { signal_number = sig; });
  signals_ctx.run();
  spdlog::info("received signal {}: stopping", signal_number);
  server.Stop();    // no new /call-me or /jobs-result
  consumer.Stop();  // the poller, then the /call-me calls in flight
  spdlog::info("greeting-consumer stopped ({} tokens still pending)", consumer.pending().size());
  spdlog::shutdown();
  return 0;
}
