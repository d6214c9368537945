// Server-Sent Events, the pure parts: event ids, framing, and which events a
// snapshot of a job owes a client (live and after a Last-Event-ID resume).
#include "api/events.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace acceptd::api {
namespace {

constexpr UnixMillis kT0 = 1'764'000'000'000;

Job MakeJob(JobState state, int attempts, UnixMillis updated_at,
            std::optional<Progress> progress = std::nullopt) {
  Job j;
  j.id = *JobId::Parse("0123456789abcdef0123456789abcdef");
  j.queue = "q";
  j.state = state;
  j.attempts = attempts;
  j.max_attempts = 3;
  j.created_at = kT0;
  j.updated_at = updated_at;
  j.progress = std::move(progress);
  return j;
}

// The "event:" names and "id:" values of a rendered chunk, in order.
struct Parsed {
  std::vector<std::string> events, ids, data;
};
Parsed Parse(const std::string& text) {
  Parsed p;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("event: ", 0) == 0) p.events.push_back(line.substr(7));
    if (line.rfind("id: ", 0) == 0) p.ids.push_back(line.substr(4));
    if (line.rfind("data: ", 0) == 0) p.data.push_back(line.substr(6));
  }
  return p;
}

std::string Render(EventCursor& c, const Job& job) {
  std::string out;
  c.Render(job, out);
  return out;
}

TEST(EventIdTest, FormatsAndParsesBack) {
  const EventId id{JobState::kRunning, 2, kT0 + 5, EventKind::kProgress};
  EXPECT_EQ(FormatEventId(id), "running-2-1764000000005-p");
  EXPECT_EQ(ParseEventId("running-2-1764000000005-p"), id);
  const EventId s{JobState::kSucceeded, 1, kT0, EventKind::kState};
  EXPECT_EQ(ParseEventId(FormatEventId(s)), s);
}

TEST(EventIdTest, RejectsAnythingElse) {
  for (std::string_view bad :
       {"", "running", "running-1-2", "running-1-2-x", "running-1-2-s-", "sleeping-1-2-s",
        "running--2-s", "running-1--s", "running--1-2-s", "running-1-2-ss", "running-x-2-s",
        "running-1-2 -s", " running-1-2-s", "running-1-99999999999999999999999-s"}) {
    EXPECT_EQ(ParseEventId(bad), std::nullopt) << bad;
  }
}

TEST(SseFramingTest, EventWithIdAndData) {
  std::string out;
  AppendEvent(out, "state", "queued-0-1-s", R"({"a":1})");
  EXPECT_EQ(out, "event: state\nid: queued-0-1-s\ndata: {\"a\":1}\n\n");
}

TEST(SseFramingTest, EachLineOfDataGetsItsOwnField) {
  std::string out;
  AppendEvent(out, "x", {}, "one\ntwo\n");
  EXPECT_EQ(out, "event: x\ndata: one\ndata: two\ndata: \n\n");
}

TEST(SseFramingTest, ProgressDataIsJsonWithEscapedMessage) {
  const std::string data = ProgressData(Progress{40, "line\n\"quoted\""});
  EXPECT_EQ(data.find('\n'), std::string::npos);
  auto v = boost::json::parse(data).as_object();
  EXPECT_EQ(v.at("percent").as_int64(), 40);
  EXPECT_EQ(v.at("message").as_string(), "line\n\"quoted\"");
}

TEST(EventCursorTest, FirstRenderSendsStateThenProgress) {
  EventCursor c;
  const Parsed p = Parse(Render(c, MakeJob(JobState::kRunning, 1, kT0 + 10, Progress{30, "m"})));
  ASSERT_EQ(p.events, (std::vector<std::string>{"state", "progress"}));
  EXPECT_EQ(p.ids,
            (std::vector<std::string>{"running-1-1764000000010-s", "running-1-1764000000010-p"}));
  EXPECT_EQ(boost::json::parse(p.data[0]).as_object().at("state").as_string(), "running");
  EXPECT_EQ(p.data[1], R"({"percent":30,"message":"m"})");
}

