// The v1 API over a failing store, driven through the router without sockets:
// a submit whose batch fails at any step (BeginWrite, Insert, Claim, Commit)
// never answers 202, but 503 with Retry-After (kUnavailable) or 500
// (kInternal), and leaves no job; a failing read answers 503 / 500; /readyz
// follows the store. Then disk faults under a real SQLite through FaultVfs: a
// full disk answers 503 + Retry-After and makes /readyz not ready until space
// returns (no restart); a failed fsync stops every write until a restart.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "../engine/engine_test_util.h"
#include "api/v1_api.h"
#include "http/router.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/fault_vfs.h"
#include "store/testing/faulty_store.h"
#include "store/testing/store_test_util.h"

namespace acceptd::api {
namespace {

namespace asio = boost::asio;
using engine_testing::kWait;
using engine_testing::MakeHandler;
using store_testing::FaultVfs;
using store_testing::FaultyStore;
using store_testing::Must;
using store_testing::TempDir;
using Op = FaultyStore::Op;

// An engine with the v1 routes, called like the server would.
class ApiHarness {
 public:
  explicit ApiHarness(std::unique_ptr<JobStore> store) {
    engine_ = std::make_unique<Engine>(
        engine_testing::Options(), std::move(store),
        std::vector<QueueSpec>{engine_testing::Queue(
            "q", MakeHandler([](std::string_view, std::string_view, JobContext&) {
              return HandlerSuccess{"{}", "application/json"};
            }))},
        clock_);
    engine_->Start();
    api_ = std::make_unique<V1Api>(*engine_, ApiOptions{}, streams_);
    api_->Register(router_);
    io_thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }
  ~ApiHarness() {
    io_.stop();
    io_thread_.join();
    engine_.reset();
  }

