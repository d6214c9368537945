// Runs the JobStore conformance suite against PostgresStore, each test on a
// fresh database, plus what is specific to PostgreSQL: migrations under
// concurrency, refusals (newer schema, no durability), exactness of depth
// limits and idempotency keys across store objects (nodes), the change feed,
// and connection loss.
//
// The server: env ACCEPTD_TEST_POSTGRES, a libpq URI of a maintenance
// database whose user may create databases, e.g.
// postgresql://postgres@127.0.0.1:5432/postgres or
// postgresql:///postgres?host=/tmp/pg&port=5432&user=postgres. Each test
// creates acceptd_t_<random> and drops it (WITH (FORCE)) at the end. Unset:
// the tests are skipped, except under CI=true, where they fail.
#include "store/postgres/postgres_store.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_feed.h"
#include "store/postgres/pg_schema.h"
#include "store/sqlite/sqlite_store.h"
#include "store/testing/job_store_conformance.h"
#include "store/testing/job_store_search_conformance.h"
#include "store/testing/store_test_util.h"

namespace acceptd {
namespace {

using store_testing::IsError;
using store_testing::IsOk;
using store_testing::Must;

constexpr const char* kEnv = "ACCEPTD_TEST_POSTGRES";

// Why PostgreSQL tests cannot run here ("" if they can). Under CI=true a
// missing server is a failure: CI must never skip them silently.
std::string PostgresSkipReason() {
  const char* url = std::getenv(kEnv);
  if (url && *url) return "";
  const char* ci = std::getenv("CI");
  if (ci && std::string(ci) == "true") {
    ADD_FAILURE() << kEnv << " is not set but CI=true: the PostgreSQL store tests must run in CI "
                  << "(scripts/pg-cluster.sh starts a server)";
  }
  return fmt::format(
      "{} is not set (a libpq URI of a maintenance database, e.g. "
      "postgresql://postgres@127.0.0.1:5432/postgres): PostgreSQL tests skipped",
      kEnv);
}

std::string PercentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// The URI of database `db` on the server of `url` (every other parameter kept).
std::string WithDatabase(const std::string& url, const std::string& db) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    std::string msg = err ? err : "?";
    if (err) PQfreemem(err);
    throw std::runtime_error(fmt::format("{}: cannot parse: {}", kEnv, msg));
  }
  std::string query;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val || std::string(o->keyword) == "dbname") continue;
    query += fmt::format("{}{}={}", query.empty() ? "?" : "&", o->keyword, PercentEncode(o->val));
  }
  PQconninfoFree(opts);
  return "postgresql:///" + db + query;
}

std::unique_ptr<pg::Conn> Connect(const std::string& url) {
  std::vector<std::string> k{"dbname"}, v{url};
  return Must(pg::Conn::Connect(k, v), "connect to " + url);
}

void Exec(pg::Conn& c, const std::string& sql) { Must(c.Exec(sql), sql); }

// Empty databases for the tests. Creating one takes ~0.5 s and dropping one
// as long (more on a busy machine: most of the suite's time), so a used
// database is emptied instead (its schema dropped, its settings reset) by a
// background thread and handed to a later test; a new one is created only
// when none is ready. Every database is dropped at exit.
class DatabaseSupply {
 public:
  static DatabaseSupply& Get() {
    static DatabaseSupply supply;
    return supply;
  }
  // The name of an empty database.
  std::string Take() {
    std::unique_lock lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    // Waits for a database being emptied rather than creating one.
    cv_.wait_for(lock, std::chrono::seconds(10),
                 [&] { return !ready_.empty() || to_reset_.empty(); });
    if (!ready_.empty()) {
      std::string name = std::move(ready_.front());
      ready_.pop_front();
      return name;
    }
    lock.unlock();
    auto c = Connect(maintenance_);
    std::string name =
        fmt::format("acceptd_t_{:08x}{:08x}", std::random_device()(), std::random_device()());
    Exec(*c, "CREATE DATABASE " + name);
    lock.lock();
    all_.push_back(name);
    return name;
  }
  // Gives a database back once its test is over.
  void Return(std::string name) {
    std::lock_guard lock(mu_);
    to_reset_.push_back(std::move(name));
    cv_.notify_all();
  }
  const std::string& maintenance() const { return maintenance_; }