TEST(EventCursorTest, LiveStreamSendsOnlyWhatChanged) {
  EventCursor c;
  EXPECT_EQ(Parse(Render(c, MakeJob(JobState::kQueued, 0, kT0))).events,
            std::vector<std::string>{"state"});
  EXPECT_EQ(Render(c, MakeJob(JobState::kQueued, 0, kT0)), "") << "a spurious wake";
  EXPECT_EQ(Parse(Render(c, MakeJob(JobState::kRunning, 1, kT0 + 1))).events,
            std::vector<std::string>{"state"});
  EXPECT_EQ(Parse(Render(c, MakeJob(JobState::kRunning, 1, kT0 + 2, Progress{10, "a"}))).events,
            std::vector<std::string>{"progress"});
  // Something else changed (e.g. cancel requested), not the progress.
  EXPECT_EQ(Render(c, MakeJob(JobState::kRunning, 1, kT0 + 3, Progress{10, "a"})), "");
  EXPECT_EQ(Parse(Render(c, MakeJob(JobState::kRunning, 1, kT0 + 4, Progress{20, "a"}))).events,
            std::vector<std::string>{"progress"});
  // A retry: a new state, progress unchanged from the failed attempt.
  EXPECT_EQ(Parse(Render(c, MakeJob(JobState::kQueued, 1, kT0 + 5, Progress{20, "a"}))).events,
            std::vector<std::string>{"state"});
  EXPECT_EQ(Parse(Render(c, MakeJob(JobState::kRunning, 2, kT0 + 6, Progress{20, "a"}))).events,
            std::vector<std::string>{"state"});
  // Terminal: the state event only; the document carries the last progress.
  const Job done = MakeJob(JobState::kSucceeded, 2, kT0 + 7, Progress{100, "done"});
  EXPECT_FALSE(c.SawEnd(done));
  EXPECT_EQ(Parse(Render(c, done)).events, std::vector<std::string>{"state"});
  EXPECT_TRUE(c.SawEnd(done));
  EXPECT_EQ(Render(c, done), "");
}

TEST(EventCursorTest, IdsNeverGoBackEvenIfTheClockDoes) {
  EventCursor c;
  Render(c, MakeJob(JobState::kRunning, 1, kT0 + 100, Progress{1, ""}));
  const Parsed p = Parse(Render(c, MakeJob(JobState::kRunning, 1, kT0 + 50, Progress{2, ""})));
  ASSERT_EQ(p.ids.size(), 1u);
  auto id = ParseEventId(p.ids[0]);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->millis, kT0 + 101) << "after the previous progress event, same millisecond";
  const Parsed q = Parse(Render(c, MakeJob(JobState::kSucceeded, 1, kT0 + 60)));
  ASSERT_EQ(q.ids.size(), 1u);
  EXPECT_EQ(ParseEventId(q.ids[0])->millis, kT0 + 101);
}

TEST(EventCursorTest, ResumeAfterTheEndSeesNothingNew) {
  const Job done = MakeJob(JobState::kSucceeded, 1, kT0 + 9);
  EventCursor c(EventId{JobState::kSucceeded, 1, kT0 + 9, EventKind::kState});
  EXPECT_TRUE(c.SawEnd(done));
  EXPECT_EQ(Render(c, done), "");
}

TEST(EventCursorTest, ResumeWhileRunningGetsTheTerminalEventOnlyOnceFinished) {
  const Job done = MakeJob(JobState::kSucceeded, 1, kT0 + 9, Progress{100, "x"});
  EventCursor c(EventId{JobState::kRunning, 1, kT0 + 3, EventKind::kProgress});
  EXPECT_FALSE(c.SawEnd(done));
  const Parsed p = Parse(Render(c, done));
  EXPECT_EQ(p.events, std::vector<std::string>{"state"});
  EXPECT_EQ(p.ids, std::vector<std::string>{"succeeded-1-1764000000009-s"});
}

TEST(EventCursorTest, ResumeInTheSameStateSendsOnlyNewerProgress) {
  const Job job = MakeJob(JobState::kRunning, 1, kT0 + 5, Progress{50, "half"});
  {
    EventCursor c(EventId{JobState::kRunning, 1, kT0 + 2, EventKind::kProgress});
    EXPECT_EQ(Parse(Render(c, job)).events, std::vector<std::string>{"progress"});
  }
  {
    EventCursor c(EventId{JobState::kRunning, 1, kT0 + 5, EventKind::kProgress});
    EXPECT_EQ(Render(c, job), "") << "seen already";
  }
  {
    // The state event of the same snapshot was seen, its progress event not.
    EventCursor c(EventId{JobState::kRunning, 1, kT0 + 5, EventKind::kState});
    EXPECT_EQ(Parse(Render(c, job)).events, std::vector<std::string>{"progress"});
  }
}

TEST(EventCursorTest, ResumeInAnotherStateOrAttemptSendsTheSnapshot) {
  const Job job = MakeJob(JobState::kRunning, 2, kT0 + 5, Progress{50, "half"});
  EventCursor c(EventId{JobState::kRunning, 1, kT0 + 9, EventKind::kProgress});
  EXPECT_EQ(Parse(Render(c, job)).events, (std::vector<std::string>{"state", "progress"}));
}

}  // namespace
}  // namespace acceptd::api
