// The v1 API over a store that poses as a network database (GatedStore:
// RemoteCalls() is true) whose reads of one job hang, as they do when the
// database is slow or unreachable. The routes run on ONE event loop, as a
// server with one HTTP thread does: a read stuck on the database must not
// stall the other requests of that loop (a health check, a long-poll that
// its job's completion answers). Until reads went off the event loop, the
// stuck read held the loop's only thread and both waited with it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "../engine/engine_test_util.h"
#include "api/v1_api.h"
#include "http/router.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/gated_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::api {
namespace {

namespace asio = boost::asio;
using engine_testing::Event;
using engine_testing::kWait;
using engine_testing::MakeHandler;
using store_testing::GatedStore;
using store_testing::Must;
using store_testing::TempDir;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kPrompt = std::chrono::milliseconds(1000);

int StatusOf(const http::Response& res) { return static_cast<int>(res.result()); }

class RemoteStoreApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::shared_ptr<JobStore> sqlite(
        Must(SqliteStore::Open(dir_.path() + "/data/jobs.db"), "open store"));
    auto gated = std::make_unique<GatedStore>(sqlite);
    gate_ = gated.get();
    engine_ = std::make_unique<Engine>(
        engine_testing::Options(), std::move(gated),
        std::vector<QueueSpec>{engine_testing::Queue(
            "q", MakeHandler([this](std::string_view payload, std::string_view, JobContext&) {
              if (payload == "\"hold\"") release_.Wait();
              return HandlerSuccess{"{}", "application/json"};
            }))},
        SystemClock::Instance());
    engine_->Start();
    api_ = std::make_unique<V1Api>(*engine_, ApiOptions{}, streams_);
    api_->Register(router_);
    io_thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    gate_->Open();
    release_.Notify();
    io_.stop();
    io_thread_.join();
    engine_.reset();
  }

  // Starts a request on the event loop; the future gets its response.
  std::future<http::Response> Start(const std::string& target) {
    auto req = std::make_shared<http::Request>(http::Verb::get, target, 11);
    auto promise = std::make_shared<std::promise<http::Response>>();
    auto future = promise->get_future();
    asio::co_spawn(io_, router_.Route(*req),
                   [req, promise](std::exception_ptr e, http::Response res) {
                     if (e) {
                       promise->set_exception(e);
                     } else {
                       promise->set_value(std::move(res));
                     }
                   });
    return future;
  }

  Job Submit(std::string payload) {
    SubmitRequest r = engine_testing::Request("q", std::move(payload));
    return Must(engine_testing::SubmitSync(*engine_, std::move(r)), "submit");
  }

  // How many ids the store was asked to read, gated or not.
  size_t IdsRead() const {
    size_t n = 0;
    for (size_t size : gate_->get_many_sizes()) n += size;
    return n;
  }

  // Waits (with a deadline) for `pred`.
  template <typename Pred>
  bool WaitUntil(Pred pred) {
    const auto deadline = SteadyClock::now() + kWait;
    while (!pred()) {
      if (SteadyClock::now() >= deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

  TempDir dir_;
  GatedStore* gate_ = nullptr;
  Event release_;
  std::unique_ptr<Engine> engine_;
  StreamSlots streams_;  // declared before api_: outlives it
  std::unique_ptr<V1Api> api_;
  http::Router router_;
  asio::io_context io_;
  std::thread io_thread_;
};

TEST_F(RemoteStoreApiTest, AStuckStoreReadDoesNotStallHealthChecksOrLongPollsOnTheSameLoop) {
  const Job waited = Submit("\"hold\"");
  const Job stuck = Submit("{}");
  // A long-poll for a job that runs until released: it waits on a watcher.
  auto long_poll = Start("/v1/jobs/" + waited.id.ToHex() + "?wait=30");
  ASSERT_TRUE(WaitUntil([&] { return engine_->watchers().size() == 1; }))
      << "the long-poll never waited";
  // It reads the job once more after it starts watching (so a change in
  // between is not missed). Reads are coalesced into one GetMany, and a
  // GetMany waits while any of its ids is gated: close the gate only once
  // that read has left, or it may share the stuck read's batch.
  ASSERT_TRUE(WaitUntil([&] { return IdsRead() >= 2; })) << "the long-poll never read again";

  // A read that the database does not answer.
  gate_->Close(stuck.id);
  auto stuck_poll = Start("/v1/jobs/" + stuck.id.ToHex());
  ASSERT_TRUE(WaitUntil([&] { return gate_->blocked() == 1; }))
      << "the read never reached the gate";

  auto asked = SteadyClock::now();
  auto health = Start("/healthz");
  ASSERT_EQ(health.wait_for(kPrompt), std::future_status::ready)
      << "/healthz waited behind a stuck store read";
  EXPECT_EQ(StatusOf(health.get()), 200);
  std::printf("[ figure ] /healthz beside a stuck store read: %.2f ms\n",
              std::chrono::duration<double, std::milli>(SteadyClock::now() - asked).count());

  asked = SteadyClock::now();
  release_.Notify();
  ASSERT_EQ(long_poll.wait_for(kPrompt), std::future_status::ready)
      << "the long-poll was not answered when its job finished";
  EXPECT_EQ(StatusOf(long_poll.get()), 302);
  std::printf("[ figure ] long-poll answered beside a stuck store read: %.2f ms after release\n",
              std::chrono::duration<double, std::milli>(SteadyClock::now() - asked).count());

  EXPECT_EQ(stuck_poll.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout)
      << "the gated read should still be waiting";
  gate_->Open();
  ASSERT_EQ(stuck_poll.wait_for(kWait), std::future_status::ready);
  EXPECT_LT(StatusOf(stuck_poll.get()), 400);
}

}  // namespace
}  // namespace acceptd::api