 private:
  DatabaseSupply() : maintenance_(std::getenv(kEnv)) {
    // The emptying thread logs (libpq notices go to spdlog) until this
    // object's destructor joins it: spdlog's registry must be destroyed after
    // this object, so it must exist before this object is complete.
    (void)spdlog::default_logger_raw();
  }
  ~DatabaseSupply() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::vector<std::string> k{"dbname"}, v{maintenance_};
    auto c = pg::Conn::Connect(k, v);
    if (!c) return;
    for (const auto& name : all_) {
      (void)(*c)->Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    }
  }
  // Empties a used database: its sessions ended, the acceptd schema gone,
  // settings a test made (ALTER DATABASE ... SET) reset.
  bool Reset(const std::string& name) {
    std::vector<std::string> k{"dbname"}, v{maintenance_};
    auto admin = pg::Conn::Connect(k, v);
    if (!admin) return false;
    if (!(*admin)->Exec(fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = '{}'",
                                    name))) {
      return false;
    }
    if (!(*admin)->Exec("ALTER DATABASE " + name + " RESET ALL")) return false;
    std::vector<std::string> dk{"dbname"}, dv{WithDatabase(maintenance_, name)};
    auto db = pg::Conn::Connect(dk, dv);
    return db && (*db)->Exec("DROP SCHEMA IF EXISTS acceptd CASCADE").ok();
  }
  void Run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait(lock, [&] { return stopping_ || !to_reset_.empty(); });
      if (stopping_) return;
      std::string name = std::move(to_reset_.front());
      to_reset_.pop_front();
      lock.unlock();
      const bool ok = Reset(name);
      lock.lock();
      if (ok) ready_.push_back(std::move(name));  // else: dropped at exit
      cv_.notify_all();
    }
  }

  const std::string maintenance_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> ready_, to_reset_;  // guarded by mu_
  std::vector<std::string> all_;              // guarded by mu_
  bool stopping_ = false;                     // guarded by mu_
  std::thread thread_;
};

// A fresh database for one test, dropped at the end.
class TestDatabase {
 public:
  TestDatabase() {
    if (!PostgresSkipReason().empty()) return;
    name_ = DatabaseSupply::Get().Take();
    url_ = WithDatabase(maintenance(), name_);
  }
  ~TestDatabase() {
    if (!name_.empty()) DatabaseSupply::Get().Return(name_);
  }
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  const std::string& maintenance() const { return DatabaseSupply::Get().maintenance(); }

 private:
  std::string name_, url_;
};

class PostgresStoreFactory {
 public:
  static std::string SkipReason() { return PostgresSkipReason(); }
  Result<std::unique_ptr<JobStore>> Open() {
    auto store = PostgresStore::Open(db_.url(), StoreOptions{});
    if (!store) return std::move(store).error();
    return std::unique_ptr<JobStore>(std::move(*store));
  }

 private:
  TestDatabase db_;
};

}  // namespace

namespace store_testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, JobStoreConformanceTest,
                               ::testing::Types<PostgresStoreFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, JobStoreSearchConformanceTest,
                               ::testing::Types<PostgresStoreFactory>);
}  // namespace store_testing

namespace {

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresSkipReason(); !why.empty()) GTEST_SKIP() << why;
    db_ = std::make_unique<TestDatabase>();
  }

  std::unique_ptr<PostgresStore> OpenStore(StoreOptions options = {}) {
    return Must(PostgresStore::Open(db_->url(), options), "open");
  }

  static NewJob MakeJob(std::string queue = "q", int64_t max_depth = 1'000) {
    NewJob n;
    n.id = JobId::Random();
    n.queue = std::move(queue);
    n.payload = "p";
    n.content_type = "text/plain";
    n.max_attempts = 3;
    n.retention = 60'000;
    n.now = n.run_at = store_testing::kT0;
    n.max_depth = max_depth;
    return n;
  }

  static Result<Job> InsertOne(JobStore& store, const NewJob& n) {
    auto tx = store.BeginWrite();
    if (!tx) return std::move(tx).error();
    auto r = (*tx)->Insert(n);
    if (!r) return r;
    if (auto st = (*tx)->Commit(); !st) return std::move(st).error();
    return r;
  }

  std::unique_ptr<TestDatabase> db_;
};

