#include "cli/server_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "store/testing/store_test_util.h"
#include "workers/registry.h"

namespace acceptd {
namespace {

using store_testing::IsError;
using store_testing::IsOk;
using store_testing::TempDir;

class ServerConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& toml) {
    std::string path = dir_.path() + "/acceptd-" + std::to_string(files_++) + ".toml";
    std::ofstream(path) << toml;
    return path;
  }
  Status Load(const std::string& toml) { return LoadConfigFile(Write(toml), config_); }

  // Loading fails with kInvalidArgument and a detail that names `key`.
  ::testing::AssertionResult FailsNaming(const std::string& toml, const std::string& key) {
    ServerConfig fresh;
    Status st = LoadConfigFile(Write(toml), fresh);
    if (st.ok()) return ::testing::AssertionFailure() << "loaded fine:\n" << toml;
    if (st.error().code != ErrorCode::kInvalidArgument) {
      return ::testing::AssertionFailure() << "code " << ToString(st.error().code);
    }
    if (st.error().detail.find("'" + key + "'") == std::string::npos) {
      return ::testing::AssertionFailure()
             << "detail does not name '" << key << "': " << st.error().detail;
    }
    return ::testing::AssertionSuccess() << st.error().detail;
  }

  TempDir dir_;
  int files_ = 0;
  ServerConfig config_;
};

// A queue table with everything valid, for the error cases to spoil one key.
constexpr char kQueue[] = "[queues.x]\nhandler = \"echo\"\n";

