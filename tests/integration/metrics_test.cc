// GET /metrics against the real binary: the Prometheus text format checked
// by promtool (Debian's prometheus package), the counts after real jobs,
// docs/operations.md listing exactly the metrics served, the metrics scope,
// and the request id and access log that come with the same seam.
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "harness.h"

namespace acceptd::itest {
namespace {

const char* kQueues = R"(
[queues.q]
handler = "echo"
concurrency = 2

[queues.bad]
handler = "fail"
max_attempts = 2
backoff = { base = 0, max = 0 }

[queues.later]
handler = "external"

[[schedules]]
name = "new-year"
cron = "@yearly"
queue = "later"
)";

// The families a scrape shows ("# TYPE name type").
std::set<std::string> Families(const std::string& text) {
  std::set<std::string> names;
  static const std::regex kType("^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kType)) names.insert(m[1]);
  }
  return names;
}

// The metric names docs/operations.md lists in its "Metrics" section: the
// first backticked name of each table row.
std::set<std::string> DocumentedMetrics() {
  std::ifstream in(std::string(ACCEPTD_SOURCE_DIR) + "/docs/operations.md");
  std::set<std::string> names;
  bool in_section = false;
  static const std::regex kRow(R"(^\| `((acceptd|process)_[a-z_]+)`)");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Metrics";
    std::smatch m;
    if (in_section && std::regex_search(line, m, kRow)) names.insert(m[1]);
  }
  return names;
}

// The value of the sample line that starts with `series` ("name{labels}").
double Value(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) throw std::runtime_error("no sample " + series);
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(IntegrationMetricsTest, AScrapePassesPromtoolAndCountsTheJobs) {
  ServerProcess s(ServerOptions().WithQueues(kQueues));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(s.SubmitOk("q", "{\"n\":1}"));
  const std::string bad = s.SubmitOk("bad", "{}");
  for (const auto& id : ids) EXPECT_EQ(Str(s.WaitTerminal(id), "state"), "succeeded");
  EXPECT_EQ(Str(s.WaitTerminal(bad), "state"), "failed");
  s.Get("/v1/jobs/" + ids[0] + "?wait=1");  // a long-poll of a finished job

  HttpResponse r = s.Get("/metrics");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(r.Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = r.body;

  TempDir tmp;
  const std::string path = tmp.File("metrics.txt");
  std::ofstream(path) << text;
  ProcessResult check = RunProcess("/bin/sh", {"-c", "promtool check metrics < " + path});
  EXPECT_EQ(check.exit_code, 0) << "promtool (Debian: prometheus):\n"
                                << check.out << check.err << "\n---\n"
                                << text;

  EXPECT_EQ(Value(text, "acceptd_jobs_submitted_total{queue=\"q\"}"), 3);
  EXPECT_EQ(Value(text, "acceptd_jobs_succeeded_total{queue=\"q\"}"), 3);
  EXPECT_EQ(Value(text, "acceptd_jobs_started_total{queue=\"bad\"}"), 2);
  EXPECT_EQ(Value(text, "acceptd_jobs_retried_total{queue=\"bad\"}"), 1);
  EXPECT_EQ(Value(text, "acceptd_jobs_failed_total{queue=\"bad\"}"), 1);
  EXPECT_EQ(Value(text, "acceptd_queue_jobs{queue=\"q\",state=\"succeeded\"}"), 3);
  EXPECT_EQ(Value(text, "acceptd_job_run_duration_seconds_count{queue=\"q\"}"), 3);
  EXPECT_EQ(Value(text,
                  "acceptd_http_requests_total{method=\"POST\",route=\"/v1/queues/{queue}/"
                  "jobs\",status=\"2xx\"}"),
            4);
  EXPECT_GE(Value(text, "acceptd_http_connections"), 1);
  EXPECT_EQ(Value(text, "acceptd_schedule_fires_total{schedule=\"new-year\"}"), 0);
  EXPECT_EQ(Value(text, "acceptd_schedule_missed_total{schedule=\"new-year\"}"), 0);
  EXPECT_EQ(Value(text, "acceptd_longpoll_waiters"), 0);
  EXPECT_GT(Value(text, "process_resident_memory_bytes"), 1e6);
  EXPECT_EQ(text.find(ids[0]), std::string::npos) << "no job id in any label";

  const std::set<std::string> served = Families(text);
  const std::set<std::string> documented = DocumentedMetrics();
  for (const auto& name : served) {
    EXPECT_TRUE(documented.count(name)) << name << " is served but not in docs/operations.md";
  }
  for (const auto& name : documented) {
    EXPECT_TRUE(served.count(name)) << name << " is in docs/operations.md but not served";
  }
  // The example Grafana dashboard charts only metrics that exist.
  std::ifstream dashboard(std::string(ACCEPTD_SOURCE_DIR) + "/examples/grafana/acceptd.json");
  const std::string board((std::istreambuf_iterator<char>(dashboard)), {});
  ASSERT_NO_THROW(json::parse(board));
  static const std::regex kName(R"((acceptd|process)_[a-z_]+)");
  int charted = 0;
  for (auto it = std::sregex_iterator(board.begin(), board.end(), kName);
       it != std::sregex_iterator(); ++it, ++charted) {
    std::string name = it->str();
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!served.count(name) && name.ends_with(suffix)) {
        name.resize(name.size() - std::string_view(suffix).size());
      }
    }
    EXPECT_TRUE(served.count(name)) << it->str() << " in examples/grafana/acceptd.json";
  }
  EXPECT_GT(charted, 10);
}

