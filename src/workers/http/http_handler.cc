#include "workers/http/http_handler.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <exception>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/status.hpp>

#include "outbound/http_client.h"
#include "webhooks/address_policy.h"

namespace acceptd {

namespace asio = boost::asio;

namespace {

// How often a waiting attempt looks at JobContext::cancelled(): the bound on
// how late a cancel or a timeout aborts the request.
constexpr std::chrono::milliseconds kCancelPoll{20};
// The start of a refused answer's body kept in the job's error.
constexpr size_t kErrorBodyBytes = 512;
// The engine's per-attempt timeout ends a request (cancelled()); this only
// bounds one that nothing else would (a per-job timeout is at most 7 days).
constexpr Millis kRequestBackstop = 8LL * 24 * 3600 * 1000;

// Headers acceptd sets itself: framing, routing and the retry headers.
constexpr std::array<std::string_view, 7> kReservedHeaders = {
    "host",           "content-length", "transfer-encoding", "connection", "idempotency-key",
    "acceptd-job-id", "acceptd-attempt"};

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The start of a backend's body, fit for a job's error message (JSON text):
// at most kErrorBodyBytes, cut at a character boundary, control characters
// as spaces, invalid UTF-8 as '?'.
std::string Snippet(std::string_view body) {
  std::string out;
  size_t i = 0;
  while (i < body.size() && out.size() < kErrorBodyBytes) {
    const auto c = static_cast<unsigned char>(body[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    bool valid = len > 0 && i + len <= body.size();
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(body[i + k]) & 0xc0) == 0x80;
    }
    if (!valid) {
      out += '?';
      ++i;
      continue;
    }
    if (out.size() + len > kErrorBodyBytes) break;
    if (len == 1) {
      out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    } else {
      out.append(body.substr(i, len));
    }
    i += len;
  }
  if (i < body.size()) out += "...";
  return out;
}

std::string StatusText(int status, std::string_view body) {
  const std::string_view reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  std::string text = fmt::format("the backend answered {}", status);
  if (!reason.empty() && reason != "<unknown-status>") text += fmt::format(" {}", reason);
  if (!body.empty()) text += ": " + Snippet(body);
  return text;
}

class HttpHandler final : public Handler {
 public:
  HttpHandler(HttpHandlerConfig config, int concurrency)
      : config_(std::move(config)),
        pool_(outbound::ConnectionPool::Options{
            .max_idle_per_host = static_cast<size_t>(std::max(concurrency, 1)),
            .max_idle_time = outbound::kDefaultMaxIdleTime}) {}

  ~HttpHandler() override {
    if (thread_.joinable()) {
      io_.stop();
      thread_.join();
    }
  }

  HandlerOutcome Run(std::string_view payload, std::string_view content_type,
                     JobContext& ctx) override {
    // Started by the first attempt: a handler made only to check the config
    // costs no thread.
    std::call_once(started_, [this] {
      thread_ = std::thread([this] {
        auto guard = asio::make_work_guard(io_);
        io_.run();
      });
    });
    outbound::HttpRequest request;
    request.method = config_.method;
    request.url = config_.url;
    for (const auto& [name, value] : config_.headers) request.headers.emplace_back(name, value);
    const std::string id = ctx.job_id().ToHex();
    request.headers.emplace_back("Idempotency-Key", id);
    request.headers.emplace_back("Acceptd-Job-Id", id);
    request.headers.emplace_back("Acceptd-Attempt", std::to_string(ctx.attempt()));
    request.body = std::string(payload);
    request.content_type = std::string(content_type);
    request.timeout = kRequestBackstop;
    request.max_response_body = config_.max_result_bytes;

    outbound::ClientOptions options;  // no SSRF guard: the operator chose the URL
    options.verify_tls = config_.verify_tls;
    options.pool = &pool_;
    auto abort = std::make_shared<outbound::AbortSignal>();
    auto answer = std::make_shared<std::promise<Result<outbound::HttpResponse>>>();
    std::future<Result<outbound::HttpResponse>> answered = answer->get_future();
    asio::co_spawn(io_, Call(std::move(request), std::move(options), abort, answer),
                   [answer](std::exception_ptr e) {
                     if (e) answer->set_value(Error::Internal("the HTTP request threw"));
                   });
    while (answered.wait_for(kCancelPoll) != std::future_status::ready) {
      if (ctx.cancelled()) {
        // The engine has already recorded the timeout or the cancel; the
        // request ends on the I/O thread, its answer is dropped.
        abort->Abort();
        return HandlerFailure("the attempt was cancelled or timed out", true, "canceled");
      }
    }
    return Outcome(answered.get());
  }

