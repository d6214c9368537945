#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "api/job_document.h"

namespace acceptd::api {
namespace {

namespace json = boost::json;

Job SampleJob(JobState state) {
  Job j;
  j.id = *JobId::Parse("0123456789abcdef0123456789abcdef");
  j.queue = "q";
  j.state = state;
  j.created_at = j.updated_at = j.run_at = 1'700'000'000'000;
  j.attempts = 2;
  j.max_attempts = 3;
  return j;
}

// The hand-written serializer must produce valid JSON whatever the strings hold.
TEST(JobDocumentTest, EscapesArbitraryStringsIntoValidJson) {
  Job j = SampleJob(JobState::kFailed);
  const std::string nasty = std::string("quote\" backslash\\ newline\n tab\t nul") +
                            std::string(1, '\0') + "\x01 \xc3\xa9 end";
  j.error = JobError{"handler_error", nasty};
  j.progress = Progress{42, nasty};
  j.finished_at = j.expires_at = 1'700'000'001'000;
  json::value doc = json::parse(JobDocument(j));
  EXPECT_EQ(doc.at("error").at("message").as_string(), nasty);
  EXPECT_EQ(doc.at("progress").at("message").as_string(), nasty);
  EXPECT_EQ(doc.at("progress").at("percent").as_int64(), 42);
  EXPECT_EQ(doc.at("state").as_string(), "failed");
  EXPECT_EQ(doc.at("expires_at").as_string(), "2023-11-14T22:13:21.000Z");
}

TEST(JobDocumentTest, FieldsPresentByState) {
  json::value queued = json::parse(JobDocument(SampleJob(JobState::kQueued)));
  EXPECT_TRUE(queued.at("started_at").is_null());
  EXPECT_TRUE(queued.at("progress").is_null());
  EXPECT_TRUE(queued.at("expires_at").is_null());
  EXPECT_FALSE(queued.as_object().contains("result_url"));
  EXPECT_FALSE(queued.as_object().contains("error"));
  EXPECT_EQ(queued.at("status_url").as_string(), "/v1/jobs/0123456789abcdef0123456789abcdef");

  json::value done = json::parse(JobDocument(SampleJob(JobState::kSucceeded)));
  EXPECT_EQ(done.at("result_url").as_string(), "/v1/jobs/0123456789abcdef0123456789abcdef/result");
  EXPECT_EQ(done.at("attempts").as_int64(), 2);
  EXPECT_EQ(done.at("cancel_requested").as_bool(), false);
}

}  // namespace
}  // namespace acceptd::api