// `acceptd keygen`: the key, and the config lines it printed.
std::pair<std::string, std::string> Keygen(const std::string& name, const std::string& scopes,
                                           const std::string& tenant = "") {
  std::vector<std::string> args = {"keygen", "--name", name, "--scopes", scopes};
  if (!tenant.empty()) args.insert(args.end(), {"--tenant", tenant});
  ProcessResult r = RunAcceptd(args);
  if (r.exit_code != 0) throw std::runtime_error("keygen failed: " + r.err);
  const size_t eol = r.out.find('\n');
  return {r.out.substr(0, eol), r.out.substr(eol + 1)};
}

TEST(IntegrationMetricsTest, WithKeysTheMetricsScopeReadsMetricsAndNothingElse) {
  const auto [prom_key, prom_toml] = Keygen("prometheus", "metrics");
  const auto [tenant_key, tenant_toml] = Keygen("acme-ops", "admin", "acme");
  ServerProcess s(ServerOptions().WithQueues(std::string(kQueues) + prom_toml + tenant_toml));
  EXPECT_EQ(s.Get("/metrics").status, 401);
  const Headers prom = {{"Authorization", "Bearer " + prom_key}};
  EXPECT_EQ(Http(s.port(), "GET", "/metrics", {}, prom).status, 200);
  EXPECT_EQ(Http(s.port(), "GET", "/v1/queues", {}, prom).status, 403);
  HttpResponse tenant =
      Http(s.port(), "GET", "/metrics", {}, {{"Authorization", "Bearer " + tenant_key}});
  EXPECT_EQ(tenant.status, 403) << "metrics cover every tenant";
}

TEST(IntegrationMetricsTest, RequestIdsAreEchoedAndTheAccessLogNamesThem) {
  ServerProcess s(
      ServerOptions().WithQueues(kQueues).WithLog("format = \"json\"\naccess = true\n"));
  HttpResponse r = Http(s.port(), "POST", "/v1/queues/q/jobs", "{}",
                        {{"Content-Type", "application/json"}, {"X-Request-Id", "client-7"}});
  ASSERT_EQ(r.status, 202) << Describe(r);
  EXPECT_EQ(r.Header("X-Request-Id"), "client-7");
  HttpResponse generated = s.Get("/healthz");
  EXPECT_EQ(generated.Header("X-Request-Id").size(), 16u);

  std::string line;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::istringstream err(s.Stderr());
        for (std::string l; std::getline(err, l);) {
          if (l.find("\"request_id\":\"client-7\"") != std::string::npos) line = l;
        }
        return !line.empty();
      },
      10s));
  const json::object access = json::parse(line).as_object();
  EXPECT_EQ(access.at("log").as_string(), "access");
  EXPECT_EQ(access.at("method").as_string(), "POST");
  EXPECT_EQ(access.at("route").as_string(), "/v1/queues/{queue}/jobs");
  EXPECT_EQ(access.at("status").as_int64(), 202);
  EXPECT_GT(access.at("bytes").as_int64(), 0);
  // Every other line is JSON too.
  std::istringstream err(s.Stderr());
  for (std::string l; std::getline(err, l);) {
    EXPECT_NO_THROW(json::parse(l)) << l;
  }
}

}  // namespace
}  // namespace acceptd::itest
