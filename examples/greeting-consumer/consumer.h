// greeting-consumer: the consumer service of the original two-service Flask
// demo, rebuilt on acceptd's own HTTP server (src/http) and its C++ client
// library (src/client). It talks to acceptd's compatibility routes
// (docs/api.md, "Compatibility routes") exactly as the original consumer
// talked to the original producer:
//
//   POST /call-me      the body (a JSON object, whatever its Content-Type, so
//                      that `curl -d '{"name": "dummy user"}'` works) gets
//                      "service_name" and "redirect_location" added and is
//                      POSTed to {producer}/v1/submit-job; the client gets the
//                      producer's status code and body back. A 202's
//                      message_token is remembered as pending. Producer not
//                      reachable: 502 problem. Body not a JSON object: 400.
//   POST /jobs-result  the finished job's data, POSTed by the producer to
//                      redirect_location: logged as "After Job Complete: {...}"
//                      and answered 200 "Ok". Its message_token is no longer
//                      pending.
//   poller             every poll_interval, for each pending token, POSTs
//                      {"service_name", "massage_token"} (sic, as the original)
//                      to {producer}/v1/pool-job; keeps the token while the
//                      answer is 202 and drops it on any other status (302:
//                      the producer has just POSTed the result to /jobs-result;
//                      404: the producer does not know it). A transport error
//                      keeps it for the next round.
//
// Threads: the HTTP server's event loops never block. The blocking client
// calls of /call-me run on a small worker pool (one Client per call); the
// poller is one thread with its own Client. PendingTokens is the only state
// they share, and it is locked.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "client/client.h"
#include "core/error.h"
#include "http/router.h"

namespace greeting_consumer {

using Millis = std::chrono::milliseconds;

inline constexpr std::string_view kDefaultListen = "127.0.0.1:8001";
inline constexpr std::string_view kDefaultProducer = "http://127.0.0.1:8000";
inline constexpr std::string_view kDefaultPublicUrl = "http://127.0.0.1:8001";
inline constexpr std::string_view kDefaultServiceName = "greeting";
// The original ran its poller every 15 seconds.
inline constexpr Millis kDefaultPollInterval{15'000};
// Per request to the producer. Longer than acceptd's own 10 s limit on the
// POST to redirect_location that a pool-job may make while we wait for it.
inline constexpr Millis kDefaultProducerTimeout{30'000};
// /call-me requests that may wait on the producer at once; more queue up.
inline constexpr int kCallMeWorkers = 4;

struct ConsumerOptions {
  std::string producer = std::string(kDefaultProducer);     // acceptd's base URL
  std::string public_url = std::string(kDefaultPublicUrl);  // how the producer reaches us
  std::string service_name = std::string(kDefaultServiceName);
  Millis poll_interval = kDefaultPollInterval;
  Millis producer_timeout = kDefaultProducerTimeout;
  std::string api_key;  // for an acceptd with API keys: scopes submit and read
};

// The message tokens submitted and not yet seen complete. Thread-safe.
class PendingTokens {
 public:
  // Returns the number pending after the change.
  size_t Add(const std::string& token);
  size_t Remove(const std::string& token);
  std::vector<std::string> Snapshot() const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::set<std::string> tokens_;
};

class Consumer {
 public:
  explicit Consumer(ConsumerOptions options);
  ~Consumer();  // Stop()
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Adds POST /call-me and POST /jobs-result. The router must not outlive
  // this object.
  void Register(acceptd::http::Router& router);
  // Starts the poller thread.
  void Start();
  // Stops the poller (a pool-job request in flight is finished first, so
  // this may wait up to producer_timeout) and waits for the /call-me calls in
  // flight. Call it after stopping the HttpServer, so that no new call
  // starts. Idempotent.
  void Stop();

  // One round of the poller over the pending tokens, with `client`.
  void PollOnce(acceptd::client::Client& client);

  const PendingTokens& pending() const { return pending_; }
  const ConsumerOptions& options() const { return options_; }

 private:
  // What the producer answered to a submit; reached == false when it could
  // not be asked (the detail is logged, not shown to the client).
  struct ProducerAnswer {
    bool reached = false;
    unsigned status = 0;
    std::string content_type;
    std::string body;
  };

  boost::asio::awaitable<acceptd::http::Response> CallMe(acceptd::http::Request& req,
                                                         const acceptd::http::PathParams&);
  boost::asio::awaitable<acceptd::http::Response> JobsResult(acceptd::http::Request& req,
                                                             const acceptd::http::PathParams&);
  // Blocking: POSTs `body` to submit-job with a fresh Client.
  ProducerAnswer Submit(std::string body);
  void PollLoop();
  acceptd::client::ClientOptions ClientOptionsFor() const;

  ConsumerOptions options_;
  std::string submit_url_, pool_url_, redirect_url_;
  PendingTokens pending_;
  boost::asio::thread_pool workers_{kCallMeWorkers};

  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::thread poller_;
};

// ---------------------------------------------------------------------------
// Pure helpers (exposed for tests).

// `base` without trailing '/' followed by `path` ("/v1/submit-job").
std::string JoinUrl(std::string_view base, std::string_view path);

// The submit-job body: the /call-me body (must be a JSON object) with
// "service_name" and "redirect_location": {"url", "method": "POST"} set, as
// the original's data.update(...). kInvalidArgument if it is not an object.
acceptd::Result<std::string> SubmitJobBody(std::string_view call_me_body,
                                           std::string_view service_name,
                                           std::string_view redirect_url);

// The pool-job body: {"service_name": ..., "massage_token": ...} (sic).
std::string PoolJobBody(std::string_view service_name, std::string_view token);

// "HOST:PORT" or "[V6]:PORT" (port 0..65535). kInvalidArgument if malformed.
acceptd::Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view listen);

}  // namespace greeting_consumer
