// GET /v1/queues: configuration and live counts per queue.
#include <set>

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

double Num(const json::value& v, std::string_view key) {
  const json::value* m = v.as_object().if_contains(key);
  if (!m || !m->is_number()) throw std::runtime_error("no number " + std::string(key));
  return m->to_number<double>();
}

void ExpectCounts(const json::object& q, int64_t queued, int64_t running, int64_t succeeded,
                  int64_t failed, int64_t canceled) {
  SCOPED_TRACE(json::serialize(q));
  const json::value& c = q.at("counts");
  EXPECT_EQ(c.as_object().size(), 5u);
  EXPECT_EQ(Int(c, "queued"), queued);
  EXPECT_EQ(Int(c, "running"), running);
  EXPECT_EQ(Int(c, "succeeded"), succeeded);
  EXPECT_EQ(Int(c, "failed"), failed);
  EXPECT_EQ(Int(c, "canceled"), canceled);
  EXPECT_EQ(Int(q, "depth"), queued + running);
}

TEST(IntegrationQueuesTest, DefaultQueuesExistWithDefaultSettings) {
  ServerProcess s;  // no [queues] table
  HttpResponse r = s.Get("/v1/queues");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  std::set<std::string> names;
  const json::value body = r.Json();
  for (const json::value& q : body.at("queues").as_array()) {
    SCOPED_TRACE(json::serialize(q));
    const std::string name = Str(q, "name");
    names.insert(name);
    EXPECT_EQ(Str(q, "handler"), name);
    EXPECT_EQ(Int(q, "concurrency"), 4);
    EXPECT_EQ(Int(q, "max_depth"), 10000);
    EXPECT_EQ(Int(q, "max_attempts"), 3);
    EXPECT_EQ(Num(q, "timeout"), 30.0);
    EXPECT_EQ(Num(q, "retention"), 86400.0);
    ExpectCounts(q.as_object(), 0, 0, 0, 0, 0);
  }
  EXPECT_EQ(names, (std::set<std::string>{"greeting", "echo", "sleep", "fail"}));
}

TEST(IntegrationQueuesTest, ConfiguredQueuesAndTheirCounts) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.alpha]
handler = "echo"
concurrency = 2
max_depth = 50
max_attempts = 4
timeout = 12.5
retention = 3600
[queues.broken]
handler = "fail"
max_attempts = 1
[queues.slow]
handler = "sleep"
concurrency = 1
)"));
  HttpResponse r = s.Get("/v1/queues");
  ASSERT_EQ(r.status, 200);
  std::set<std::string> names;
  const json::value body = r.Json();
  for (const json::value& q : body.at("queues").as_array()) names.insert(Str(q, "name"));
  EXPECT_EQ(names, (std::set<std::string>{"alpha", "broken", "slow"}))
      << "only the configured queues exist";

  json::object alpha = s.Queue("alpha");
  EXPECT_EQ(Str(alpha, "handler"), "echo");
  EXPECT_EQ(Int(alpha, "concurrency"), 2);
  EXPECT_EQ(Int(alpha, "max_depth"), 50);
  EXPECT_EQ(Int(alpha, "max_attempts"), 4);
  EXPECT_EQ(Num(alpha, "timeout"), 12.5);
  EXPECT_EQ(Num(alpha, "retention"), 3600.0);
  ExpectCounts(alpha, 0, 0, 0, 0, 0);
  EXPECT_EQ(Int(s.Queue("broken"), "max_attempts"), 1);
  EXPECT_EQ(Int(s.Queue("slow"), "concurrency"), 1);

  // Two succeeded echoes, one failure, and on the one-slot sleep queue: one
  // running, one queued, one canceled.
  for (int i = 0; i < 2; ++i) s.WaitState(s.SubmitOk("alpha", "x"), "succeeded");
  s.WaitState(s.SubmitOk("broken", "{}"), "failed");
  const std::string running = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(running, "running");
  s.SubmitOk("slow", R"({"ms":10})");
  const std::string canceled = s.SubmitOk("slow", R"({"ms":10})");
  ASSERT_EQ(s.Post("/v1/jobs/" + canceled + "/cancel").status, 200);

  ExpectCounts(s.Queue("alpha"), 0, 0, 2, 0, 0);
  ExpectCounts(s.Queue("broken"), 0, 0, 0, 1, 0);
  ExpectCounts(s.Queue("slow"), 1, 1, 0, 0, 1);

  // Cancel the long job: the queued one runs, and the counts follow.
  ASSERT_EQ(s.Post("/v1/jobs/" + running + "/cancel").status, 202);
  ASSERT_TRUE(WaitFor([&] { return Int(s.Queue("slow"), "depth") == 0; }, 10s));
  ExpectCounts(s.Queue("slow"), 0, 0, 1, 0, 2);
}

}  // namespace
}  // namespace acceptd::itest
