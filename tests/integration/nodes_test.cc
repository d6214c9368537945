// GET /v1/nodes: the nodes sharing a store (each records itself at start and
// every heartbeat) and the running jobs per node.
#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

ServerOptions OneSlowQueue(std::shared_ptr<SharedStore> store) {
  return ServerOptions().Store(std::move(store)).WithQueues(R"(
[queues.slow]
handler = "sleep"
concurrency = 1
)");
}

const json::array& Nodes(const json::value& body) { return body.at("nodes").as_array(); }

TEST(IntegrationNodesTest, NodesSharingAStoreListEachOtherAndTheirRunningJobs) {
  auto store = SharedStore::Create();
  ServerProcess a(OneSlowQueue(store));
  ServerProcess b(OneSlowQueue(store));

  json::value view;
  ASSERT_TRUE(WaitFor(
      [&] {
        HttpResponse r = a.Get("/v1/nodes");
        if (r.status != 200) return false;
        view = r.Json();
        return Nodes(view).size() == 2;
      },
      10s))
      << json::serialize(view);
  const std::string a_name = Str(view, "node");
  const std::string b_name = Str(b.Get("/v1/nodes").Json(), "node");
  EXPECT_NE(a_name, b_name);
  EXPECT_EQ(view.at("heartbeat_seconds").to_number<double>(), 10.0);
  for (const json::value& n : Nodes(view)) {
    SCOPED_TRACE(json::serialize(n));
    EXPECT_TRUE(n.at("alive").as_bool());
    EXPECT_EQ(n.at("this_node").as_bool(), Str(n, "name") == a_name);
    EXPECT_EQ(Int(n, "running"), 0);
    EXPECT_FALSE(Str(n, "started_at").empty());
  }
  EXPECT_TRUE(view.at("workers").as_array().empty());

  const std::string id = a.SubmitOk("slow", R"({"ms":30000})");
  a.WaitState(id, "running");
  json::value busy;
  ASSERT_TRUE(WaitFor(
      [&] {
        busy = b.Get("/v1/nodes").Json();
        int64_t running = 0;
        for (const json::value& n : Nodes(busy)) running += Int(n, "running");
        return running == 1;
      },
      10s))
      << json::serialize(busy);
}

TEST(IntegrationNodesTest, AnExternalWorkersLeaseIsListedUnderWorkers) {
  ServerProcess s(ServerOptions().WithQueues(R"(
[queues.ext]
handler = "external"
)"));
  s.SubmitOk("ext", R"({"work":1})");
  HttpResponse lease = s.Post("/v1/queues/ext/leases?wait=10", "", "");
  ASSERT_EQ(lease.status, 200) << Describe(lease);
  const json::value body = s.Get("/v1/nodes").Json();
  const json::array& workers = body.at("workers").as_array();
  ASSERT_EQ(workers.size(), 1u) << json::serialize(body);
  EXPECT_EQ(Str(workers[0], "owner"), "worker:local");
  EXPECT_EQ(Int(workers[0], "running"), 1);
}

}  // namespace
}  // namespace acceptd::itest
