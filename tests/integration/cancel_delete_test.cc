// POST /v1/jobs/{id}/cancel and DELETE /v1/jobs/{id} for queued, running
// and terminal jobs.
#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

// One sleep queue with a single slot, so a long job keeps later ones queued.
ServerOptions OneSlot() {
  return ServerOptions().WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
[queues.greeting]
handler = "greeting"
[queues.echo]
handler = "echo"
)");
}

TEST(IntegrationCancelTest, QueuedJobIsCanceledAtOnce) {
  ServerProcess s(OneSlot());
  const std::string blocker = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(blocker, "running");
  const std::string queued = s.SubmitOk("slow", R"({"ms":10})");
  EXPECT_EQ(Str(s.Job(queued), "state"), "queued");

  HttpResponse r = s.Post("/v1/jobs/" + queued + "/cancel");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  json::value doc = r.Json();
  ExpectValidJobDocument(doc, "cancel");
  EXPECT_EQ(Str(doc, "id"), queued);
  EXPECT_EQ(Str(doc, "state"), "canceled");

  HttpResponse status = s.Get("/v1/jobs/" + queued);
  EXPECT_EQ(status.status, 200);
  json::value after = status.Json();
  ExpectValidJobDocument(after, "status");
  EXPECT_EQ(Str(after, "state"), "canceled");
  EXPECT_EQ(Int(after, "attempts"), 0);
  EXPECT_TRUE(IsNull(after, "started_at")) << "a canceled queued job never ran";
  HttpResponse result = s.Get("/v1/jobs/" + queued + "/result");
  ExpectProblem(result, 409);
  EXPECT_EQ(Str(result.Json(), "state"), "canceled");

  // The blocker is unaffected.
  EXPECT_EQ(Str(s.Job(blocker), "state"), "running");
}

TEST(IntegrationCancelTest, DelayedJobCanBeCanceled) {
  ServerProcess s;
  const std::string id = s.SubmitOk("echo", "later", "?delay=60");
  HttpResponse r = s.Post("/v1/jobs/" + id + "/cancel");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(Str(r.Json(), "state"), "canceled");
  EXPECT_EQ(Str(s.Job(id), "state"), "canceled");
}

TEST(IntegrationCancelTest, RunningJobIsSignalledAndEndsCanceled) {
  ServerProcess s(OneSlot());
  const std::string id = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(id, "running");
  const std::string next = s.SubmitOk("greeting", R"({"name":"next"})");

  HttpResponse r = s.Post("/v1/jobs/" + id + "/cancel");
  ASSERT_EQ(r.status, 202) << Describe(r);
  json::value doc = r.Json();
  ExpectValidJobDocument(doc, "cancel");
  EXPECT_EQ(Str(doc, "state"), "running");
  EXPECT_EQ(Str(doc, "cancel_requested"), "true");

  json::object done = s.WaitState(id, "canceled", 10s);
  ExpectValidJobDocument(done, "canceled");
  EXPECT_EQ(Str(done, "cancel_requested"), "true");
  EXPECT_EQ(Int(done, "attempts"), 1);
  EXPECT_LT(TimeField(done, "finished_at") - TimeField(done, "started_at"), 10000)
      << "the sleep should stop early";
  HttpResponse status = s.Get("/v1/jobs/" + id);
  EXPECT_EQ(status.status, 200);
  ExpectProblem(s.Get("/v1/jobs/" + id + "/result"), 409);
  ExpectProblem(s.Post("/v1/jobs/" + id + "/cancel"), 409, "second cancel");
  EXPECT_EQ(Str(s.WaitTerminal(next), "state"), "succeeded");
}

TEST(IntegrationCancelTest, CanceledRunningJobFreesItsSlot) {
  ServerProcess s(OneSlot());
  const std::string first = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(first, "running");
  const std::string second = s.SubmitOk("slow", R"({"ms":10})");
  ASSERT_EQ(s.Post("/v1/jobs/" + first + "/cancel").status, 202);
  EXPECT_EQ(Str(s.WaitTerminal(first, 10s), "state"), "canceled");
  EXPECT_EQ(Str(s.WaitTerminal(second, 10s), "state"), "succeeded");
}

TEST(IntegrationCancelTest, CancelRequestedTwiceWhileRunningIsStillAccepted) {
  ServerProcess s(OneSlot());
  const std::string id = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(id, "running");
  HttpResponse a = s.Post("/v1/jobs/" + id + "/cancel");
  ASSERT_TRUE(a.status == 202) << Describe(a);
  HttpResponse b = s.Post("/v1/jobs/" + id + "/cancel");
  // Either still running (202 again) or already canceled (409).
  EXPECT_TRUE(b.status == 202 || b.status == 409) << Describe(b);
  EXPECT_EQ(Str(s.WaitTerminal(id, 10s), "state"), "canceled");
}