  http::Response Call(http::Verb verb, const std::string& target, std::string body = {}) {
    http::Request req{verb, target, 11};
    if (!body.empty()) req.set(http::Field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    std::promise<http::Response> promise;
    auto future = promise.get_future();
    asio::co_spawn(io_, router_.Route(req), [&](std::exception_ptr e, http::Response res) {
      if (e) {
        promise.set_exception(e);
      } else {
        promise.set_value(std::move(res));
      }
    });
    if (future.wait_for(kWait) != std::future_status::ready) {
      throw store_testing::MustFailed("no answer from the API in time");
    }
    return future.get();
  }
  http::Response Submit() { return Call(http::Verb::post, "/v1/queues/q/jobs", "{}"); }

  Engine& engine() { return *engine_; }

 private:
  FakeClock clock_;
  std::unique_ptr<Engine> engine_;
  StreamSlots streams_;  // declared before api_: outlives it
  std::unique_ptr<V1Api> api_;
  http::Router router_;
  asio::io_context io_;
  std::thread io_thread_;
};

int StatusOf(const http::Response& res) { return static_cast<int>(res.result()); }

// 503 (with Retry-After, if `retry_after`) for kUnavailable, 500 for kInternal.
::testing::AssertionResult IsFailureFor(const http::Response& res, ErrorCode code,
                                        bool retry_after = true) {
  const int want = code == ErrorCode::kUnavailable ? 503 : 500;
  if (StatusOf(res) != want) {
    return ::testing::AssertionFailure()
           << "status " << StatusOf(res) << ", expected " << want << ": " << res.body();
  }
  if (retry_after && code == ErrorCode::kUnavailable && res[http::Field::retry_after].empty()) {
    return ::testing::AssertionFailure() << "503 without Retry-After";
  }
  if (res.body().find("injected") != std::string::npos) {
    return ::testing::AssertionFailure() << "the internal message reached the client";
  }
  return ::testing::AssertionSuccess();
}

struct ApiFault {
  Op op;
  ErrorCode code;
};
std::string ApiFaultName(const ::testing::TestParamInfo<ApiFault>& info) {
  return std::string(FaultyStore::Name(info.param.op)) +
         (info.param.code == ErrorCode::kInternal ? "Internal" : "Unavailable");
}
std::vector<ApiFault> Faults(std::vector<Op> ops) {
  std::vector<ApiFault> out;
  for (Op op : ops) {
    for (ErrorCode code : {ErrorCode::kUnavailable, ErrorCode::kInternal})
      out.push_back({op, code});
  }
  return out;
}

class ApiStoreFaultTest : public ::testing::TestWithParam<ApiFault> {
 protected:
  TempDir dir_;
  std::shared_ptr<JobStore> inner_ =
      Must(SqliteStore::Open(dir_.path() + "/jobs.db"), "open store");
  FaultyStore* faulty_ = nullptr;
  std::unique_ptr<ApiHarness> api_ = [this] {
    auto store = std::make_unique<FaultyStore>(inner_);
    faulty_ = store.get();
    return std::make_unique<ApiHarness>(std::move(store));
  }();
};

using ApiSubmitFaultTest = ApiStoreFaultTest;

// The fault lasts until healed: the engine's own housekeeping batches may
// run into it too, before or after the submit's batch.
constexpr int64_t kUntilHealed = 1'000'000;

TEST_P(ApiSubmitFaultTest, AFailedBatchNeverAnswers202) {
  faulty_->FailNext(GetParam().op, GetParam().code, kUntilHealed);
  http::Response res = api_->Submit();
  EXPECT_TRUE(IsFailureFor(res, GetParam().code));
  EXPECT_GE(faulty_->injected(), 1);
  auto jobs = Must(inner_->List(ListParams{}), "List");
  EXPECT_TRUE(jobs.jobs.empty()) << "a refused submit left a job";
  // The fault is over: the next submit is accepted.
  faulty_->Heal();
  http::Response again = api_->Submit();
  EXPECT_EQ(StatusOf(again), 202) << again.body();
  EXPECT_FALSE(again[http::Field::location].empty());
}

INSTANTIATE_TEST_SUITE_P(EachStepOfTheBatch, ApiSubmitFaultTest,
                         ::testing::ValuesIn(Faults({Op::kBeginWrite, Op::kInsert, Op::kClaim,
                                                     Op::kCommit})),
                         ApiFaultName);

using ApiReadFaultTest = ApiStoreFaultTest;

TEST_P(ApiReadFaultTest, AFailedReadAnswersAnErrorThenRecovers) {
  http::Response submitted = api_->Submit();
  ASSERT_EQ(StatusOf(submitted), 202);
  const std::string id =
      boost::json::parse(submitted.body()).as_object().at("id").as_string().c_str();
  std::string target;
  switch (GetParam().op) {
    case Op::kGet:
      target = "/v1/jobs/" + id;
      break;
    case Op::kGetResult:
      target = "/v1/jobs/" + id + "/result";
      break;
    case Op::kList:
      target = "/v1/jobs";
      break;
    case Op::kCounts:
      target = "/v1/queues";
      break;
    case Op::kPing:
      target = "/readyz";
      break;
    default:
      FAIL() << "no route for " << FaultyStore::Name(GetParam().op);
  }
  faulty_->FailNext(GetParam().op, GetParam().code, kUntilHealed);
  http::Response res = api_->Call(http::Verb::get, target);
  EXPECT_GE(faulty_->injected(), 1) << target;
  if (GetParam().op == Op::kPing) {
    EXPECT_EQ(StatusOf(res), 503) << "/readyz follows the store";  // whatever the error kind
    EXPECT_FALSE(res[http::Field::retry_after].empty()) << "503 without Retry-After";
  } else {
    // A read's 503 says when to come back, as a submit's does (it did not).
    EXPECT_TRUE(IsFailureFor(res, GetParam().code)) << target;
  }
  faulty_->Heal();
  http::Response again = api_->Call(http::Verb::get, target);
  EXPECT_LT(StatusOf(again), 500) << target << ": " << again.body();
}

// GetPayload is read only by the compat API (tests/integration/compat_test.cc).
INSTANTIATE_TEST_SUITE_P(EachRead, ApiReadFaultTest,
                         ::testing::ValuesIn(Faults({Op::kGet, Op::kGetResult, Op::kList,
                                                     Op::kCounts, Op::kPing})),
                         ApiFaultName);

// Disk faults under a real SQLite store, through FaultVfs.
class ApiDiskFaultTest : public ::testing::Test {
 protected:
  void SetUp() override { vfs_.Reset(); }
  void TearDown() override {
    api_.reset();
    vfs_.Reset();
  }
  void Start() {
    api_ = std::make_unique<ApiHarness>(
        std::unique_ptr<JobStore>(Must(SqliteStore::Open(path_, FaultVfs::kName), "open")));
  }

