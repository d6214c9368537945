// Integration-test harness: runs the real acceptd binary (ACCEPTD_BINARY) in
// a child process with its own config, store and loopback port, and talks
// HTTP to it.
//
// Helpers throw std::runtime_error on transport or process failures (refused
// connection, timeout, early exit); gtest reports the exception as a failure
// of the test that called them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace acceptd::itest {

namespace json = boost::json;
using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// HTTP

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  unsigned version = 11;  // 10 or 11
  Headers headers;
  std::string body;

  // The first header of that name (case-insensitive), or "" if absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // The body parsed as JSON; throws if it is not JSON.
  json::value Json() const;
};

// One HTTP/1.1 keep-alive connection to 127.0.0.1:port, used synchronously.
// Connects lazily, and again only after the server asked to close.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port, Millis timeout = 15s);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads its response. `method` may be any token.
  // A Content-Type header is sent only if given in `headers`.
  HttpResponse Send(std::string_view method, std::string_view target, std::string body = {},
                    const Headers& headers = {});
  HttpResponse Get(std::string_view target) { return Send("GET", target); }
  HttpResponse Delete(std::string_view target) { return Send("DELETE", target); }
  HttpResponse Post(std::string_view target, std::string body = {},
                    std::string_view content_type = "application/json");

  bool connected() const;
  int connects() const;  // TCP connections opened so far
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
HttpResponse Http(uint16_t port, std::string_view method, std::string_view target,
                  std::string body = {}, const Headers& headers = {});

// A plain TCP connection for requests a well-behaved client would not send
// (malformed, HTTP/1.0, pipelined, oversized headers, chunked bodies).
class RawConnection {
 public:
  explicit RawConnection(uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Writes all bytes; false if the peer closed or reset the connection.
  bool Send(std::string_view bytes);
  // Reads and parses the next response; nullopt if the connection ended
  // (or `timeout` passed) before a whole response arrived.
  std::optional<HttpResponse> ReadResponse(Millis timeout = 10s);
  // True once the peer has closed (or reset) the connection, waiting at most
  // `timeout`; received bytes are kept for ReadResponse.
  bool WaitClosed(Millis timeout = 5s);
  // Reads until the bytes received and not yet consumed by ReadResponse
  // contain `needle` (for watching a streamed body arrive); false if the
  // connection ended or `timeout` passed first.
  bool ReadUntil(std::string_view needle, Millis timeout = 10s);
  // The bytes received and not yet consumed by ReadResponse.
  const std::string& received() const { return buffer_; }

 private:
  bool ReadMore(SteadyClock::time_point deadline);
  int fd_ = -1;
  bool eof_ = false;
  std::string buffer_;
};

// ---------------------------------------------------------------------------
// Polling

// Calls `pred` every `interval` until it returns true (true) or `timeout`
// passes (false). Exceptions from `pred` propagate.
bool WaitFor(const std::function<bool()>& pred, Millis timeout, Millis interval = 10ms);

// ---------------------------------------------------------------------------
// Processes

struct ProcessResult {
  int exit_code = -1;  // 128 + signal if killed by a signal
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs `binary` (a path) with `args` in `cwd` (a fresh temp dir if empty) and
// waits for it; after `timeout` kills it and sets timed_out.
ProcessResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::string& cwd = {}, Millis timeout = 20s);
// RunProcess of ACCEPTD_BINARY.
ProcessResult RunAcceptd(const std::vector<std::string>& args, const std::string& cwd = {},
                         Millis timeout = 20s);

// fork + exec of `binary` with `args` in `cwd`, stdin from /dev/null and
// stdout/stderr appended to the given files. The child dies with the test
// process (PR_SET_PDEATHSIG) and inherits no other descriptors. Beware: with
// the *thread* that spawned it, in fact, so spawn (and construct a
// ServerProcess) only from threads that outlive the child.
pid_t SpawnProcess(const std::string& binary, const std::vector<std::string>& args,
                   const std::string& cwd, const std::string& out_path,
                   const std::string& err_path);
// waitpid with a deadline: the exit code (128 + signal if killed), or nullopt
// if the process is still running after `timeout` (0: just look).
std::optional<int> WaitPid(pid_t pid, Millis timeout);

// The whole content of a file ("" if it cannot be read).
std::string ReadFile(const std::string& path);
// True once `pid` no longer runs, within `timeout`: no such process, or a
// zombie (killed, waiting for a parent that is not the test to reap it).
bool IsGone(pid_t pid, Millis timeout = 10s);
// The pid a test command wrote into `path` as a whole line; 0 if none came
// within 20 s.
pid_t ReadPid(const std::string& path);
// A loopback port nobody listens on right now (the kernel picks it).
uint16_t FreePort();

// A fresh, empty directory under $TMPDIR (or /tmp), removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }
  void Write(std::string_view name, std::string_view content) const;

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------
// Stores
//
// The integration tests run against SQLite, and a second time against
// PostgreSQL (ctest runs each again as pg.<name>) with
//   ACCEPTD_TEST_STORE=postgres  every ServerProcess gets a fresh database
//   ACCEPTD_TEST_POSTGRES=URI    a libpq URI of a maintenance database on a
//                                server where the tests may create databases
//                                (scripts/pg-cluster.sh starts one;
//                                scripts/test.sh exports it)
// Under postgres without ACCEPTD_TEST_POSTGRES every test skips, or, when
// CI=true (CI must run them), every test that starts a server fails.

enum class StoreKind { kSqlite, kPostgres };

// The store of this run (ACCEPTD_TEST_STORE unset or "sqlite": kSqlite,
// "postgres": kPostgres; anything else throws).
StoreKind TestStore();
inline bool TestingPostgres() { return TestStore() == StoreKind::kPostgres; }
const char* StoreName(StoreKind kind);  // "sqlite", "postgres"
// ACCEPTD_TEST_POSTGRES, or "" if unset.
std::string PostgresAdminUrl();
// True under CI (CI=true), where tests that need a PostgreSQL server fail
// rather than skip without one.
bool InCi();

// For tests of SQLite's own storage (files, VFS faults, sqlite: URLs): skips
// the test under PostgreSQL, saying why.
#define ACCEPTD_SQLITE_ONLY(why)                                                       \
  if (::acceptd::itest::TestingPostgres()) {                                           \
    GTEST_SKIP() << "tests SQLite's own storage, not run against PostgreSQL: " << why; \
  }
// For tests that need a PostgreSQL server whatever the run's store (several
// nodes on one database): skips without ACCEPTD_TEST_POSTGRES, or fails
// under CI.
#define ACCEPTD_REQUIRE_POSTGRES()                                                   \
  if (::acceptd::itest::PostgresAdminUrl().empty()) {                                \
    if (::acceptd::itest::InCi()) {                                                  \
      GTEST_FAIL() << "CI=true but ACCEPTD_TEST_POSTGRES is unset (scripts/test.sh " \
                      "sets it)";                                                    \
    }                                                                                \
    GTEST_SKIP() << "needs a PostgreSQL server: set ACCEPTD_TEST_POSTGRES "          \
                    "(scripts/pg-cluster.sh start DIR prints one)";                  \
  }

// One store, for one server or shared by several (nodes on one database):
// an SQLite file, or a fresh PostgreSQL database created on construction and
// dropped (WITH (FORCE): servers still connected are cut off) on
// destruction.
class SharedStore {
 public:
  // A fresh store of this run's kind (TestStore()).
  static std::shared_ptr<SharedStore> Create();
  // The SQLite file `path` (not removed on destruction).
  static std::shared_ptr<SharedStore> Sqlite(std::string path);
  // A fresh database on the server whose maintenance database `admin_url`
  // names (default: ACCEPTD_TEST_POSTGRES; throws if that is unset).
  static std::shared_ptr<SharedStore> Postgres(std::string admin_url = PostgresAdminUrl());
  ~SharedStore();
  SharedStore(const SharedStore&) = delete;
  SharedStore& operator=(const SharedStore&) = delete;