TEST_F(ServerConfigTest, LoadsAValidFullFile) {
  ASSERT_TRUE(IsOk(Load(R"toml(
[server]
listen = "[::1]:9090"
store = "sqlite:/var/lib/acceptd/jobs.db"
threads = 3
body_limit = 2048
header_limit = 4096
max_header_count = 50
header_timeout = 2.5
request_timeout = 12.5
idle_timeout = 90
max_connections = 4000
shutdown_grace = 0
lease = 20
retry_after = 0.5
promote_interval = 0.1
purge_interval = 30
watch_poll_interval = 0.2
events_heartbeat = 5

[log]
dir = "/var/log/acceptd"
level = "debug"
max_size = 1048576
max_files = 7
format = "json"
access = true

[queues.emails]
handler = "echo"
concurrency = 16
max_depth = 500
max_attempts = 5
timeout = 2.5
retention = 0

[queues.emails.backoff]
base = 0.25
max = 60
jitter = 0.5

[queues."thumbs-v2.hi_res"]
handler = "sleep"
)toml")));
  const ServerConfig& c = config_;
  EXPECT_EQ(c.listen, "[::1]:9090");
  EXPECT_EQ(c.store, "sqlite:/var/lib/acceptd/jobs.db");
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.limits.body_limit, 2048u);
  EXPECT_EQ(c.limits.header_limit, 4096u);
  EXPECT_EQ(c.limits.request_timeout, 12'500);
  EXPECT_EQ(c.limits.idle_timeout, 90'000);
  EXPECT_EQ(c.limits.max_header_count, 50u);
  EXPECT_EQ(c.limits.header_timeout, 2'500);
  EXPECT_EQ(c.limits.max_connections, 4000u);
  EXPECT_EQ(c.engine.shutdown_grace, 0);
  EXPECT_EQ(c.engine.lease_duration, 20'000);
  EXPECT_EQ(c.engine.retry_after, 500);
  EXPECT_EQ(c.engine.promote_interval, 100);
  EXPECT_EQ(c.engine.purge_interval, 30'000);
  EXPECT_EQ(c.engine.watch_poll_interval, std::optional<Millis>(200));
  EXPECT_EQ(c.log.dir, "/var/log/acceptd");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.max_size, 1'048'576u);
  EXPECT_EQ(c.log.max_files, 7);
  EXPECT_EQ(c.log.format, "json");
  EXPECT_TRUE(c.log.access);

  ASSERT_EQ(c.queues.size(), 2u);
  const QueueConfig* emails = nullptr;
  const QueueConfig* thumbs = nullptr;
  for (const QueueConfig& q : c.queues) {
    if (q.name == "emails") emails = &q;
    if (q.name == "thumbs-v2.hi_res") thumbs = &q;
  }
  ASSERT_NE(emails, nullptr);
  ASSERT_NE(thumbs, nullptr);
  EXPECT_EQ(emails->handler, "echo");
  EXPECT_EQ(emails->concurrency, 16);
  EXPECT_EQ(emails->max_depth, 500);
  EXPECT_EQ(emails->max_attempts, 5);
  EXPECT_EQ(emails->timeout, 2'500);
  EXPECT_EQ(emails->retention, 0);
  EXPECT_EQ(emails->backoff.base, 250);
  EXPECT_EQ(emails->backoff.max, 60'000);
  EXPECT_DOUBLE_EQ(emails->backoff.jitter, 0.5);
  // Keys a queue leaves out take the defaults.
  EXPECT_EQ(thumbs->handler, "sleep");
  EXPECT_EQ(thumbs->concurrency, kDefaultConcurrency);
  EXPECT_EQ(thumbs->max_depth, kDefaultMaxDepth);
  EXPECT_EQ(thumbs->max_attempts, kDefaultMaxAttempts);
  EXPECT_EQ(thumbs->timeout, kDefaultTimeout);
  EXPECT_EQ(thumbs->retention, kDefaultRetention);
  EXPECT_EQ(thumbs->backoff.base, kDefaultBackoffBase);
  EXPECT_EQ(thumbs->backoff.max, kDefaultBackoffMax);
  EXPECT_EQ(config_.api.events_heartbeat, 5'000);
}

TEST_F(ServerConfigTest, KeysNotInTheFileKeepTheirValues) {
  config_.listen = "0.0.0.0:1234";
  config_.log.level = "warn";
  ASSERT_TRUE(IsOk(Load("[server]\nthreads = 2\n")));
  EXPECT_EQ(config_.listen, "0.0.0.0:1234");
  EXPECT_EQ(config_.log.level, "warn");
  EXPECT_EQ(config_.threads, 2);
  EXPECT_EQ(config_.store, kDefaultStore);
  EXPECT_TRUE(config_.queues.empty()) << "no [queues]: the caller uses DefaultQueues()";

  ServerConfig empty;
  ASSERT_TRUE(IsOk(LoadConfigFile(Write(""), empty)));
  EXPECT_EQ(empty.listen, kDefaultListen);
  EXPECT_EQ(empty.engine.lease_duration, kDefaultLeaseDuration);
}

TEST_F(ServerConfigTest, UnknownKeysAreErrorsNamingTheKey) {
  EXPECT_TRUE(FailsNaming("colour = \"blue\"\n", "colour"));
  EXPECT_TRUE(FailsNaming("[server]\nlisten_on = \"127.0.0.1:1\"\n", "server.listen_on"));
  EXPECT_TRUE(FailsNaming("[log]\nverbose = true\n", "log.verbose"));
  EXPECT_TRUE(FailsNaming(std::string(kQueue) + "concurency = 4\n", "queues.x.concurency"));
  EXPECT_TRUE(FailsNaming(std::string(kQueue) + "[queues.x.backoff]\nfactor = 2\n",
                          "queues.x.backoff.factor"));
}

TEST_F(ServerConfigTest, WrongTypesAreErrorsNamingTheKey) {
  EXPECT_TRUE(FailsNaming("[server]\nlisten = 8000\n", "server.listen"));
  EXPECT_TRUE(FailsNaming("[server]\nthreads = \"4\"\n", "server.threads"));
  EXPECT_TRUE(FailsNaming("[server]\nthreads = 1.5\n", "server.threads"));
  EXPECT_TRUE(FailsNaming("[server]\nlease = \"30s\"\n", "server.lease"));
  EXPECT_TRUE(FailsNaming("[log]\nlevel = 3\n", "log.level"));
  EXPECT_TRUE(FailsNaming("server = 1\n", "server"));
  EXPECT_TRUE(FailsNaming("log = \"stderr\"\n", "log"));
  EXPECT_TRUE(FailsNaming("queues = 3\n", "queues"));
  EXPECT_TRUE(FailsNaming("[queues]\nx = 3\n", "queues.x"));
  EXPECT_TRUE(FailsNaming(std::string(kQueue) + "concurrency = \"4\"\n", "queues.x.concurrency"));
  EXPECT_TRUE(FailsNaming(std::string(kQueue) + "timeout = \"30\"\n", "queues.x.timeout"));
  EXPECT_TRUE(FailsNaming("[queues.x]\nhandler = 1\n", "queues.x.handler"));
  EXPECT_TRUE(FailsNaming(std::string(kQueue) + "backoff = 1\n", "queues.x.backoff"));
  EXPECT_TRUE(FailsNaming(std::string(kQueue) + "[queues.x.backoff]\njitter = \"lots\"\n",
                          "queues.x.backoff.jitter"));
}

TEST_F(ServerConfigTest, ZeroAndNegativeValuesAreErrorsNamingTheKey) {
  const std::string q = kQueue;
  EXPECT_TRUE(FailsNaming(q + "concurrency = 0\n", "queues.x.concurrency"));
  EXPECT_TRUE(FailsNaming(q + "concurrency = -1\n", "queues.x.concurrency"));
  EXPECT_TRUE(FailsNaming(q + "max_depth = 0\n", "queues.x.max_depth"));
  EXPECT_TRUE(FailsNaming(q + "max_attempts = 0\n", "queues.x.max_attempts"));
  EXPECT_TRUE(FailsNaming(q + "timeout = 0\n", "queues.x.timeout"));
  EXPECT_TRUE(FailsNaming(q + "timeout = -2.5\n", "queues.x.timeout"));
  EXPECT_TRUE(FailsNaming(q + "timeout = 0.0001\n", "queues.x.timeout"));  // rounds to 0 ms
  EXPECT_TRUE(FailsNaming(q + "retention = -1\n", "queues.x.retention"));
  EXPECT_TRUE(FailsNaming(q + "[queues.x.backoff]\nbase = -1\n", "queues.x.backoff.base"));
  EXPECT_TRUE(FailsNaming(q + "[queues.x.backoff]\njitter = 1.5\n", "queues.x.backoff.jitter"));
  EXPECT_TRUE(FailsNaming(q + "[queues.x.backoff]\njitter = -0.1\n", "queues.x.backoff.jitter"));
  EXPECT_TRUE(FailsNaming(q + "[queues.x.backoff]\nbase = 10\nmax = 5\n", "queues.x.backoff.max"));
  EXPECT_TRUE(FailsNaming("[server]\nthreads = -1\n", "server.threads"));
  EXPECT_TRUE(FailsNaming("[server]\nbody_limit = 0\n", "server.body_limit"));
  EXPECT_TRUE(FailsNaming("[server]\nlease = 0\n", "server.lease"));
  EXPECT_TRUE(FailsNaming("[server]\nrequest_timeout = -1\n", "server.request_timeout"));
  EXPECT_TRUE(FailsNaming("[server]\nheader_timeout = 0\n", "server.header_timeout"));
  EXPECT_TRUE(FailsNaming("[server]\nheader_timeout = -1\n", "server.header_timeout"));
  EXPECT_TRUE(FailsNaming("[server]\nmax_header_count = 0\n", "server.max_header_count"));
  EXPECT_TRUE(FailsNaming("[server]\nmax_header_count = 10001\n", "server.max_header_count"));
  EXPECT_TRUE(FailsNaming("[server]\nmax_connections = 0\n", "server.max_connections"));
  EXPECT_TRUE(FailsNaming("[server]\nmax_connections = 1000001\n", "server.max_connections"));
  EXPECT_TRUE(FailsNaming("[server]\nmax_connections = 1.5\n", "server.max_connections"));
  EXPECT_TRUE(FailsNaming("[server]\nshutdown_grace = -1\n", "server.shutdown_grace"));
  EXPECT_TRUE(FailsNaming("[server]\npromote_interval = 0\n", "server.promote_interval"));
  EXPECT_TRUE(FailsNaming("[server]\nlease = nan\n", "server.lease"));
  EXPECT_TRUE(FailsNaming("[server]\nlease = inf\n", "server.lease"));
  EXPECT_TRUE(FailsNaming("[log]\nmax_files = 0\n", "log.max_files"));
  EXPECT_TRUE(FailsNaming("[log]\nmax_size = 10\n", "log.max_size"));
  EXPECT_TRUE(FailsNaming("[log]\nformat = \"xml\"\n", "log.format"));
  EXPECT_TRUE(FailsNaming("[log]\naccess = \"yes\"\n", "log.access"));

  // Zero is fine where it means "none".
  EXPECT_TRUE(IsOk(Load(q + "retention = 0\n[queues.x.backoff]\nbase = 0\nmax = 0\njitter = 0\n")));
  EXPECT_TRUE(IsOk(Load("[server]\nthreads = 0\nshutdown_grace = 0\n")));
}

TEST_F(ServerConfigTest, HandlerMustBeKnownAndPresent) {
  ServerConfig c;
  Status st = LoadConfigFile(Write("[queues.x]\nhandler = \"nope\"\n"), c);
  ASSERT_TRUE(IsError(st, ErrorCode::kInvalidArgument));
  EXPECT_NE(st.error().detail.find("'queues.x.handler'"), std::string::npos) << st.error().detail;
  EXPECT_NE(st.error().detail.find("nope"), std::string::npos) << st.error().detail;
  EXPECT_NE(st.error().detail.find("echo"), std::string::npos) << "lists the known handlers";

  EXPECT_TRUE(FailsNaming("[queues.x]\nconcurrency = 2\n", "queues.x.handler"));
  EXPECT_TRUE(FailsNaming("[queues.x]\nhandler = \"\"\n", "queues.x.handler"));
}

TEST_F(ServerConfigTest, QueueNamesAndTablesAreChecked) {
  EXPECT_TRUE(FailsNaming("[queues.\"bad name\"]\nhandler = \"echo\"\n", "queues.bad name"));
  EXPECT_TRUE(FailsNaming("[queues.\"a/b\"]\nhandler = \"echo\"\n", "queues.a/b"));
  EXPECT_TRUE(FailsNaming("[queues]\n", "queues"));  // declares no queue
  const std::string long_name(65, 'q');
  EXPECT_TRUE(
      FailsNaming("[queues." + long_name + "]\nhandler = \"echo\"\n", "queues." + long_name));
  EXPECT_TRUE(IsOk(Load("[queues." + std::string(64, 'q') + "]\nhandler = \"echo\"\n")));
}

TEST_F(ServerConfigTest, BadListenAddressesAreErrorsNamingTheKey) {
  for (const char* listen : {"localhost", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536",
                             "127.0.0.1:-1", ":8000", "[::1]"}) {
    EXPECT_TRUE(
        FailsNaming("[server]\nlisten = \"" + std::string(listen) + "\"\n", "server.listen"))
        << listen;
  }
}

TEST_F(ServerConfigTest, SyntaxErrorsAndMissingFilesAreErrors) {
  ServerConfig c;
  Status st = LoadConfigFile(Write("[server\nlisten = 1\n"), c);
  ASSERT_TRUE(IsError(st, ErrorCode::kInvalidArgument));
  EXPECT_NE(st.error().detail.find("line"), std::string::npos) << st.error().detail;

  EXPECT_TRUE(
      IsError(LoadConfigFile(Write("[queues.x]\nhandler = \"echo\"\nhandler = \"echo\"\n"), c),
              ErrorCode::kInvalidArgument));
  EXPECT_TRUE(
      IsError(LoadConfigFile(dir_.path() + "/missing.toml", c), ErrorCode::kInvalidArgument));
}

TEST_F(ServerConfigTest, UiTableIsReadAndChecked) {
  ServerConfig defaults;
  ASSERT_TRUE(IsOk(LoadConfigText("", "inline.toml", defaults)));
  EXPECT_TRUE(defaults.api.ui_enabled);
  EXPECT_FALSE(defaults.api.ui_open) << "loopback only by default";
  ServerConfig c;
  ASSERT_TRUE(IsOk(LoadConfigText("[ui]\nopen = true\nenabled = false\n", "inline.toml", c)));
  EXPECT_TRUE(c.api.ui_open);
  EXPECT_FALSE(c.api.ui_enabled);
  EXPECT_TRUE(FailsNaming("[ui]\nopen = \"yes\"\n", "ui.open"));
  EXPECT_TRUE(FailsNaming("[ui]\nenabled = 1\n", "ui.enabled"));
  EXPECT_TRUE(FailsNaming("[ui]\nport = 1\n", "ui.port"));
  EXPECT_TRUE(FailsNaming("ui = true\n", "ui"));
}

TEST_F(ServerConfigTest, LoadsFromTextLikeFromAFile) {
  ServerConfig c;
  ASSERT_TRUE(IsOk(
      LoadConfigText("[server]\nthreads = 3\n[queues.q]\nhandler = \"echo\"\n", "inline.toml", c)));
  EXPECT_EQ(c.threads, 3);
  ASSERT_EQ(c.queues.size(), 1u);
  EXPECT_EQ(c.queues[0].name, "q");

  Status st = LoadConfigText("[server\n", "inline.toml", c);
  ASSERT_TRUE(IsError(st, ErrorCode::kInvalidArgument));
  EXPECT_NE(st.error().detail.find("inline.toml"), std::string::npos) << st.error().detail;
  EXPECT_NE(st.error().detail.find("line 1"), std::string::npos) << st.error().detail;
}

TEST_F(ServerConfigTest, CallbacksTableIsReadAndChecked) {
  ASSERT_TRUE(IsOk(Load(R"toml(
[callbacks]
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
allow = ["127.0.0.0/8", "::1/128", "10.1.2.3"]
max_attempts = 4
timeout = 2.5
concurrency = 8
poll_interval = 0.5
backoff = { base = 3, max = 30, jitter = 0 }
)toml")));
  EXPECT_EQ(config_.callback_secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_EQ(config_.callback_allow.size(), 3u);
  EXPECT_EQ(config_.callback_allow[1].text(), "::1/128");
  const CallbackPolicy& p = config_.engine.callbacks;
  EXPECT_EQ(p.max_attempts, 4);
  EXPECT_EQ(p.timeout, 2'500);
  EXPECT_EQ(p.concurrency, 8);
  EXPECT_EQ(p.poll_interval, 500);
  EXPECT_EQ(p.backoff.base, 3'000);
  EXPECT_EQ(p.backoff.max, 30'000);
  EXPECT_EQ(p.backoff.jitter, 0.0);

  EXPECT_TRUE(FailsNaming("[callbacks]\nsecret = \"nope\"\n", "callbacks.secret"));
  EXPECT_TRUE(FailsNaming("[callbacks]\nsecret = \"whsec_!!\"\n", "callbacks.secret"));
  EXPECT_TRUE(FailsNaming("[callbacks]\nallow = \"127.0.0.0/8\"\n", "callbacks.allow"));
  EXPECT_TRUE(FailsNaming("[callbacks]\nallow = [\"127.0.0.0/40\"]\n", "callbacks.allow"));
  EXPECT_TRUE(FailsNaming("[callbacks]\nallow = [1]\n", "callbacks.allow"));
  EXPECT_TRUE(FailsNaming("[callbacks]\nmax_attempts = 0\n", "callbacks.max_attempts"));
  EXPECT_TRUE(FailsNaming("[callbacks]\ntimeout = 0\n", "callbacks.timeout"));
  EXPECT_TRUE(
      FailsNaming("[callbacks]\nbackoff = { base = 5, max = 1 }\n", "callbacks.backoff.max"));
  EXPECT_TRUE(FailsNaming("[callbacks]\nsecrett = \"x\"\n", "callbacks.secrett"));
  EXPECT_TRUE(FailsNaming("callbacks = 1\n", "callbacks"));
}

TEST_F(ServerConfigTest, StoreOptionsForADatabaseServer) {
  EXPECT_EQ(config_.store_pool_size, kDefaultStorePoolSize);
  EXPECT_FALSE(config_.unsafe_durability);
  ASSERT_TRUE(IsOk(Load(R"toml(
[server]
store = "postgres://acceptd@db.internal/acceptd"
store_pool_size = 24
unsafe_durability = true
)toml")));
  EXPECT_EQ(config_.store_pool_size, 24);
  EXPECT_TRUE(config_.unsafe_durability);
  EXPECT_TRUE(FailsNaming("[server]\nstore_pool_size = 0\n", "server.store_pool_size"));
  EXPECT_TRUE(FailsNaming("[server]\nunsafe_durability = 1\n", "server.unsafe_durability"));
}

TEST_F(ServerConfigTest, SchedulesAreReadWithTheirDefaults) {
  ASSERT_TRUE(IsOk(Load(R"toml(
[queues.reports]
handler = "echo"

[[schedules]]
name = "nightly-report"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
queue = "reports"
payload = '{"kind":"daily"}'
content_type = "application/json"
on_missed = "skip"

[[schedules]]
name = "every-10s"
cron = "*/10 * * * * *"
queue = "reports"
)toml")));
  ASSERT_EQ(config_.schedules.size(), 2u);
  const ScheduleConfig& nightly = config_.schedules[0];
  EXPECT_EQ(nightly.name, "nightly-report");
  ASSERT_TRUE(nightly.cron);
  EXPECT_EQ(nightly.cron->ToString(), "30 2 * * *");
  EXPECT_FALSE(nightly.cron->has_seconds());
  EXPECT_EQ(nightly.zone.name(), "Europe/Berlin");
  EXPECT_EQ(nightly.queue, "reports");
  EXPECT_EQ(nightly.payload, R"({"kind":"daily"})");
  EXPECT_EQ(nightly.content_type, "application/json");
  EXPECT_EQ(nightly.on_missed, MissedPolicy::kSkip);
  const ScheduleConfig& fast = config_.schedules[1];
  EXPECT_TRUE(fast.cron->has_seconds());
  EXPECT_EQ(fast.zone.name(), "UTC");
  EXPECT_EQ(fast.payload, "");
  EXPECT_EQ(fast.content_type, kDefaultScheduleContentType);
  EXPECT_EQ(fast.on_missed, MissedPolicy::kRunOnce);
}

TEST_F(ServerConfigTest, ASchedulesQueueMayBeADefaultQueue) {
  ASSERT_TRUE(IsOk(Load("[[schedules]]\nname = \"s\"\ncron = \"@hourly\"\nqueue = \"echo\"\n")));
  ASSERT_EQ(config_.schedules.size(), 1u);
  EXPECT_EQ(config_.schedules[0].queue, "echo");
}

TEST_F(ServerConfigTest, SchedulesAreCheckedAtLoading) {
  const std::string ok = std::string(kQueue) + "[[schedules]]\n";
  auto with = [&](const std::string& keys) { return ok + keys; };
  const std::string base = "name = \"s\"\ncron = \"* * * * *\"\nqueue = \"x\"\n";
  EXPECT_TRUE(FailsNaming(with("cron = \"* * * * *\"\nqueue = \"x\"\n"), "schedules[0].name"));
  EXPECT_TRUE(FailsNaming(with("name = \"a b\"\ncron = \"* * * * *\"\nqueue = \"x\"\n"),
                          "schedules[0].name"));
  EXPECT_TRUE(FailsNaming(with("name = \"s\"\nqueue = \"x\"\n"), "schedules[0].cron"));
  EXPECT_TRUE(FailsNaming(with("name = \"s\"\ncron = \"61 * * * *\"\nqueue = \"x\"\n"),
                          "schedules[0].cron"));
  EXPECT_TRUE(
      FailsNaming(with("name = \"s\"\ncron = \"* * * *\"\nqueue = \"x\"\n"), "schedules[0].cron"));
  EXPECT_TRUE(FailsNaming(with("name = \"s\"\ncron = \"0 0 30 2 *\"\nqueue = \"x\"\n"),
                          "schedules[0].cron"))
      << "February 30th never comes";
  EXPECT_TRUE(FailsNaming(with("name = \"s\"\ncron = \"* * * * *\"\n"), "schedules[0].queue"));
  EXPECT_TRUE(FailsNaming(with("name = \"s\"\ncron = \"* * * * *\"\nqueue = \"nope\"\n"),
                          "schedules[0].queue"));
  EXPECT_TRUE(FailsNaming(with(base + "timezone = \"Mars/Olympus\"\n"), "schedules[0].timezone"));
  EXPECT_TRUE(FailsNaming(with(base + "timezone = \"../etc/passwd\"\n"), "schedules[0].timezone"));
  EXPECT_TRUE(FailsNaming(with(base + "on_missed = \"always\"\n"), "schedules[0].on_missed"));
  EXPECT_TRUE(FailsNaming(with(base + "content_type = \"\"\n"), "schedules[0].content_type"));
  EXPECT_TRUE(FailsNaming(with(base + "payload = 3\n"), "schedules[0].payload"));
  EXPECT_TRUE(FailsNaming(with(base + "every = \"day\"\n"), "schedules[0].every"));
  EXPECT_TRUE(FailsNaming(with(base) + "[[schedules]]\n" + base, "schedules[1].name"))
      << "names are unique";
  // (Top-level keys come before the first table header.)
  EXPECT_TRUE(FailsNaming("schedules = 3\n" + std::string(kQueue), "schedules"));
  EXPECT_TRUE(FailsNaming("schedules = [1]\n" + std::string(kQueue), "schedules[0]"));
}

TEST(DefaultQueuesTest, OneQueuePerBuiltinHandlerWithDefaults) {
  auto queues = DefaultQueues();
  ASSERT_EQ(queues.size(), BuiltinHandlerNames().size());
  std::vector<std::string> names;
  for (const QueueConfig& q : queues) {
    names.push_back(q.name);
    EXPECT_EQ(q.handler, q.name);
    EXPECT_TRUE(HandlerKinds().count(q.handler)) << q.handler;
    EXPECT_EQ(q.concurrency, kDefaultConcurrency);
    EXPECT_EQ(q.max_depth, kDefaultMaxDepth);
    EXPECT_EQ(q.max_attempts, kDefaultMaxAttempts);
    EXPECT_EQ(q.timeout, kDefaultTimeout);
    EXPECT_EQ(q.retention, kDefaultRetention);
    EXPECT_EQ(q.backoff.base, kDefaultBackoffBase);
    EXPECT_EQ(q.backoff.max, kDefaultBackoffMax);
    EXPECT_DOUBLE_EQ(q.backoff.jitter, kDefaultBackoffJitter);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"greeting", "echo", "sleep", "fail"}));
}

TEST(ParseListenTest, SplitsHostAndPort) {
  using HostPort = std::pair<std::string, uint16_t>;
  auto parse = [](const std::string& s) {
    auto r = ParseListen(s);
    return r.ok() ? *r : HostPort{"<error>", 0};
  };
  EXPECT_EQ(parse("127.0.0.1:8000"), (HostPort{"127.0.0.1", 8000}));
  EXPECT_EQ(parse("0.0.0.0:0"), (HostPort{"0.0.0.0", 0}));
  EXPECT_EQ(parse("localhost:65535"), (HostPort{"localhost", 65535}));
  EXPECT_EQ(parse("[::1]:8000"), (HostPort{"::1", 8000}));
  EXPECT_EQ(parse("[::]:443"), (HostPort{"::", 443}));
  EXPECT_EQ(parse("[fe80::1%eth0]:9000"), (HostPort{"fe80::1%eth0", 9000}));
  EXPECT_EQ(parse(kDefaultListen), (HostPort{"127.0.0.1", 8000}));
}

TEST(ParseListenTest, RejectsMalformedAddresses) {
  for (const char* bad :
       {"", "8000", "localhost", ":8000", "localhost:", "localhost:65536", "localhost:99999999999",
        "localhost:-1", "localhost:+80", "localhost:80x", "localhost: 80", "[::1]", "[::1]:"}) {
    auto r = ParseListen(bad);
    EXPECT_TRUE(IsError(r, ErrorCode::kInvalidArgument)) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace acceptd