TEST_F(PostgresStoreTest, OpenStoreAcceptsPostgresUrls) {
  auto store = acceptd::OpenStore(db_->url());
  ASSERT_TRUE(IsOk(store));
  EXPECT_TRUE((*store)->RemoteCalls());
  EXPECT_TRUE(IsOk((*store)->Ping()));
  std::string other = db_->url();
  other.replace(0, std::string("postgresql").size(), "postgres");
  EXPECT_TRUE(IsOk(acceptd::OpenStore(other)));
}

// Parts the URL leaves out come from the PG* environment, as for psql.
TEST_F(PostgresStoreTest, AnEmptyUrlTakesTheServerFromThePgEnvironment) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(db_->url().c_str(), &err);
  ASSERT_NE(opts, nullptr);
  std::vector<std::pair<std::string, std::string>> env;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (o->envvar && o->val && *o->val) env.emplace_back(o->envvar, o->val);
  }
  PQconninfoFree(opts);
  std::vector<std::pair<std::string, std::optional<std::string>>> before;
  for (const auto& [k, v] : env) {
    const char* old = std::getenv(k.c_str());
    before.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
    setenv(k.c_str(), v.c_str(), 1);
  }
  auto store = acceptd::OpenStore("postgresql://");
  for (const auto& [k, old] : before) {
    if (old) {
      setenv(k.c_str(), old->c_str(), 1);
    } else {
      unsetenv(k.c_str());
    }
  }
  ASSERT_TRUE(IsOk(store));
  EXPECT_TRUE(IsOk((*store)->Ping()));
}

TEST_F(PostgresStoreTest, AnUnreachableServerIsUnavailable) {
  auto store = PostgresStore::Open("postgresql://127.0.0.1:1/nothing?connect_timeout=2", {});
  ASSERT_TRUE(IsError(store, ErrorCode::kUnavailable));
}

TEST_F(PostgresStoreTest, SeveralNodesStartingAtOnceMigrateOnce) {
  constexpr int kNodes = 8;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> errors;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&] {
      auto s = PostgresStore::Open(db_->url(), {});
      if (s) {
        ++ok;
      } else {
        std::lock_guard lock(mu);
        errors.push_back(s.error().message);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kNodes) << (errors.empty() ? "" : errors.front());
  auto c = Connect(db_->url());
  auto v = Must(c->Exec("SELECT version FROM acceptd.schema_version"), "version");
  EXPECT_EQ(v.Bytes(0, 0), std::to_string(pg::kSchemaVersion));
  auto store = OpenStore();
  EXPECT_TRUE(IsOk(InsertOne(*store, MakeJob())));
}

TEST_F(PostgresStoreTest, ASchemaNewerThanThisBinaryIsRefused) {
  OpenStore();
  auto c = Connect(db_->url());
  Exec(*c, "UPDATE acceptd.schema_version SET version = 99");
  auto store = PostgresStore::Open(db_->url(), {});
  ASSERT_TRUE(IsError(store, ErrorCode::kUnavailable));
  EXPECT_NE(store.error().message.find("newer"), std::string::npos) << store.error().message;
}

TEST_F(PostgresStoreTest, WithoutMigrateAMissingSchemaIsRefusedAndMigrateAppliesIt) {
  StoreOptions no_migrate;
  no_migrate.migrate = false;
  auto refused = PostgresStore::Open(db_->url(), no_migrate);
  ASSERT_TRUE(IsError(refused, ErrorCode::kUnavailable));
  EXPECT_NE(refused.error().message.find("acceptd migrate"), std::string::npos);
  auto c = Connect(db_->url());
  auto schemas = Must(c->Exec("SELECT count(*) FROM pg_namespace WHERE nspname = 'acceptd'"), "ns");
  EXPECT_EQ(schemas.Bytes(0, 0), "0") << "nothing was created";
  EXPECT_EQ(Must(PostgresStore::Migrate(db_->url()), "Migrate"), pg::kSchemaVersion);
  EXPECT_EQ(Must(PostgresStore::Migrate(db_->url()), "Migrate again"), pg::kSchemaVersion);
  auto store = Must(PostgresStore::Open(db_->url(), no_migrate), "open migrated");
  EXPECT_TRUE(IsOk(InsertOne(*store, MakeJob())));
}