  StoreKind kind() const { return kind_; }
  // The --store URL of acceptd.
  const std::string& url() const { return url_; }
  // PostgreSQL only: runs `sql` on the database (psql) and returns its rows,
  // unaligned, one per line, columns separated by '|'; throws on error.
  std::string Sql(const std::string& sql) const;

 private:
  SharedStore() = default;
  StoreKind kind_ = StoreKind::kSqlite;
  std::shared_ptr<TempDir> sqlite_dir_;  // Create(): the SQLite file's own directory
  std::string url_, admin_url_, database_;
};

// Runs `sql` through psql on the database `url` names; its rows as in
// SharedStore::Sql. Throws on error.
std::string Psql(const std::string& url, const std::string& sql, Millis timeout = 30s);

// A throw-away PostgreSQL cluster of a test's own (scripts/pg-cluster.sh in a
// temp dir), for tests that stop and start the database server. Started on
// construction, stopped and removed on destruction.
class PostgresCluster {
 public:
  PostgresCluster();
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // The libpq URI of its maintenance database (for SharedStore::Postgres).
  const std::string& admin_url() const { return admin_url_; }
  // Stops the server as a crash would (pg_ctl stop -m immediate).
  void Crash();
  // Starts it again (after Crash) on the same port.
  void Start();

 private:
  void Script(const std::string& command);
  TempDir dir_;
  std::string cluster_dir_, admin_url_;
};

struct ServerOptions {
  // [server] keys to TOML values, e.g. {"lease", "1"}; merged over defaults
  // tuned for tests (threads = 2, promote_interval = 0.02, ...).
  std::map<std::string, std::string> server;
  // Raw TOML appended after [server] and [log], e.g. "[queues.q]\n...";
  // empty: no [queues] table, so the built-in default queues.
  std::string queues;
  std::string log_level = "info";
  // Raw TOML lines appended to [log], e.g. "format = \"json\"\n".
  std::string log;
  // Extra command-line arguments for `acceptd serve`.
  std::vector<std::string> args;
  // False: no --config at all (built-in defaults for everything).
  bool config_file = true;
  // The store; null: a fresh one of this run's kind, for this server alone.
  // Several servers given one SharedStore are nodes on one database.
  std::shared_ptr<SharedStore> store;

