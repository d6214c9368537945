#include "webhooks/http_post.h"

namespace acceptd::webhooks {

namespace asio = boost::asio;

asio::awaitable<CallbackResponse> PostJson(const OutgoingPost& post, const AddressPolicy& policy,
                                           const NetworkSeams& seams) {
  outbound::HttpRequest request;
  request.method = "POST";
  request.url = post.url;
  request.headers = post.headers;
  request.body = post.body;
  request.content_type = "application/json";
  request.timeout = post.timeout;
  // Only the status matters to a callback: the body is not read, and the
  // connection is not kept (no pool).
  outbound::ClientOptions options;
  options.policy = &policy;
  options.seams = seams;
  // Named first: GCC 12 mishandles owning temporaries in co_await expressions.
  asio::awaitable<Result<outbound::HttpResponse>> sending =
      outbound::Send(std::move(request), std::move(options));
  auto response = co_await std::move(sending);
  if (!response) co_return CallbackResponse{std::nullopt, response.error().detail};
  co_return CallbackResponse{response->status, ""};
}

}  // namespace acceptd::webhooks