TEST_F(PostgresStoreTest, SynchronousCommitOffIsRefusedUnlessUnsafeDurability) {
  {
    auto c = Connect(db_->maintenance());
    Exec(*c, "ALTER DATABASE " + db_->name() + " SET synchronous_commit = off");
  }
  auto refused = PostgresStore::Open(db_->url(), {});
  ASSERT_TRUE(IsError(refused, ErrorCode::kUnavailable));
  EXPECT_NE(refused.error().message.find("synchronous_commit"), std::string::npos);
  EXPECT_NE(refused.error().message.find("--unsafe-durability"), std::string::npos);
  StoreOptions unsafe;
  unsafe.unsafe_durability = true;
  auto store = Must(PostgresStore::Open(db_->url(), unsafe), "open unsafe");
  EXPECT_TRUE(IsOk(InsertOne(*store, MakeJob())));
}

TEST_F(PostgresStoreTest, TheTransitionTableIsEnforcedByTheDatabase) {
  auto store = OpenStore();
  Job j = Must(InsertOne(*store, MakeJob()), "insert");
  auto c = Connect(db_->url());
  // queued -> succeeded is not an edge of core's table: even a hand-written
  // statement cannot make it.
  auto r = c->Exec(fmt::format("UPDATE acceptd.jobs SET state = 2 WHERE id = '{}'", j.id.ToHex()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("illegal state transition"), std::string::npos);
  auto tampered = c->Exec("DELETE FROM acceptd.transitions WHERE from_state = 0 AND to_state = 1");
  ASSERT_TRUE(IsOk(tampered));
  OpenStore();  // Open restores core's table
  auto n = Must(c->Exec("SELECT count(*) FROM acceptd.transitions WHERE from_state = 0 AND "
                        "to_state = 1"),
                "count");
  EXPECT_EQ(n.Bytes(0, 0), "1");
}

TEST_F(PostgresStoreTest, FreeTextIsStoredAsValidUtf8) {
  auto store = OpenStore();
  NewJob n = MakeJob();
  Must(InsertOne(*store, n), "insert");
  auto tx = Must(store->BeginWrite(), "BeginWrite");
  auto jobs =
      Must(tx->Claim(ClaimParams{"q", 1, "node", store_testing::kT0, store_testing::kT0 + 30'000}),
           "Claim");
  ASSERT_EQ(jobs.size(), 1u);
  auto done = tx->Finish(AttemptOutcome::Failed(n.id, jobs[0].lease_token, store_testing::kT0 + 1,
                                                {"e", std::string("a\0b\xff", 4)}));
  ASSERT_TRUE(IsOk(done));
  Must(tx->Commit(), "Commit");
  EXPECT_EQ(Must(store->Get(n.id), "Get").error->message,
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
}

// Count rows are per connection (backend pid); those of connections that are
// gone are folded into one row by PurgeExpired, and the counts stay.
TEST_F(PostgresStoreTest, CountRowsOfClosedConnectionsAreFoldedAndTheCountsKept) {
  {
    auto a = OpenStore();
    for (int i = 0; i < 5; ++i) Must(InsertOne(*a, MakeJob()), "insert");
  }
  auto b = OpenStore();
  Must(InsertOne(*b, MakeJob()), "insert");
  auto admin = Connect(db_->url());
  const std::string dead_rows =
      "SELECT count(*) FROM acceptd.queue_counts c WHERE slot <> 0 AND NOT EXISTS "
      "(SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.slot)";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto tx = Must(b->BeginWrite(), "BeginWrite");
    Must(tx->PurgeExpired(store_testing::kT0, 100, 0), "PurgeExpired");
    Must(tx->Commit(), "Commit");
    // a's backends may take a moment to leave pg_stat_activity.
    if (Must(admin->Exec(dead_rows), "dead rows").Bytes(0, 0) == "0") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "count rows were never folded";
  }
  auto slot0 = Must(admin->Exec("SELECT n FROM acceptd.queue_counts WHERE slot = 0"), "slot 0");
  ASSERT_EQ(slot0.Size(), 1);
  EXPECT_EQ(slot0.Bytes(0, 0), "5");
  auto counts = Must(b->Counts(), "Counts");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].counts[static_cast<int>(JobState::kQueued)], 6);
}

// Two nodes never both accept the submit that crosses max_depth.
TEST_F(PostgresStoreTest, MaxDepthIsExactAcrossStoreObjects) {
  constexpr int kNodes = 6, kPerNode = 40, kDepth = 100;
  std::vector<std::unique_ptr<PostgresStore>> nodes;
  for (int i = 0; i < kNodes; ++i) nodes.push_back(OpenStore());
  std::atomic<int> accepted{0}, full{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kPerNode; ++k) {
        auto tx = nodes[i]->BeginWrite();
        if (!tx) {
          ++other;
          continue;
        }
        // Two jobs per transaction: the lock is held until commit.
        int in_tx = 0;
        for (int m = 0; m < 2; ++m) {
          auto r = (*tx)->Insert(MakeJob("q", kDepth));
          if (r) {
            ++in_tx;
          } else if (r.error().code == ErrorCode::kQueueFull) {
            ++full;
          } else {
            ++other;
          }
        }
        if ((*tx)->Commit()) {
          accepted += in_tx;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(accepted.load(), kDepth);
  EXPECT_EQ(full.load(), kNodes * kPerNode * 2 - kDepth);
  auto counts = Must(nodes[0]->Counts(), "Counts");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].counts[static_cast<int>(JobState::kQueued)], kDepth);
}

// Two nodes never both create a job for one idempotency key.
TEST_F(PostgresStoreTest, IdempotencyKeysAreExactAcrossStoreObjects) {
  constexpr int kNodes = 6, kKeys = 30;
  std::vector<std::unique_ptr<PostgresStore>> nodes;
  for (int i = 0; i < kNodes; ++i) nodes.push_back(OpenStore());
  std::vector<std::vector<JobId>> got(kNodes, std::vector<JobId>(kKeys));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kKeys; ++k) {
        NewJob n = MakeJob();
        n.idempotency_key = fmt::format("key-{}", k);
        n.request_digest = "same";
        auto r = InsertOne(*nodes[i], n);
        if (r) {
          got[i][k] = r->id;
        } else {
          ++errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (int k = 0; k < kKeys; ++k) {
    for (int i = 1; i < kNodes; ++i) EXPECT_EQ(got[i][k], got[0][k]) << "key " << k;
  }
  auto counts = Must(nodes[0]->Counts(), "Counts");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].counts[static_cast<int>(JobState::kQueued)], kKeys);
}

