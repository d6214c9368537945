#include "http/problem.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace acceptd::http {
namespace {

boost::json::object Doc(const Response& r) { return boost::json::parse(r.body()).as_object(); }

TEST(ProblemTest, DocumentHasTypeTitleStatusAndDetail) {
  Response r = Problem(Status::not_found, "no such job");
  EXPECT_EQ(r.result(), Status::not_found);
  EXPECT_EQ(std::string(r[Field::content_type]), "application/problem+json");
  auto doc = Doc(r);
  EXPECT_EQ(doc.at("type").as_string(), "about:blank");
  EXPECT_EQ(doc.at("title").as_string(), "Not Found");
  EXPECT_EQ(doc.at("status").as_int64(), 404);
  EXPECT_EQ(doc.at("detail").as_string(), "no such job");
}

TEST(ProblemTest, ExtraMembersAreAdded) {
  Response r = Problem(Status::conflict, "the job is already succeeded", {{"state", "succeeded"}});
  auto doc = Doc(r);
  EXPECT_EQ(doc.at("title").as_string(), "Conflict");
  EXPECT_EQ(doc.at("status").as_int64(), 409);
  EXPECT_EQ(doc.at("state").as_string(), "succeeded");
}

TEST(ProblemTest, DetailIsEscapedAsJson) {
  Response r = Problem(Status::bad_request, "bad \"quote\" and \\ and \n newline");
  EXPECT_EQ(Doc(r).at("detail").as_string(), "bad \"quote\" and \\ and \n newline");
}

TEST(ProblemTest, ErrorProblemUsesTheTableAndOnlyTheClientSafeDetail) {
  Error e{ErrorCode::kUnavailable, "sqlite: disk I/O error at /secret/path", "store unavailable"};
  Response r = Problem(e, {{"retry", true}});
  EXPECT_EQ(r.result(), Status::service_unavailable);
  EXPECT_EQ(std::string(r[Field::content_type]), "application/problem+json");
  auto doc = Doc(r);
  EXPECT_EQ(doc.at("status").as_int64(), 503);
  EXPECT_EQ(doc.at("title").as_string(), "Service Unavailable");
  EXPECT_EQ(doc.at("detail").as_string(), "store unavailable");
  EXPECT_EQ(doc.at("code").as_string(), "unavailable");
  EXPECT_EQ(doc.at("retry").as_bool(), true);
  EXPECT_EQ(r.body().find("/secret/path"), std::string::npos) << "internal message leaked";
}

TEST(ProblemTest, ErrorCodeToStatusTable) {
  const std::pair<ErrorCode, Status> table[] = {
      {ErrorCode::kInvalidArgument, Status::bad_request},
      {ErrorCode::kNotFound, Status::not_found},
      {ErrorCode::kConflict, Status::conflict},
      {ErrorCode::kQueueFull, Status::service_unavailable},
      {ErrorCode::kPayloadTooLarge, Status::payload_too_large},
      {ErrorCode::kStaleLease, Status::conflict},
      {ErrorCode::kUnavailable, Status::service_unavailable},
      {ErrorCode::kInternal, Status::internal_server_error},
  };
  for (auto [code, status] : table) {
    EXPECT_EQ(StatusFor(code), status) << ToString(code);
    Error e{code, "internal text", "client text"};
    Response r = Problem(e);
    EXPECT_EQ(r.result(), status) << ToString(code);
    auto doc = Doc(r);
    EXPECT_EQ(doc.at("status").as_int64(), static_cast<int>(status)) << ToString(code);
    EXPECT_EQ(doc.at("code").as_string(), ToString(code));
    EXPECT_EQ(doc.at("detail").as_string(), "client text");
  }
}

TEST(ProblemTest, NamedErrorConstructorsKeepBackendTextOutOfTheDetail) {
  EXPECT_EQ(Error::StaleLease("token 7 != 8").detail, "the job's lease has moved on");
  EXPECT_EQ(Error::Internal("segfault-ish").detail, "internal error");
  EXPECT_EQ(Error::Unavailable("disk full").detail, "service unavailable");
  EXPECT_EQ(Error::NotFound("no such job").detail, "no such job");
}

}  // namespace
}  // namespace acceptd::http
