#include "loadgen/waiter.h"

#include <stdexcept>

namespace bench {
namespace {

// Repeats one GET until the status is not 202. With `query` empty this is a
// tight poll loop; with "?wait=N" each request is a long-poll.
class GetUntilDone : public CompletionWaiter {
 public:
  GetUntilDone(Target target, std::string query, std::string description)
      : target_(std::move(target)), query_(std::move(query)), desc_(std::move(description)) {}

  std::string Describe() const override { return desc_; }

  asio::awaitable<WaitOutcome> Wait(Conn& conn, const std::string& id,
                                    Clock::time_point deadline) override {
    const std::string req = GetRequest(target_, "/v1/jobs/" + id + query_);
    WaitOutcome out;
    for (;;) {
      Response res = co_await conn.RoundTrip(req);
      ++out.requests;
      const int status = static_cast<int>(res.result_int());
      if (status != 202) {
        out.status = status;
        co_return out;
      }
      if (Clock::now() >= deadline) co_return out;  // status 0: gave up
    }
  }

 private:
  Target target_;
  std::string query_;
  std::string desc_;
};

}  // namespace

std::unique_ptr<CompletionWaiter> MakeWaiter(const std::string& spec, const Target& target) {
  if (spec == "poll") {
    return std::make_unique<GetUntilDone>(
        target, "",
        "tight polling: GET /v1/jobs/{id} back to back on the job's keep-alive connection "
        "(no ?wait=)");
  }
  if (spec.rfind("longpoll:", 0) == 0) {
    const std::string seconds = spec.substr(9);
    if (seconds.empty() || seconds.find_first_not_of("0123456789.") != std::string::npos) {
      throw std::invalid_argument("--wait longpoll:SECONDS");
    }
    return std::make_unique<GetUntilDone>(
        target, "?wait=" + seconds,
        "long-polling: GET /v1/jobs/{id}?wait=" + seconds + " on the job's keep-alive connection");
  }
  throw std::invalid_argument("--wait must be 'poll' or 'longpoll:SECONDS'");
}

}  // namespace bench
