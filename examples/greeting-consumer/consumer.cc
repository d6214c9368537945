#include "consumer.h"

#include <charconv>
#include <type_traits>

#include <spdlog/spdlog.h>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "http/problem.h"

namespace greeting_consumer {

namespace asio = boost::asio;
namespace json = boost::json;
using acceptd::Error;
using acceptd::Result;
using acceptd::http::Field;
using acceptd::http::PathParams;
using acceptd::http::Request;
using acceptd::http::Response;
using acceptd::http::Status;
using acceptd::http::Verb;

namespace {

const acceptd::client::Headers kJsonHeaders = {{"Content-Type", "application/json"}};

// Runs the blocking `f` on `pool` and resumes the calling coroutine on its
// own executor with f's result, so an event loop is never blocked by it.
// `f` should be trivially destructible (pointers and references): see CallMe.
// If that loop is stopped meanwhile, the result is dropped with the
// coroutine when the loop's io_context is destroyed.
template <typename R, typename F>
asio::awaitable<R> OffLoop(asio::thread_pool& pool, F f) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      [&pool](auto handler, F fn) {
        asio::post(pool, [handler = std::move(handler), fn = std::move(fn)]() mutable {
          R result = fn();
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable, std::move(f));
}

std::string Trim(std::string_view s) {
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

// ---------------------------------------------------------------------------
// PendingTokens

size_t PendingTokens::Add(const std::string& token) {
  std::lock_guard lock(mu_);
  tokens_.insert(token);
  return tokens_.size();
}

size_t PendingTokens::Remove(const std::string& token) {
  std::lock_guard lock(mu_);
  tokens_.erase(token);
  return tokens_.size();
}

std::vector<std::string> PendingTokens::Snapshot() const {
  std::lock_guard lock(mu_);
  return {tokens_.begin(), tokens_.end()};
}

size_t PendingTokens::size() const {
  std::lock_guard lock(mu_);
  return tokens_.size();
}

// ---------------------------------------------------------------------------
// Consumer

Consumer::Consumer(ConsumerOptions options)
    : options_(std::move(options)),
      submit_url_(JoinUrl(options_.producer, "/v1/submit-job")),
      pool_url_(JoinUrl(options_.producer, "/v1/pool-job")),
      redirect_url_(JoinUrl(options_.public_url, "/jobs-result")) {}

Consumer::~Consumer() { Stop(); }

void Consumer::Register(acceptd::http::Router& router) {
  router.Add(Verb::post, "/call-me",
             [this](Request& req, const PathParams& p) { return CallMe(req, p); });
  router.Add(Verb::post, "/jobs-result",
             [this](Request& req, const PathParams& p) { return JobsResult(req, p); });
}

void Consumer::Start() {
  std::lock_guard lock(mu_);
  if (poller_.joinable() || stopped_) return;
  poller_ = std::thread([this] { PollLoop(); });
}

void Consumer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  if (poller_.joinable()) poller_.join();
  workers_.join();
}

acceptd::client::ClientOptions Consumer::ClientOptionsFor() const {
  acceptd::client::ClientOptions o;
  o.base_url = options_.producer;
  o.timeout = options_.producer_timeout;
  o.user_agent = "greeting-consumer/0.1";
  o.api_key = options_.api_key;
  return o;
}

asio::awaitable<Response> Consumer::CallMe(Request& req, const PathParams&) {
  auto body = SubmitJobBody(req.body(), options_.service_name, redirect_url_);
  if (!body) co_return acceptd::http::Problem(Status::bad_request, body.error().detail);
  // The body stays in this frame and the lambda holds only references: GCC
  // 12 may destroy a temporary of a co_await expression twice, which is
  // harmless only for trivially destructible temporaries.
  std::string submit_body = std::move(*body);
  ProducerAnswer answer = co_await OffLoop<ProducerAnswer>(
      workers_, [this, &submit_body] { return Submit(std::move(submit_body)); });
  if (!answer.reached) {
    // The transport error was logged by Submit; the client learns only that
    // the upstream is not there.
    co_return acceptd::http::Problem(Status::bad_gateway, "the producer could not be reached");
  }
  // As the original: the producer's body and status code, as they are.
  Response res;
  res.result(answer.status);
  res.version(req.version());
  res.set(Field::content_type,
          answer.content_type.empty() ? "application/json" : answer.content_type);
  res.body() = std::move(answer.body);
  res.prepare_payload();
  co_return res;
}

Consumer::ProducerAnswer Consumer::Submit(std::string body) {
  acceptd::client::Client client(ClientOptionsFor());
  auto res = client.Send("POST", submit_url_, std::move(body), kJsonHeaders);
  if (!res) {
    spdlog::warn("submit to {} failed: {}", submit_url_, res.error().detail);
    return {};
  }
  ProducerAnswer answer{true, static_cast<unsigned>(res->status), res->Header("Content-Type"),
                        std::move(res->body)};
  if (answer.status != 202) {
    spdlog::warn("submit-job answered {}: {}", answer.status, answer.body);
    return answer;
  }
  boost::system::error_code ec;
  json::value doc = json::parse(answer.body, ec);
  const json::value* token =
      !ec && doc.is_object() ? doc.as_object().if_contains("message_token") : nullptr;
  if (!token || !token->is_string() || token->as_string().empty()) {
    spdlog::warn("submit-job answered 202 without a message_token: {}", answer.body);
    return answer;
  }
  const std::string t(token->as_string());
  const size_t n = pending_.Add(t);
  spdlog::info("submitted token={} (pending {})", t, n);
  return answer;
}

asio::awaitable<Response> Consumer::JobsResult(Request& req, const PathParams&) {
  boost::system::error_code ec;
  json::value doc = json::parse(req.body(), ec);
  if (ec) {
    // Not JSON: logged as a JSON string, so that it stays on one line.
    spdlog::info("After Job Complete: {}", json::serialize(json::value(req.body())));
  } else {
    spdlog::info("After Job Complete: {}", json::serialize(doc));
    const json::value* token =
        doc.is_object() ? doc.as_object().if_contains("message_token") : nullptr;
    if (token && token->is_string()) pending_.Remove(std::string(token->as_string()));
  }
  Response res{Status::ok, req.version()};
  res.set(Field::content_type, "text/plain");
  res.body() = "Ok";
  res.prepare_payload();
  co_return res;
}

void Consumer::PollLoop() {
  acceptd::client::Client client(ClientOptionsFor());
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_.load(); });
    if (stopping_) return;
    lock.unlock();
    PollOnce(client);
    lock.lock();
  }
}

