#include "cli/logging.h"

#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>

namespace acceptd {
namespace {

namespace json = boost::json;

TEST(LoggingTest, JsonStringsEscapeControlCharactersAndReplaceInvalidUtf8) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\te\x01"), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
  EXPECT_EQ(JsonString("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  // A lone continuation byte, a truncated sequence, an overlong and a surrogate.
  EXPECT_EQ(JsonString("x\x80y\xE2\x82z\xC0\xAF\xED\xA0\x80"),
            "\"x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD"
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  for (std::string_view s : {"x\x80y", "\xFF\xFE", "ok"}) {
    EXPECT_NO_THROW(json::parse(JsonString(s))) << JsonString(s);
  }
}

class LoggingToStreamTest : public ::testing::Test {
 protected:
  // A logger named `name` writing JSON lines into out_.
  std::shared_ptr<spdlog::logger> Logger(const std::string& name) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_formatter(MakeJsonFormatter());
    return std::make_shared<spdlog::logger>(name, sink);
  }
  json::object LastLine() {
    std::string line, last;
    std::istringstream in(out_.str());
    while (std::getline(in, line)) last = line;
    return json::parse(last).as_object();
  }
  void TearDown() override { spdlog::drop("access"); }

  std::ostringstream out_;
};

TEST_F(LoggingToStreamTest, AJsonLineHasTimeLevelAndMessage) {
  Logger("acceptd")->warn("job={} lease expired \"{}\"", "ab12", "q\n");
  const json::object line = LastLine();
  EXPECT_EQ(line.at("level").as_string(), "warning");
  EXPECT_EQ(line.at("message").as_string(), "job=ab12 lease expired \"q\n\"");
  const std::string time(line.at("time").as_string());
  ASSERT_EQ(time.size(), 24u) << time;  // 2026-12-05T09:12:01.123Z
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time.back(), 'Z');
}

TEST_F(LoggingToStreamTest, AnAccessLineHasItsFieldsInTheObject) {
  spdlog::drop("access");
  spdlog::register_logger(Logger("access"));
  LogConfig config;
  config.format = "json";
  config.access = true;
  http::AccessLog log = MakeAccessLog(config);
  ASSERT_TRUE(log);
  http::AccessRecord r;
  r.method = "GET";
  r.route = "/v1/jobs/{id}";
  r.status = 202;
  r.duration = std::chrono::microseconds(1500);
  r.bytes = 385;
  r.request_id = "req\"1";
  log(r);
  const json::object line = LastLine();
  EXPECT_EQ(line.at("log").as_string(), "access");
  EXPECT_EQ(line.at("level").as_string(), "info");
  EXPECT_EQ(line.at("method").as_string(), "GET");
  EXPECT_EQ(line.at("route").as_string(), "/v1/jobs/{id}");
  EXPECT_EQ(line.at("status").as_int64(), 202);
  EXPECT_DOUBLE_EQ(line.at("duration_ms").to_number<double>(), 1.5);
  EXPECT_EQ(line.at("bytes").as_int64(), 385);
  EXPECT_EQ(line.at("request_id").as_string(), "req\"1");
  EXPECT_TRUE(line.at("key").is_null());
  EXPECT_FALSE(line.contains("message"));

  r.bytes.reset();  // a streamed body
  r.key = "ops";
  log(r);
  EXPECT_TRUE(LastLine().at("bytes").is_null());
  EXPECT_EQ(LastLine().at("key").as_string(), "ops");
}

TEST_F(LoggingToStreamTest, NoAccessLogUnlessConfigured) {
  LogConfig config;
  EXPECT_FALSE(MakeAccessLog(config));
}

}  // namespace
}  // namespace acceptd