// Collects a feed's reports; waits for them with a deadline.
class FeedRecorder {
 public:
  ChangeListener Listener() {
    ChangeListener l;
    l.on_changes = [this](const std::vector<JobChange>& changes) {
      std::lock_guard lock(mu_);
      for (const auto& c : changes) changes_.push_back(c);
      cv_.notify_all();
    };
    l.on_state = [this](bool live) {
      std::lock_guard lock(mu_);
      states_.push_back(live);
      cv_.notify_all();
    };
    return l;
  }
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(changes_, states_); });
  }
  std::vector<JobChange> Changes() {
    std::lock_guard lock(mu_);
    return changes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<JobChange> changes_;
  std::vector<bool> states_;
};

bool Live(const std::vector<bool>& states) { return !states.empty() && states.back(); }

bool Has(const std::vector<JobChange>& changes, const JobId& id,
         std::function<bool(const JobChange&)> pred = nullptr) {
  for (const auto& c : changes) {
    if (c.id == id && (!pred || pred(c))) return true;
  }
  return false;
}

TEST_F(PostgresStoreTest, ChangeFeedDeliversOtherNodesChangesButNotItsOwn) {
  auto a = OpenStore();
  auto b = OpenStore();
  FeedRecorder rec;
  auto feed = b->Subscribe(rec.Listener());
  ASSERT_NE(feed, nullptr);
  ASSERT_TRUE(rec.WaitFor([](auto&, auto& s) { return Live(s); })) << "the feed went live";

  NewJob n1 = MakeJob("emails");
  Must(InsertOne(*a, n1), "insert on a");
  ASSERT_TRUE(rec.WaitFor([&](auto& c, auto&) { return Has(c, n1.id); }));
  auto changes = rec.Changes();
  EXPECT_EQ(changes.back().queue, "emails");
  EXPECT_EQ(changes.back().state, JobState::kQueued);
  EXPECT_TRUE(changes.back().due);

  NewJob own = MakeJob();
  Must(InsertOne(*b, own), "insert on b");
  NewJob delayed = MakeJob();
  delayed.run_at = delayed.now + 60'000;
  Must(InsertOne(*a, delayed), "insert delayed on a");
  ASSERT_TRUE(rec.WaitFor([&](auto& c, auto&) { return Has(c, delayed.id); }));
  EXPECT_FALSE(Has(rec.Changes(), own.id)) << "a node does not hear its own changes";
  EXPECT_TRUE(Has(rec.Changes(), delayed.id, [](const JobChange& c) { return !c.due; }));

  // A claim, a cancel request and a delete through a.
  {
    auto tx = Must(a->BeginWrite(), "BeginWrite");
    auto jobs =
        Must(tx->Claim(ClaimParams{"emails", 1, "a", store_testing::kT0, store_testing::kT0 + 1}),
             "Claim");
    ASSERT_EQ(jobs.size(), 1u);
    Must(tx->Cancel(n1.id, store_testing::kT0), "Cancel");
    Must(tx->Commit(), "Commit");
  }
  ASSERT_TRUE(rec.WaitFor([&](auto& c, auto&) {
    return Has(c, n1.id, [](const JobChange& ch) { return ch.cancel_requested; });
  }));
  {
    auto tx = Must(a->BeginWrite(), "BeginWrite");
    Must(tx->Delete(delayed.id, store_testing::kT0), "Delete");
    Must(tx->Commit(), "Commit");
  }
  ASSERT_TRUE(rec.WaitFor([&](auto& c, auto&) {
    return Has(c, delayed.id, [](const JobChange& ch) { return ch.removed; });
  }));
  feed.reset();  // stops; no call after this
}