void Consumer::PollOnce(acceptd::client::Client& client) {
  for (const std::string& token : pending_.Snapshot()) {
    if (stopping_) return;
    auto res =
        client.Send("POST", pool_url_, PoolJobBody(options_.service_name, token), kJsonHeaders);
    if (!res) {
      spdlog::warn("pool token={} failed: {}", token, res.error().detail);
      continue;  // kept: asked again next round
    }
    spdlog::info("pool token={} status={}", token, res->status);
    // 202: still pending. Anything else ends it: 302 means the producer has
    // POSTed the result to /jobs-result; a 4xx will not get better.
    if (res->status != 202) pending_.Remove(token);
  }
}

// ---------------------------------------------------------------------------
// Pure helpers

std::string JoinUrl(std::string_view base, std::string_view path) {
  return Trim(base) + std::string(path);
}

Result<std::string> SubmitJobBody(std::string_view call_me_body, std::string_view service_name,
                                  std::string_view redirect_url) {
  boost::system::error_code ec;
  json::value doc = json::parse(call_me_body, ec);
  if (ec || !doc.is_object()) {
    return Error::InvalidArgument(R"(the body must be a JSON object, e.g. {"name": "dummy user"})");
  }
  json::object& data = doc.as_object();
  data["service_name"] = service_name;
  data["redirect_location"] = json::object{{"url", redirect_url}, {"method", "POST"}};
  return json::serialize(data);
}

std::string PoolJobBody(std::string_view service_name, std::string_view token) {
  return json::serialize(json::object{{"service_name", service_name}, {"massage_token", token}});
}

Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view listen) {
  const auto bad = [&] {
    return Error::InvalidArgument("expected HOST:PORT or [IPV6]:PORT, got '" + std::string(listen) +
                                  "'");
  };
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad();
  std::string_view host = listen.substr(0, colon);
  const std::string_view port_text = listen.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const auto [end, err] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || err != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad();
  }
  return std::pair<std::string, uint16_t>(std::string(host), static_cast<uint16_t>(port));
}

}  // namespace greeting_consumer