  FaultVfs& vfs_ = FaultVfs::Instance();
  TempDir dir_;
  std::string path_ = dir_.path() + "/jobs.db";
  std::unique_ptr<ApiHarness> api_;
};

TEST_F(ApiDiskFaultTest, DiskFullAnswers503AndRecoversWithoutARestartOnceSpaceReturns) {
  Start();
  ASSERT_EQ(StatusOf(api_->Submit()), 202);
  ASSERT_EQ(StatusOf(api_->Call(http::Verb::get, "/readyz")), 200);

  vfs_.SetDiskFull(true);
  http::Response refused = api_->Submit();
  EXPECT_EQ(StatusOf(refused), 503) << refused.body();
  EXPECT_FALSE(refused[http::Field::retry_after].empty());
  EXPECT_NE(refused.body().find("disk is full"), std::string::npos) << refused.body();
  EXPECT_GT(vfs_.full_failures(), 0);
  EXPECT_EQ(StatusOf(api_->Call(http::Verb::get, "/readyz")), 503)
      << "not ready while the disk is full";
  EXPECT_EQ(StatusOf(api_->Call(http::Verb::get, "/readyz")), 503) << "still full";

  vfs_.SetDiskFull(false);
  // /readyz itself finds out that writes work again: no submit needed.
  EXPECT_EQ(StatusOf(api_->Call(http::Verb::get, "/readyz")), 200);
  EXPECT_EQ(StatusOf(api_->Submit()), 202);
}

TEST_F(ApiDiskFaultTest, ASubmitThatSucceedsAfterADiskFullClearsIt) {
  Start();
  vfs_.SetDiskFull(true);
  EXPECT_EQ(StatusOf(api_->Submit()), 503);
  vfs_.SetDiskFull(false);
  EXPECT_EQ(StatusOf(api_->Submit()), 202);
  const int64_t failures = vfs_.full_failures();
  EXPECT_EQ(StatusOf(api_->Call(http::Verb::get, "/readyz")), 200);
  EXPECT_EQ(vfs_.full_failures(), failures);
}

TEST_F(ApiDiskFaultTest, AFailedFsyncStopsEveryWriteUntilARestart) {
  Start();
  ASSERT_EQ(StatusOf(api_->Submit()), 202);
  vfs_.SetSyncFailure(true);
  http::Response unsynced = api_->Submit();
  EXPECT_EQ(StatusOf(unsynced), 503) << "never a 202 for an unsynced batch";
  EXPECT_FALSE(unsynced[http::Field::retry_after].empty());
  EXPECT_GT(vfs_.sync_failures(), 0);
  // Fail-stop: even once fsync would work again, nothing is written.
  vfs_.SetSyncFailure(false);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(StatusOf(api_->Submit()), 503);
  EXPECT_EQ(StatusOf(api_->Call(http::Verb::get, "/readyz")), 503);
  EXPECT_EQ(StatusOf(api_->Call(http::Verb::get, "/healthz")), 200) << "the process lives on";
  // An operator restart recovers.
  api_.reset();
  Start();
  EXPECT_EQ(StatusOf(api_->Call(http::Verb::get, "/readyz")), 200);
  EXPECT_EQ(StatusOf(api_->Submit()), 202);
}

}  // namespace
}  // namespace acceptd::api