TEST_F(PostgresStoreTest, LostConnectionsAreUnavailableThenTheStoreRecovers) {
  auto store = OpenStore();
  auto other = OpenStore();
  FeedRecorder rec;
  auto feed = store->Subscribe(rec.Listener());
  ASSERT_TRUE(rec.WaitFor([](auto&, auto& s) { return Live(s); }));
  ASSERT_TRUE(IsOk(store->Ping()));

  auto tx = Must(store->BeginWrite(), "BeginWrite");
  NewJob lost = MakeJob();
  // Kill every backend of the store's node (its pool and its feed).
  auto admin = Connect(db_->maintenance());
  Exec(*admin, fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                           "datname = '{}' AND application_name = 'acceptd {}'",
                           db_->name(), store->node_name()));
  auto r = tx->Insert(lost);
  EXPECT_TRUE(IsError(r, ErrorCode::kUnavailable));
  EXPECT_FALSE(tx->Commit().ok()) << "never a success for a write that did not commit";
  tx.reset();
  ASSERT_TRUE(rec.WaitFor([](auto&, auto& s) { return !s.empty() && !s.back(); }))
      << "the feed reports it was interrupted";

  // Reconnects by itself: the next calls work, the lost write is not there.
  EXPECT_TRUE(IsOk(store->Ping()));
  EXPECT_TRUE(IsError(store->Get(lost.id), ErrorCode::kNotFound));
  NewJob kept = MakeJob();
  EXPECT_TRUE(IsOk(InsertOne(*store, kept)));
  ASSERT_TRUE(rec.WaitFor([](auto&, auto& s) { return Live(s); })) << "the feed is back";
  NewJob seen = MakeJob();
  Must(InsertOne(*other, seen), "insert on the other node");
  EXPECT_TRUE(rec.WaitFor([&](auto& c, auto&) { return Has(c, seen.id); }));
}

