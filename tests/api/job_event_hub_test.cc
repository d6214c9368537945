// JobEventHub: the fan-out of job changes to GET /v1/events streams, with a
// bounded buffer per subscriber (pure: no engine, no I/O).
#include <gtest/gtest.h>

#include "api/job_event_hub.h"

namespace acceptd::api {
namespace {

JobChange Change(std::string queue, JobState state, bool removed = false) {
  JobChange c;
  c.id = JobId::New(1'700'000'000'000);
  c.queue = std::move(queue);
  c.state = state;
  c.removed = removed;
  return c;
}

TEST(JobEventHubTest, EventDataNamesIdQueueAndState) {
  JobChange c = Change("mail", JobState::kRunning);
  EXPECT_EQ(JobChangeData(c),
            R"({"id":")" + c.id.ToHex() + R"(","queue":"mail","state":"running"})");
  c.removed = true;
  EXPECT_NE(JobChangeData(c).find(R"("removed":true)"), std::string::npos);
}

TEST(JobEventHubTest, SubscribersGetEveryChangeInOrderAndOneWakePerBatch) {
  JobEventHub hub;
  int wakes = 0;
  auto sub = hub.Subscribe([&] { ++wakes; });
  EXPECT_EQ(hub.subscribers(), 1u);
  hub.Publish(Change("a", JobState::kQueued));
  hub.Publish(Change("a", JobState::kRunning));
  EXPECT_EQ(wakes, 1) << "wakes are coalesced until the subscriber takes its batch";
  auto batch = sub->Take();
  EXPECT_EQ(batch.dropped, 0u);
  const size_t queued = batch.events.find(R"("state":"queued")");
  const size_t running = batch.events.find(R"("state":"running")");
  ASSERT_NE(queued, std::string::npos) << batch.events;
  ASSERT_NE(running, std::string::npos) << batch.events;
  EXPECT_LT(queued, running);
  EXPECT_EQ(batch.events.rfind("event: job\ndata: {", 0), 0u) << batch.events;
  hub.Publish(Change("a", JobState::kSucceeded));
  EXPECT_EQ(wakes, 2) << "a new batch wakes again";
  EXPECT_TRUE(sub->Take().events.find("succeeded") != std::string::npos);
  EXPECT_TRUE(sub->Take().events.empty());
}

TEST(JobEventHubTest, ASlowSubscriberLosesItsBacklogAndIsToldHowMuch) {
  JobEventHub hub(3);
  auto slow = hub.Subscribe([] {});
  auto fast = hub.Subscribe([] {});
  for (int i = 0; i < 3; ++i) hub.Publish(Change("a", JobState::kQueued));
  EXPECT_EQ(fast->Take().dropped, 0u);
  // The fourth event overflows the slow one's buffer (3): all 4 are dropped,
  // and so is what follows until it takes.
  hub.Publish(Change("a", JobState::kRunning));
  hub.Publish(Change("a", JobState::kSucceeded));
  auto batch = slow->Take();
  EXPECT_EQ(batch.dropped, 5u);
  EXPECT_TRUE(batch.events.empty()) << "no partial history after a drop: the client re-reads";
  auto ok = fast->Take();
  EXPECT_EQ(ok.dropped, 0u) << "one slow subscriber does not cost the others";
  EXPECT_NE(ok.events.find("succeeded"), std::string::npos);
  // Taken: buffering again.
  hub.Publish(Change("a", JobState::kFailed));
  batch = slow->Take();
  EXPECT_EQ(batch.dropped, 0u);
  EXPECT_NE(batch.events.find("failed"), std::string::npos);
}

TEST(JobEventHubTest, DestroyingTheSubscriptionUnsubscribes) {
  JobEventHub hub;
  int wakes = 0;
  {
    auto sub = hub.Subscribe([&] { ++wakes; });
    EXPECT_EQ(hub.subscribers(), 1u);
  }
  EXPECT_EQ(hub.subscribers(), 0u);
  hub.Publish(Change("a", JobState::kQueued));
  EXPECT_EQ(wakes, 0);
}

}  // namespace
}  // namespace acceptd::api
