// The CLI's pure pieces: --data handling and content-type guessing, exit
// codes by state, and the two progress renderings.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "cli/client_commands.h"

namespace acceptd::cli {
namespace {

using client::JobStatus;

TEST(ClientCliPayloadTest, LiteralJsonIsSentAsJson) {
  std::istringstream in;
  auto p = ReadPayload(std::string(R"({"name":"x"})"), "", in);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->body, R"({"name":"x"})");
  EXPECT_EQ(p->content_type, "application/json");
}

TEST(ClientCliPayloadTest, LiteralTextIsOctetStream) {
  std::istringstream in;
  auto p = ReadPayload(std::string("hello"), "", in);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->body, "hello");
  EXPECT_EQ(p->content_type, "application/octet-stream");
}

TEST(ClientCliPayloadTest, ExplicitContentTypeWins) {
  std::istringstream in;
  auto p = ReadPayload(std::string("{}"), "text/plain", in);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->content_type, "text/plain");
}

TEST(ClientCliPayloadTest, DashReadsStdin) {
  std::istringstream in(std::string("a\0b\n", 4));
  auto p = ReadPayload(std::string("-"), "", in);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->body, std::string("a\0b\n", 4));
  EXPECT_EQ(p->content_type, "application/octet-stream");
}

TEST(ClientCliPayloadTest, AtReadsAFile) {
  const std::string path = ::testing::TempDir() + "/acceptd-payload.json";
  {
    std::ofstream out(path, std::ios::binary);
    out << "[1, 2]";
  }
  std::istringstream in;
  auto p = ReadPayload("@" + path, "", in);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->body, "[1, 2]");
  EXPECT_EQ(p->content_type, "application/json");
  std::remove(path.c_str());
}

TEST(ClientCliPayloadTest, MissingFileIsNamed) {
  std::istringstream in;
  auto p = ReadPayload(std::string("@/nonexistent/payload"), "", in);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().detail.find("/nonexistent/payload"), std::string::npos);
}

TEST(ClientCliPayloadTest, NoDataSendsNothing) {
  std::istringstream in("ignored");
  auto p = ReadPayload(std::nullopt, "", in);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->body, "");
  EXPECT_EQ(p->content_type, "");
}

TEST(ClientCliExitCodeTest, ByState) {
  EXPECT_EQ(ExitCodeForState("succeeded"), 0);
  EXPECT_EQ(ExitCodeForState("queued"), 0);
  EXPECT_EQ(ExitCodeForState("running"), 0);
  EXPECT_EQ(ExitCodeForState("failed"), 1);
  EXPECT_EQ(ExitCodeForState("canceled"), 1);
}

JobStatus Running(int percent, std::string message) {
  JobStatus st;
  st.http_status = 202;
  st.state = "running";
  st.progress = client::Progress{percent, std::move(message)};
  return st;
}

TEST(ClientCliProgressTest, BarIsProportional) {
  EXPECT_EQ(ProgressBar(Running(50, "half way")), "[##########          ]  50% half way");
  EXPECT_EQ(ProgressBar(Running(100, "done")), "[####################] 100% done");
  EXPECT_EQ(ProgressBar(Running(0, "")), "[                    ]   0% running");
}

TEST(ClientCliProgressTest, BarWithoutProgressShowsTheState) {
  JobStatus st;
  st.http_status = 202;
  st.state = "queued";
  EXPECT_EQ(ProgressBar(st), "[                    ]   0% queued");
}

TEST(ClientCliProgressTest, BarIsCutToTheTerminalWidth) {
  EXPECT_EQ(ProgressBar(Running(50, std::string(200, 'x')), 40).size(), 40u);
}

TEST(ClientCliProgressTest, PlainLine) {
  EXPECT_EQ(ProgressLine(Running(50, "slept 5 of 10 ms")), "state running 50% slept 5 of 10 ms");
  JobStatus st;
  st.state = "queued";
  EXPECT_EQ(ProgressLine(st), "state queued");
  EXPECT_EQ(ProgressLine(Running(7, "two\nlines")), "state running 7% two lines");
}

TEST(ClientCliOutcomeTest, FailedNamesTheError) {
  JobStatus st;
  st.http_status = 200;
  st.id = "abc";
  st.state = "failed";
  st.document = boost::json::parse(R"({"error":{"type":"handler_error","message":"boom"}})");
  EXPECT_EQ(OutcomeLine(st), "job abc failed: handler_error: boom");
  st.state = "canceled";
  EXPECT_EQ(OutcomeLine(st), "job abc was canceled");
}

}  // namespace
}  // namespace acceptd::cli
