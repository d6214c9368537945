#include "webhooks/webhook_sender.h"

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "webhooks/http_post.h"

namespace acceptd::webhooks {

namespace asio = boost::asio;

WebhookSender::WebhookSender(WebhookSigner signer, WebhookSenderOptions options)
    : signer_(std::move(signer)), options_(std::move(options)), ctx_(1) {
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(ctx_);
    ctx_.run();
  });
}

WebhookSender::~WebhookSender() {
  ctx_.stop();
  thread_.join();
}

void WebhookSender::Send(const Job& job, std::function<void(CallbackResponse)> done) {
  asio::co_spawn(ctx_, Attempt(job),
                 [done = std::move(done)](std::exception_ptr e, CallbackResponse response) {
                   if (e) response = CallbackResponse{std::nullopt, "internal error"};
                   done(std::move(response));
                 });
}

asio::awaitable<CallbackResponse> WebhookSender::Attempt(Job job) {
  OutgoingPost post;
  post.url = job.callback->url;
  // The delivery's own bookkeeping is not part of the message (it would be
  // one attempt stale in it anyway).
  job.callback.reset();
  post.body = options_.render(job);
  post.timeout = options_.timeout;
  const std::string message_id = "msg_" + job.id.ToHex();
  const int64_t timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  post.headers = {{"webhook-id", message_id},
                  {"webhook-timestamp", std::to_string(timestamp)},
                  {"webhook-signature", signer_.Sign(message_id, timestamp, post.body)}};
  co_return co_await PostJson(post, options_.policy, options_.net);
}

}  // namespace acceptd::webhooks