TEST(PostgresFeedTest, AFeedThatCannotConnectSaysItIsNotLive) {
  FeedRecorder rec;
  std::vector<std::string> k{"dbname"}, v{"postgresql://127.0.0.1:1/none?connect_timeout=1"};
  pg::ChangeFeed feed(k, v, "n", rec.Listener());
  EXPECT_TRUE(rec.WaitFor([](auto&, auto& s) { return s.size() == 1 && !s[0]; }));
}

TEST(StoreUrlTest, PasswordsAreRedacted) {
  EXPECT_EQ(RedactStoreUrl("postgres://u:s3cret@db:5432/x?sslmode=require"),
            "postgres://u:***@db:5432/x?sslmode=require");
  EXPECT_EQ(RedactStoreUrl("postgresql://u@db/x?password=s3cret&port=5"),
            "postgresql://u@db/x?password=***&port=5");
  EXPECT_EQ(RedactStoreUrl("postgresql://db/x"), "postgresql://db/x");
  EXPECT_EQ(RedactStoreUrl("sqlite:./data/a:b@c.db"), "sqlite:./data/a:b@c.db");
}

TEST(PostgresFeedTest, ParsesNotificationsAndSkipsItsOwn) {
  std::vector<JobChange> out;
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::string dashed = "01234567-89ab-cdef-0123-456789abcdef";
  EXPECT_EQ(pg::ParseChanges(R"({"o":"n1","c":[[")" + dashed + R"(","q",1,true,false,false]]})",
                             "n2", &out),
            "n1");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id.ToHex(), id);
  EXPECT_EQ(out[0].queue, "q");
  EXPECT_EQ(out[0].state, JobState::kRunning);
  EXPECT_TRUE(out[0].cancel_requested);
  out.clear();
  EXPECT_EQ(pg::ParseChanges(R"({"o":"n2","c":[[")" + dashed + R"(","q",1,true,false,false]]})",
                             "n2", &out),
            "n2");
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pg::ParseChanges("not json", "n2", &out), "");
}

}  // namespace
}  // namespace acceptd