  // Builders: ServerOptions().Set("lease", "1").WithQueues("[queues.q]...").
  ServerOptions& Set(const std::string& key, const std::string& toml_value) {
    server[key] = toml_value;
    return *this;
  }
  ServerOptions& WithQueues(std::string toml) {
    queues = std::move(toml);
    return *this;
  }
  ServerOptions& WithLog(std::string toml) {
    log = std::move(toml);
    return *this;
  }
  ServerOptions& Arg(std::string arg) {
    args.push_back(std::move(arg));
    return *this;
  }
  ServerOptions& NoConfigFile() {
    config_file = false;
    return *this;
  }
  ServerOptions& Store(std::shared_ptr<SharedStore> shared) {
    store = std::move(shared);
    return *this;
  }
};

// One acceptd process with its own temp dir (config, SQLite store unless
// given a SharedStore or run against PostgreSQL, stderr log) and port. Starts
// in the constructor; killed in the destructor if still running.
class ServerProcess {
 public:
  explicit ServerProcess(ServerOptions options = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts again on the same config, store and port (must be stopped).
  void Restart();
  // Starts again on the same config and store, on a new port (must be
  // stopped): for restarting many times, when another process may have taken
  // the old port meanwhile.
  void RestartOnNewPort();
  // SIGTERM, then waits for the exit; returns the exit code.
  int Terminate(Millis timeout = 60s);
  void Signal(int sig);
  // Waits for the process to exit; its exit code, or nullopt on timeout.
  std::optional<int> WaitExit(Millis timeout);
  // SIGKILL and reap.
  void Kill();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }  // -1 when not running
  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  const SharedStore& store() const { return *store_; }
  std::string Stderr() const;

  // One-shot requests.
  HttpResponse Get(std::string_view target) const;
  HttpResponse Delete(std::string_view target) const;
  HttpResponse Post(std::string_view target, std::string body = {},
                    std::string_view content_type = "application/json") const;
  // POST /v1/queues/{queue}/jobs{query}; `query` includes the '?'.
  HttpResponse Submit(std::string_view queue, std::string body, std::string_view query = {},
                      std::string_view content_type = "application/json") const;
  // Submit that must answer 202; returns the job id (throws otherwise).
  std::string SubmitOk(std::string_view queue, std::string body, std::string_view query = {},
                       std::string_view content_type = "application/json") const;
  // GET /v1/jobs/{id}: the status document (throws unless 200, 202 or 302).
  json::object Job(const std::string& id) const;
  // Polls the job until its state is `state` (throws after `timeout`).
  json::object WaitState(const std::string& id, std::string_view state, Millis timeout = 20s) const;
  // Polls the job until it is succeeded, failed or canceled.
  json::object WaitTerminal(const std::string& id, Millis timeout = 20s) const;
  // GET /v1/queues: the entry of one queue (throws if absent).
  json::object Queue(std::string_view name) const;
  // GET /v1/jobs{query} (`query` empty or starting with '?'): the page;
  // throws unless it is a 200 with a JSON body.
  json::value ListJobs(const std::string& query) const;

 private:
  void Start(bool may_change_port);
  void Spawn();
  std::string BuildConfig() const;

  ServerOptions options_;
  TempDir dir_;
  std::shared_ptr<SharedStore> store_;
  std::string config_path_, stderr_path_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------
// Documents

// Member access that never throws: "<missing>" / "<null>" / serialized JSON
// for non-strings, so failed expectations print something useful.
std::string Str(const json::value& v, std::string_view key);
int64_t Int(const json::value& v, std::string_view key);  // throws if absent/not integer
// The ids of a GET /v1/jobs page, in its order.
std::vector<std::string> JobIds(const json::value& page);
bool IsNull(const json::value& v, std::string_view key);
bool Has(const json::value& v, std::string_view key);
const json::object& Obj(const json::value& v);  // throws if not an object

// Milliseconds since the epoch of an RFC 3339 UTC time with milliseconds
// ("2024-01-02T03:04:05.678Z"); throws if malformed.
int64_t ParseTime(std::string_view rfc3339);
int64_t TimeField(const json::value& doc, std::string_view key);  // ParseTime of a member
int64_t NowMillis();  // wall clock, for comparing with server times

bool IsJobId(std::string_view s);      // 32 lowercase hex
bool IsTimestamp(std::string_view s);  // RFC 3339 UTC with milliseconds

// Failures (as gtest non-fatal failures) for a status document that breaks
// the documented shape; `where` labels the messages.
void ExpectValidJobDocument(const json::value& doc, std::string_view where = {});
// Failures unless `res` is an application/problem+json document with status
// `status` and string members type, title and detail.
void ExpectProblem(const HttpResponse& res, int status, std::string_view where = {});

std::string Describe(const HttpResponse& res);  // for failure messages

}  // namespace acceptd::itest