 private:
  static asio::awaitable<void> Call(
      outbound::HttpRequest request, outbound::ClientOptions options,
      std::shared_ptr<outbound::AbortSignal> abort,
      std::shared_ptr<std::promise<Result<outbound::HttpResponse>>> answer) {
    // Named first: GCC 12 mishandles owning temporaries in co_await expressions.
    asio::awaitable<Result<outbound::HttpResponse>> sending =
        outbound::Send(std::move(request), std::move(options), std::move(abort));
    Result<outbound::HttpResponse> response = co_await std::move(sending);
    answer->set_value(std::move(response));
  }

  HandlerOutcome Outcome(Result<outbound::HttpResponse> answered) const {
    if (!answered) {
      const Error& e = answered.error();
      if (e.code == ErrorCode::kPayloadTooLarge) {
        return HandlerFailure(
            fmt::format("the backend's response is larger than max_result_bytes ({} bytes)",
                        config_.max_result_bytes),
            false, "result_too_large");
      }
      return HandlerFailure("the backend did not answer: " + e.detail, true, "backend_unreachable");
    }
    outbound::HttpResponse& r = *answered;
    if (r.status >= 200 && r.status < 300) {
      return HandlerSuccess{std::move(r.body), r.content_type.empty()
                                                   ? std::string("application/octet-stream")
                                                   : std::move(r.content_type)};
    }
    const bool retryable = r.status == 408 || r.status == 429 || r.status >= 500;
    HandlerFailure failure(StatusText(r.status, r.body), retryable, "backend_status");
    if (retryable && !r.retry_after.empty()) {
      const UnixMillis now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      failure.retry_after = ParseRetryAfter(r.retry_after, now);
    }
    return failure;
  }

  const HttpHandlerConfig config_;
  asio::io_context io_{1};
  outbound::ConnectionPool pool_;  // after io_: closed before it
  std::once_flag started_;
  std::thread thread_;
};

}  // namespace

std::optional<Millis> ParseRetryAfter(std::string_view value, UnixMillis now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Anything beyond a year is a year: the engine caps it at backoff.max.
    if (value.size() > 8) return Millis{366} * 24 * 3600 * 1000;
    return static_cast<Millis>(std::stoll(std::string(value))) * 1000;
  }
  const std::string text(value);
  // RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"}) {
    tm t{};
    const char* end = strptime(text.c_str(), format, &t);
    if (end == nullptr || *end != '\0') continue;
    const time_t at = timegm(&t);
    if (at == static_cast<time_t>(-1)) return std::nullopt;
    return std::max<Millis>(0, static_cast<Millis>(at) * 1000 - now);
  }
  return std::nullopt;
}

Result<std::shared_ptr<Handler>> MakeHttpHandler(const QueueConfig& queue) {
  const HttpHandlerConfig& http = queue.http;
  const std::string key = "config key 'queues." + queue.name + ".";
  if (auto target = webhooks::ParseCallbackUrl(http.url); !target) {
    return Error::InvalidArgument(key + "url': " + target.error().detail);
  }
  for (const auto& [name, value] : http.headers) {
    const std::string where = key + "headers." + name + "': ";
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return Error::InvalidArgument(where + "is not a valid header name");
    }
    if (value.find_first_of("\r\n", 0) != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return Error::InvalidArgument(where + "must not contain line breaks or NUL");
    }
    const std::string lower = Lower(name);
    if (std::find(kReservedHeaders.begin(), kReservedHeaders.end(), lower) !=
        kReservedHeaders.end()) {
      return Error::InvalidArgument(where + "is set by acceptd");
    }
  }
  return std::shared_ptr<Handler>(std::make_shared<HttpHandler>(http, queue.concurrency));
}

}  // namespace acceptd