namespace acceptd {
namespace {

// Not a test: figures for the report (run with --gtest_also_run_disabled_tests).
// Submits through the store, Insert batches of 64 per transaction, by 1 and
// 2 store objects (nodes) at once, then claims of 64 per transaction, then
// finishes (one statement each, 64 per transaction); with the change feed's
// NOTIFY per changed row (as shipped) and without it.
TEST_F(PostgresStoreTest, DISABLED_SubmitThroughput) {
  constexpr int kBatch = 64;
  constexpr auto kDuration = std::chrono::seconds(3);
  auto admin = Connect(db_->url());
  OpenStore();  // the schema
  // "no notify": the trigger without its pg_notify (what the feed costs).
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"row", ""},
      {"none",
       "CREATE OR REPLACE FUNCTION acceptd.job_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
       "BEGIN IF TG_OP = 'DELETE' THEN INSERT INTO acceptd.queue_counts AS c VALUES "
       "(OLD.queue, OLD.state, pg_backend_pid(), -1) ON CONFLICT (queue, state, slot) DO UPDATE "
       "SET n = c.n + EXCLUDED.n; ELSIF TG_OP = 'INSERT' THEN INSERT INTO acceptd.queue_counts "
       "AS c VALUES (NEW.queue, NEW.state, pg_backend_pid(), 1) ON CONFLICT (queue, state, slot) "
       "DO UPDATE SET n = c.n + EXCLUDED.n; ELSIF OLD.state <> NEW.state THEN INSERT INTO "
       "acceptd.queue_counts AS c VALUES (NEW.queue, LEAST(OLD.state, NEW.state), "
       "pg_backend_pid(), CASE WHEN OLD.state < NEW.state THEN -1 ELSE 1 END), (NEW.queue, "
       "GREATEST(OLD.state, NEW.state), pg_backend_pid(), CASE WHEN OLD.state < NEW.state THEN 1 "
       "ELSE -1 END) ON CONFLICT (queue, state, slot) DO UPDATE SET n = c.n + EXCLUDED.n; END IF; "
       "RETURN NULL; END $$;"},
  };
  {
    // The same submit loop on SQLite (one node), for scale.
    store_testing::TempDir dir;
    auto sqlite = Must(SqliteStore::Open(dir.path() + "/bench.db"), "open sqlite");
    int64_t submitted = 0;
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < kDuration) {
      auto tx = Must(sqlite->BeginWrite(), "BeginWrite");
      for (int k = 0; k < kBatch; ++k) Must(tx->Insert(MakeJob("q", 1'000'000)), "Insert");
      Must(tx->Commit(), "Commit");
      submitted += kBatch;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("sqlite                  nodes 1: %6.0f submits/s\n", submitted / secs);
  }
  for (const auto& [variant, sql] : variants) {
    if (!sql.empty()) Exec(*admin, sql);
    for (int nodes = 1; nodes <= 2; ++nodes) {
      std::vector<std::unique_ptr<PostgresStore>> stores;
      for (int i = 0; i < nodes; ++i) stores.push_back(OpenStore());
      const std::string queue = fmt::format("q{}{}", variant, nodes);
      std::atomic<int64_t> submitted{0};
      std::vector<std::thread> threads;
      const auto start = std::chrono::steady_clock::now();
      for (auto& store : stores) {
        threads.emplace_back([&, s = store.get()] {
          while (std::chrono::steady_clock::now() - start < kDuration) {
            auto tx = Must(s->BeginWrite(), "BeginWrite");
            for (int k = 0; k < kBatch; ++k) Must(tx->Insert(MakeJob(queue, 1'000'000)), "Insert");
            Must(tx->Commit(), "Commit");
            submitted += kBatch;
          }
        });
      }
      for (auto& t : threads) t.join();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      // Claims of the jobs just submitted, 64 per transaction, by the same nodes.
      std::atomic<int64_t> claimed{0};
      std::mutex claimed_mu;
      std::vector<Job> to_finish;
      threads.clear();
      const auto claim_start = std::chrono::steady_clock::now();
      for (auto& store : stores) {
        threads.emplace_back([&, s = store.get()] {
          for (;;) {
            auto tx = Must(s->BeginWrite(), "BeginWrite");
            auto jobs = Must(tx->Claim(ClaimParams{queue, kBatch, s->node_name(),
                                                   store_testing::kT0, store_testing::kT0 + 1}),
                             "Claim");
            Must(tx->Commit(), "Commit");
            if (jobs.empty()) return;
            claimed += static_cast<int64_t>(jobs.size());
            std::lock_guard lock(claimed_mu);
            for (Job& j : jobs) to_finish.push_back(std::move(j));
          }
        });
      }
      for (auto& t : threads) t.join();
      const double claim_secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - claim_start).count();
      // Each job finished by its own statement, 64 per transaction.
      const auto finish_start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < to_finish.size(); i += kBatch) {
        auto tx = Must(stores[0]->BeginWrite(), "BeginWrite");
        for (size_t k = i; k < std::min(to_finish.size(), i + kBatch); ++k) {
          const Job& j = to_finish[k];
          Must(tx->Finish(AttemptOutcome::Succeeded(j.id, j.lease_token, store_testing::kT0, "r",
                                                    "text/plain")),
               "Finish");
        }
        Must(tx->Commit(), "Commit");
      }
      const double finish_secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - finish_start).count();
      std::printf("notify per %-4s nodes %d: %6.0f submits/s %6.0f claims/s %6.0f finishes/s\n",
                  variant.c_str(), nodes, submitted / secs, claimed / claim_secs,
                  to_finish.size() / finish_secs);
    }
  }
}

}  // namespace
}  // namespace acceptd