TEST(IntegrationDeleteTest, TerminalJobIsDeletedWith204) {
  ServerProcess s;
  const std::string ok = s.SubmitOk("greeting", R"({"name":"gone"})");
  const std::string failed = s.SubmitOk("fail", "{}", "?max_attempts=1");
  s.WaitState(ok, "succeeded");
  s.WaitState(failed, "failed");
  for (const std::string& id : {ok, failed}) {
    HttpResponse r = s.Delete("/v1/jobs/" + id);
    EXPECT_EQ(r.status, 204) << Describe(r);
    EXPECT_EQ(r.body, "");
    ExpectProblem(s.Get("/v1/jobs/" + id), 404, "status after delete");
    ExpectProblem(s.Get("/v1/jobs/" + id + "/result"), 404, "result after delete");
    ExpectProblem(s.Post("/v1/jobs/" + id + "/cancel"), 404, "cancel after delete");
    ExpectProblem(s.Delete("/v1/jobs/" + id), 404, "second delete");
  }
  EXPECT_EQ(s.Get("/v1/jobs").Json().at("jobs").as_array().size(), 0u);
}

TEST(IntegrationDeleteTest, QueuedJobIsCanceledAndRemovedWith202) {
  ServerProcess s;
  const std::string id = s.SubmitOk("echo", "never", "?delay=60");
  HttpResponse r = s.Delete("/v1/jobs/" + id);
  ASSERT_EQ(r.status, 202) << Describe(r);
  json::value doc = r.Json();
  EXPECT_EQ(Str(doc, "id"), id);
  EXPECT_EQ(Str(doc, "state"), "canceled");
  EXPECT_EQ(Str(doc, "cancel_requested"), "true");
  ExpectProblem(s.Get("/v1/jobs/" + id), 404, "status after delete");
  ExpectProblem(s.Delete("/v1/jobs/" + id), 404, "second delete");
  json::object q = s.Queue("echo");
  EXPECT_EQ(Int(q, "depth"), 0) << json::serialize(q);
}

TEST(IntegrationDeleteTest, DeletingAQueuedJobAnswersAWellFormedCanceledDocument) {
  // The 202 body is a status document like any other: canceled is terminal,
  // so finished_at and expires_at are set.
  ServerProcess s;
  const std::string id = s.SubmitOk("echo", "never", "?delay=60");
  HttpResponse r = s.Delete("/v1/jobs/" + id);
  ASSERT_EQ(r.status, 202) << Describe(r);
  ExpectValidJobDocument(r.Json(), "DELETE of a queued job");
}

TEST(IntegrationDeleteTest, RunningJobIsStoppedThenDeleted) {
  ServerProcess s(OneSlot());
  const std::string id = s.SubmitOk("slow", R"({"ms":30000})");
  s.WaitState(id, "running");
  const std::string next = s.SubmitOk("slow", R"({"ms":10})");
  HttpResponse r = s.Delete("/v1/jobs/" + id);
  ASSERT_EQ(r.status, 202) << Describe(r);
  EXPECT_EQ(Str(r.Json(), "cancel_requested"), "true");
  ASSERT_TRUE(WaitFor([&] { return s.Get("/v1/jobs/" + id).status == 404; }, 10s))
      << "the running job was never deleted: " << Describe(s.Get("/v1/jobs/" + id));
  ExpectProblem(s.Get("/v1/jobs/" + id + "/result"), 404);
  // Its slot went to the next job, and no count went astray.
  EXPECT_EQ(Str(s.WaitTerminal(next, 10s), "state"), "succeeded");
  json::object q = s.Queue("slow");
  const json::value& counts = q.at("counts");
  EXPECT_EQ(Int(q, "depth"), 0) << json::serialize(q);
  EXPECT_EQ(Int(counts, "running"), 0) << json::serialize(q);
  EXPECT_EQ(Int(counts, "canceled"), 0) << json::serialize(q);
  EXPECT_EQ(Int(counts, "succeeded"), 1) << json::serialize(q);
}

TEST(IntegrationDeleteTest, UnknownJobIs404) {
  ServerProcess s;
  ExpectProblem(s.Delete("/v1/jobs/ffffffffffffffffffffffffffffffff"), 404);
}

}  // namespace
}  // namespace acceptd::itest
