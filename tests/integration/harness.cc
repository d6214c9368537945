#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#ifndef ACCEPTD_BINARY
#error "ACCEPTD_BINARY must name the acceptd executable"
#endif

namespace acceptd::itest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr Millis kStartupTimeout = 30s;
constexpr size_t kStderrTail = 6000;

template <typename Message>
HttpResponse Convert(Message&& m) {
  HttpResponse out;
  out.status = static_cast<int>(m.result_int());
  out.version = m.version();
  for (const auto& field : m) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(m.body());
  return out;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

}  // namespace

pid_t SpawnProcess(const std::string& binary, const std::vector<std::string>& args,
                   const std::string& cwd, const std::string& out_path,
                   const std::string& err_path) {
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
  int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path.c_str(), flags, 0644);
  int err_fd = ::open(err_path.c_str(), flags, 0644);
  if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
    for (int fd : {in_fd, out_fd, err_fd}) {
      if (fd >= 0) ::close(fd);
    }
    throw std::runtime_error("opening output files in " + cwd);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(126);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  if (pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(fork_errno)));
  return pid;
}

std::optional<int> WaitPid(pid_t pid, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return ExitCode(status);
    if (r < 0 && errno != EINTR) {
      throw std::runtime_error("waitpid: " + std::string(std::strerror(errno)));
    }
    if (SteadyClock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("picking a port: " + std::string(std::strerror(err)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---------------------------------------------------------------------------
// HttpResponse

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

bool HttpResponse::HasHeader(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return true;
  }
  return false;
}

json::value HttpResponse::Json() const {
  error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) throw std::runtime_error("response body is not JSON: " + Describe(*this));
  return v;
}

std::string Describe(const HttpResponse& res) {
  std::string out = "HTTP " + std::to_string(res.status);
  if (res.HasHeader("Content-Type")) out += " (" + res.Header("Content-Type") + ")";
  out += " body: " + res.body.substr(0, 600);
  return out;
}

// ---------------------------------------------------------------------------
// HttpClient

struct HttpClient::Impl {
  uint16_t port;
  Millis timeout;
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  int connects = 0;

  void Run() {
    ioc.restart();
    ioc.run();
  }

  void Connect() {
    stream.emplace(ioc);
    buffer.clear();
    error_code ec = asio::error::would_block;
    stream->expires_after(timeout);
    stream->async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port),
                          [&](error_code e) { ec = e; });
    Run();
    if (ec) {
      stream.reset();
      throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " +
                               ec.message());
    }
    ++connects;
  }

  void Fail(std::string_view what, error_code ec) {
    stream.reset();
    throw std::runtime_error(std::string(what) + " (127.0.0.1:" + std::to_string(port) +
                             "): " + ec.message());
  }
};

HttpClient::HttpClient(uint16_t port, Millis timeout) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::Send(std::string_view method, std::string_view target, std::string body,
                              const Headers& headers) {
  Impl& im = *impl_;
  if (!im.stream) im.Connect();
  bhttp::request<bhttp::string_body> req;
  if (bhttp::verb v = bhttp::string_to_verb(method); v != bhttp::verb::unknown) {
    req.method(v);
  } else {
    req.method_string(method);
  }
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(im.port));
  bool framed = false;
  for (const auto& [k, v] : headers) {
    req.insert(k, v);
    if (beast::iequals(k, "Content-Length") || beast::iequals(k, "Transfer-Encoding")) {
      framed = true;
    }
  }
  req.body() = std::move(body);
  if (!framed) req.prepare_payload();

  error_code ec = asio::error::would_block;
  im.stream->expires_after(im.timeout);
  bhttp::async_write(*im.stream, req, [&](error_code e, size_t) { ec = e; });
  im.Run();
  if (ec) im.Fail("writing " + std::string(method) + " " + std::string(target), ec);

  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(1 << 20);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  ec = asio::error::would_block;
  im.stream->expires_after(im.timeout);
  bhttp::async_read(*im.stream, im.buffer, parser, [&](error_code e, size_t) { ec = e; });
  im.Run();
  if (ec) im.Fail("reading the response to " + std::string(method) + " " + std::string(target), ec);
  auto res = parser.release();
  const bool keep_alive = res.keep_alive();
  HttpResponse out = Convert(std::move(res));
  if (!keep_alive) Close();
  return out;
}

HttpResponse HttpClient::Post(std::string_view target, std::string body,
                              std::string_view content_type) {
  Headers h;
  if (!content_type.empty()) h.emplace_back("Content-Type", std::string(content_type));
  return Send("POST", target, std::move(body), h);
}

bool HttpClient::connected() const { return impl_->stream.has_value(); }
int HttpClient::connects() const { return impl_->connects; }

void HttpClient::Close() {
  if (impl_->stream) {
    error_code ignored;
    impl_->stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    impl_->stream.reset();
  }
}

HttpResponse Http(uint16_t port, std::string_view method, std::string_view target, std::string body,
                  const Headers& headers) {
  HttpClient c(port);
  return c.Send(method, target, std::move(body), headers);
}

// ---------------------------------------------------------------------------
// RawConnection

RawConnection::RawConnection(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " +
                             std::strerror(err));
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(std::string_view bytes) {
  const auto deadline = SteadyClock::now() + 10s;
  size_t off = 0;
  while (off < bytes.size()) {
    pollfd p{fd_, POLLOUT, 0};
    const auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
    if (left <= 0) return false;
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;  // EPIPE, ECONNRESET: the server gave up on us
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RawConnection::ReadMore(SteadyClock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    eof_ = true;  // orderly close, or a reset
    return false;
  }
}

std::optional<HttpResponse> RawConnection::ReadResponse(Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    bhttp::response_parser<bhttp::string_body> p;
    p.eager(true);
    p.header_limit(1 << 20);
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    error_code ec;
    size_t used = 0;
    while (used < buffer_.size() && !p.is_done()) {
      size_t n = p.put(asio::buffer(buffer_.data() + used, buffer_.size() - used), ec);
      used += n;
      if (ec == bhttp::error::need_more) {
        ec = {};
        break;
      }
      if (ec) throw std::runtime_error("unparseable response (" + ec.message() + "): " + buffer_);
      if (n == 0) break;
    }
    if (!p.is_done() && eof_ && p.is_header_done()) {
      p.put_eof(ec);
      if (ec) return std::nullopt;
    }
    if (p.is_done()) {
      buffer_.erase(0, used);
      return Convert(p.release());
    }
    if (eof_) return std::nullopt;
    if (!ReadMore(deadline) && !eof_) return std::nullopt;  // timed out
  }
}

bool RawConnection::WaitClosed(Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!eof_) {
    if (!ReadMore(deadline) && !eof_) return false;
  }
  return true;
}

bool RawConnection::ReadUntil(std::string_view needle, Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (buffer_.find(needle) == std::string::npos) {
    if (eof_ || !ReadMore(deadline)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Polling

bool WaitFor(const std::function<bool()>& pred, Millis timeout, Millis interval) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

// ---------------------------------------------------------------------------
// Processes

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/acceptd-itest-XXXXXX";
  if (!::mkdtemp(pattern.data())) {
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  if (std::getenv("ACCEPTD_ITEST_KEEP")) {
    std::cerr << "keeping " << path_ << "\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::Write(std::string_view name, std::string_view content) const {
  std::ofstream out(File(name), std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + File(name));
}

ProcessResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::string& cwd, Millis timeout) {
  TempDir io;
  const std::string dir = cwd.empty() ? io.path() : cwd;
  pid_t pid = SpawnProcess(binary, args, dir, io.File("stdout"), io.File("stderr"));
  ProcessResult r;
  std::optional<int> code = WaitPid(pid, timeout);
  if (!code) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.timed_out = true;
    code = ExitCode(status);
  }
  r.exit_code = *code;
  r.out = ReadFile(io.File("stdout"));
  r.err = ReadFile(io.File("stderr"));
  return r;
}

ProcessResult RunAcceptd(const std::vector<std::string>& args, const std::string& cwd,
                         Millis timeout) {
  return RunProcess(ACCEPTD_BINARY, args, cwd, timeout);
}

// ---------------------------------------------------------------------------
// Stores

StoreKind TestStore() {
  const char* v = std::getenv("ACCEPTD_TEST_STORE");
  const std::string_view name = v != nullptr ? v : "";
  if (name.empty() || name == "sqlite") return StoreKind::kSqlite;
  if (name == "postgres") return StoreKind::kPostgres;
  throw std::runtime_error("ACCEPTD_TEST_STORE=" + std::string(name) +
                           ": expected sqlite or postgres");
}

const char* StoreName(StoreKind kind) {
  return kind == StoreKind::kPostgres ? "postgres" : "sqlite";
}

std::string PostgresAdminUrl() {
  const char* v = std::getenv("ACCEPTD_TEST_POSTGRES");
  return v != nullptr ? v : "";
}

bool InCi() {
  const char* v = std::getenv("CI");
  return v != nullptr && std::string_view(v) == "true";
}

namespace {

// Under ACCEPTD_TEST_STORE=postgres, a run without a server to create
// databases on skips every test; not under CI, where each test that starts a
// server fails instead (SharedStore::Postgres throws). A failure here would
// not do: gtest then reports every test as skipped, and ctest believes that.
class StoreEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!TestingPostgres() || !PostgresAdminUrl().empty() || InCi()) return;
    // gtest 1.12 then counts the tests as passed, without a word: this line
    // is what ctest (SKIP_REGULAR_EXPRESSION) and a reader see.
    std::cout << "[  SKIPPED ] no PostgreSQL server to run against (ACCEPTD_TEST_POSTGRES)"
              << std::endl;
    GTEST_SKIP() << "ACCEPTD_TEST_STORE=postgres needs ACCEPTD_TEST_POSTGRES (a libpq URI; "
                    "scripts/pg-cluster.sh start DIR prints one)";
  }
};

[[maybe_unused]] ::testing::Environment* const kStoreEnvironment =
    ::testing::AddGlobalTestEnvironment(new StoreEnvironment);

std::string FindProgram(const std::string& name, const std::string& fallback) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return fallback;
}

// `url` (a libpq URI, postgres[ql]://[authority]/[dbname][?params]) naming
// the database `database` instead.
std::string WithDatabase(const std::string& url, const std::string& database) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    throw std::runtime_error("not a libpq URI (postgresql://...): " + url);
  }
  const size_t authority_end = url.find_first_of("/?", scheme + 3);
  if (authority_end == std::string::npos) return url + "/" + database;
  if (url[authority_end] == '?') {
    return url.substr(0, authority_end) + "/" + database + url.substr(authority_end);
  }
  const size_t path_end = url.find('?', authority_end);
  return url.substr(0, authority_end) + "/" + database +
         (path_end == std::string::npos ? "" : url.substr(path_end));
}

// A database name no other test (process) picks.
std::string FreshDatabaseName() {
  static std::atomic<int> counter{0};
  static const uint32_t salt = std::random_device{}();
  char salt_hex[9];
  std::snprintf(salt_hex, sizeof salt_hex, "%08x", salt);
  return "acceptd_test_" + std::to_string(::getpid()) + "_" + salt_hex + "_" +
         std::to_string(counter.fetch_add(1));
}

}  // namespace

std::string Psql(const std::string& url, const std::string& sql, Millis timeout) {
  static const std::string psql = FindProgram("psql", "/usr/lib/postgresql/15/bin/psql");
  ProcessResult r = RunProcess(
      psql, {"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql}, {}, timeout);
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error("psql -c '" + sql + "' on " + url +
                             (r.timed_out ? " timed out" : " failed") + ": " + r.err);
  }
  return r.out;
}

std::shared_ptr<SharedStore> SharedStore::Create() {
  if (TestingPostgres()) return Postgres();
  // A directory of its own, removed with the store.
  auto dir = std::make_shared<TempDir>();
  auto store = Sqlite(dir->File("acceptd.db"));
  store->sqlite_dir_ = std::move(dir);
  return store;
}

std::shared_ptr<SharedStore> SharedStore::Sqlite(std::string path) {
  std::shared_ptr<SharedStore> store(new SharedStore());
  store->kind_ = StoreKind::kSqlite;
  store->url_ = "sqlite:" + path;
  return store;
}

std::shared_ptr<SharedStore> SharedStore::Postgres(std::string admin_url) {
  if (admin_url.empty()) {
    throw std::runtime_error(
        "a PostgreSQL store needs ACCEPTD_TEST_POSTGRES (scripts/test.sh sets it; "
        "scripts/pg-cluster.sh start DIR prints one)");
  }
  std::shared_ptr<SharedStore> store(new SharedStore());
  store->kind_ = StoreKind::kPostgres;
  store->database_ = FreshDatabaseName();
  store->admin_url_ = std::move(admin_url);
  Psql(store->admin_url_, "CREATE DATABASE " + store->database_);
  store->url_ = WithDatabase(store->admin_url_, store->database_);
  return store;
}

SharedStore::~SharedStore() {
  if (kind_ != StoreKind::kPostgres || database_.empty()) return;
  if (std::getenv("ACCEPTD_ITEST_KEEP")) {
    std::cerr << "keeping database " << url_ << "\n";
    return;
  }
  try {
    Psql(admin_url_, "DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    // The server may be gone (a test's own cluster, stopped first): nothing
    // left to clean up then, and a destructor must not throw.
    std::cerr << "dropping the test database: " << e.what() << "\n";
  }
}

std::string SharedStore::Sql(const std::string& sql) const {
  if (kind_ != StoreKind::kPostgres) throw std::runtime_error("SharedStore::Sql on SQLite");
  return Psql(url_, sql);
}

PostgresCluster::PostgresCluster() {
  // Run as root, the server runs as the postgres user, which must reach
  // the cluster's directory through this one (mkdtemp made it 0700).
  if (::chmod(dir_.path().c_str(), 0711) != 0) {
    throw std::runtime_error("chmod " + dir_.path() + ": " + std::strerror(errno));
  }
  cluster_dir_ = dir_.File("pg");
  Script("start");
  ProcessResult r =
      RunProcess(std::string(ACCEPTD_SOURCE_DIR) + "/scripts/pg-cluster.sh", {"url", cluster_dir_});
  admin_url_ = r.out.substr(0, r.out.find('\n'));
  if (r.exit_code != 0 || admin_url_.empty()) {
    throw std::runtime_error("scripts/pg-cluster.sh url: " + r.err);
  }
}

PostgresCluster::~PostgresCluster() {
  try {
    Script("stop");
  } catch (const std::exception& e) {
    std::cerr << "stopping the test's PostgreSQL cluster: " << e.what() << "\n";
  }
}

void PostgresCluster::Crash() { Script("crash"); }

void PostgresCluster::Start() { Script("start"); }

void PostgresCluster::Script(const std::string& command) {
  ProcessResult r = RunProcess(std::string(ACCEPTD_SOURCE_DIR) + "/scripts/pg-cluster.sh",
                               {command, cluster_dir_}, {}, 90s);
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error("scripts/pg-cluster.sh " + command + " " + cluster_dir_ +
                             (r.timed_out ? " timed out" : " failed") + ": " + r.err);
  }
}

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {
  config_path_ = dir_.File("acceptd.toml");
  if (options_.store) {
    store_ = options_.store;
  } else if (TestingPostgres()) {
    store_ = SharedStore::Postgres();
  } else {
    store_ = SharedStore::Sqlite(dir_.File("acceptd.db"));
  }
  stderr_path_ = dir_.File("stderr.log");
  dir_.Write("acceptd.toml", BuildConfig());
  Start(/*may_change_port=*/true);
}

ServerProcess::~ServerProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- acceptd stderr (" << stderr_path_ << ") ----\n"
              << Tail(Stderr(), kStderrTail) << "\n---- end of acceptd stderr ----\n";
  }
}

std::string ServerProcess::BuildConfig() const {
  std::map<std::string, std::string> server = {
      {"threads", "2"},
      {"promote_interval", "0.02"},
  };
  for (const auto& [k, v] : options_.server) server[k] = v;
  std::string out = "[server]\n";
  for (const auto& [k, v] : server) out += k + " = " + v + "\n";
  out += "\n[log]\nlevel = \"" + options_.log_level + "\"\n" + options_.log + "\n";
  out += options_.queues;
  out += "\n";
  return out;
}

void ServerProcess::Spawn() {
  std::vector<std::string> args = {"serve"};
  if (options_.config_file) {
    args.push_back("--config");
    args.push_back(config_path_);
  }
  args.insert(args.end(),
              {"--listen", "127.0.0.1:" + std::to_string(port_), "--store", store_->url()});
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  pid_ = SpawnProcess(ACCEPTD_BINARY, args, dir_.path(), dir_.File("stdout.log"), stderr_path_);
}

void ServerProcess::Start(bool may_change_port) {
  if (running()) throw std::runtime_error("acceptd is already running");
  for (int attempt = 1;; ++attempt) {
    if (may_change_port) port_ = FreePort();
    const size_t stderr_before = Stderr().size();
    Spawn();
    const auto deadline = SteadyClock::now() + kStartupTimeout;
    bool retry = false;
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        const std::string err = Stderr().substr(stderr_before);
        if (may_change_port && attempt < 3 && err.find("cannot listen") != std::string::npos) {
          retry = true;  // lost a race for the port: pick another
          break;
        }
        throw std::runtime_error("acceptd exited with code " + std::to_string(ExitCode(status)) +
                                 " before answering /healthz; stderr:\n" + Tail(err, kStderrTail));
      }
      try {
        if (Http(port_, "GET", "/healthz").status == 200) return;
      } catch (const std::exception&) {
        // not listening yet
      }
      if (SteadyClock::now() >= deadline) {
        Kill();
        throw std::runtime_error("acceptd did not answer /healthz on port " +
                                 std::to_string(port_) + " in time; stderr:\n" +
                                 Tail(Stderr(), kStderrTail));
      }
      std::this_thread::sleep_for(10ms);
    }
    if (!retry) return;
  }
}

void ServerProcess::Restart() { Start(/*may_change_port=*/false); }

void ServerProcess::RestartOnNewPort() { Start(/*may_change_port=*/true); }

void ServerProcess::Signal(int sig) {
  if (!running()) throw std::runtime_error("acceptd is not running");
  ::kill(pid_, sig);
}

std::optional<int> ServerProcess::WaitExit(Millis timeout) {
  if (!running()) throw std::runtime_error("acceptd is not running");
  auto code = WaitPid(pid_, timeout);
  if (code) pid_ = -1;
  return code;
}

int ServerProcess::Terminate(Millis timeout) {
  Signal(SIGTERM);
  auto code = WaitExit(timeout);
  if (!code) {
    Kill();
    throw std::runtime_error("acceptd did not exit within " + std::to_string(timeout.count()) +
                             " ms of SIGTERM");
  }
  return *code;
}

void ServerProcess::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string ServerProcess::Stderr() const { return ReadFile(stderr_path_); }

HttpResponse ServerProcess::Get(std::string_view target) const {
  return Http(port_, "GET", target);
}

HttpResponse ServerProcess::Delete(std::string_view target) const {
  return Http(port_, "DELETE", target);
}

HttpResponse ServerProcess::Post(std::string_view target, std::string body,
                                 std::string_view content_type) const {
  Headers h;
  if (!content_type.empty()) h.emplace_back("Content-Type", std::string(content_type));
  return Http(port_, "POST", target, std::move(body), h);
}

HttpResponse ServerProcess::Submit(std::string_view queue, std::string body, std::string_view query,
                                   std::string_view content_type) const {
  return Post("/v1/queues/" + std::string(queue) + "/jobs" + std::string(query), std::move(body),
              content_type);
}

std::string ServerProcess::SubmitOk(std::string_view queue, std::string body,
                                    std::string_view query, std::string_view content_type) const {
  HttpResponse res = Submit(queue, std::move(body), query, content_type);
  if (res.status != 202) {
    throw std::runtime_error("submit to queue " + std::string(queue) + std::string(query) +
                             " answered " + Describe(res));
  }
  std::string id = Str(res.Json(), "id");
  if (!IsJobId(id)) throw std::runtime_error("submit answered a bad id: " + Describe(res));
  return id;
}

json::object ServerProcess::Job(const std::string& id) const {
  HttpResponse res = Get("/v1/jobs/" + id);
  if (res.status != 200 && res.status != 202 && res.status != 302) {
    throw std::runtime_error("GET /v1/jobs/" + id + " answered " + Describe(res));
  }
  return Obj(res.Json());
}

json::object ServerProcess::WaitState(const std::string& id, std::string_view state,
                                      Millis timeout) const {
  json::object doc;
  if (WaitFor(
          [&] {
            doc = Job(id);
            return Str(doc, "state") == state;
          },
          timeout)) {
    return doc;
  }
  throw std::runtime_error("job " + id + " did not become " + std::string(state) + " within " +
                           std::to_string(timeout.count()) + " ms; last: " + json::serialize(doc));
}

json::object ServerProcess::WaitTerminal(const std::string& id, Millis timeout) const {
  json::object doc;
  if (WaitFor(
          [&] {
            doc = Job(id);
            const std::string s = Str(doc, "state");
            return s == "succeeded" || s == "failed" || s == "canceled";
          },
          timeout)) {
    return doc;
  }
  throw std::runtime_error("job " + id + " did not finish within " +
                           std::to_string(timeout.count()) + " ms; last: " + json::serialize(doc));
}

json::object ServerProcess::Queue(std::string_view name) const {
  HttpResponse res = Get("/v1/queues");
  if (res.status != 200) throw std::runtime_error("GET /v1/queues answered " + Describe(res));
  json::value v = res.Json();
  for (const json::value& q : v.at("queues").as_array()) {
    if (Str(q, "name") == name) return q.as_object();
  }
  throw std::runtime_error("GET /v1/queues has no queue " + std::string(name) + ": " + res.body);
}

json::value ServerProcess::ListJobs(const std::string& query) const {
  HttpResponse r = Get("/v1/jobs" + query);
  if (r.status != 200) throw std::runtime_error("GET /v1/jobs" + query + ": " + Describe(r));
  if (r.Header("Content-Type") != "application/json") {
    throw std::runtime_error("GET /v1/jobs: content type " + r.Header("Content-Type"));
  }
  return r.Json();
}

// ---------------------------------------------------------------------------
// Documents

std::vector<std::string> JobIds(const json::value& page) {
  std::vector<std::string> out;
  for (const json::value& j : page.at("jobs").as_array()) out.push_back(Str(j, "id"));
  return out;
}

std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "<not an object>";
  const json::value* m = v.as_object().if_contains(key);
  if (!m) return "<missing>";
  if (m->is_null()) return "<null>";
  if (m->is_string()) return std::string(m->as_string());
  return json::serialize(*m);
}

int64_t Int(const json::value& v, std::string_view key) {
  const json::value* m = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  if (!m) throw std::runtime_error("no member " + std::string(key) + " in " + json::serialize(v));
  error_code ec;
  auto n = m->to_number<int64_t>(ec);
  if (ec) {
    throw std::runtime_error("member " + std::string(key) + " is not an integer in " +
                             json::serialize(v));
  }
  return n;
}

bool IsNull(const json::value& v, std::string_view key) {
  const json::value* m = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return m && m->is_null();
}

bool Has(const json::value& v, std::string_view key) {
  return v.is_object() && v.as_object().contains(key);
}

const json::object& Obj(const json::value& v) {
  if (!v.is_object()) throw std::runtime_error("not a JSON object: " + json::serialize(v));
  return v.as_object();
}

bool IsJobId(std::string_view s) {
  static const std::regex re("^[0-9a-f]{32}$");
  return std::regex_match(s.begin(), s.end(), re);
}

bool IsTimestamp(std::string_view s) {
  static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  return std::regex_match(s.begin(), s.end(), re);
}

int64_t ParseTime(std::string_view s) {
  if (!IsTimestamp(s)) throw std::runtime_error("not an RFC 3339 time: " + std::string(s));
  std::tm tm{};
  int ms = 0;
  std::string copy(s);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    throw std::runtime_error("not an RFC 3339 time: " + copy);
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

int64_t TimeField(const json::value& doc, std::string_view key) { return ParseTime(Str(doc, key)); }

int64_t NowMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void ExpectValidJobDocument(const json::value& doc, std::string_view where) {
  SCOPED_TRACE(::testing::Message() << where << " document: " << json::serialize(doc));
  ASSERT_TRUE(doc.is_object());
  const std::string id = Str(doc, "id");
  EXPECT_TRUE(IsJobId(id)) << "id " << id;
  EXPECT_TRUE(doc.at("queue").is_string());
  const std::string state = Str(doc, "state");
  const bool terminal = state == "succeeded" || state == "failed" || state == "canceled";
  EXPECT_TRUE(terminal || state == "queued" || state == "running") << "state " << state;
  for (const char* key : {"created_at", "updated_at"}) {
    EXPECT_TRUE(IsTimestamp(Str(doc, key))) << key << " " << Str(doc, key);
  }
  for (const char* key : {"started_at", "finished_at", "expires_at"}) {
    EXPECT_TRUE(Has(doc, key)) << key << " is missing";
    EXPECT_TRUE(IsNull(doc, key) || IsTimestamp(Str(doc, key))) << key << " " << Str(doc, key);
  }
  if (IsTimestamp(Str(doc, "created_at")) && IsTimestamp(Str(doc, "updated_at"))) {
    EXPECT_LE(TimeField(doc, "created_at"), TimeField(doc, "updated_at"));
  }
  // finished_at and expires_at are set exactly when the job is terminal.
  EXPECT_EQ(terminal, !IsNull(doc, "finished_at")) << "finished_at " << Str(doc, "finished_at");
  EXPECT_EQ(terminal, !IsNull(doc, "expires_at")) << "expires_at " << Str(doc, "expires_at");
  if (state == "running" || state == "succeeded" || state == "failed") {
    EXPECT_FALSE(IsNull(doc, "started_at")) << "a " << state << " job has started";
  }
  const json::value* attempts = doc.as_object().if_contains("attempts");
  const json::value* max_attempts = doc.as_object().if_contains("max_attempts");
  ASSERT_TRUE(attempts && attempts->is_int64());
  ASSERT_TRUE(max_attempts && max_attempts->is_int64());
  EXPECT_GE(attempts->as_int64(), 0);
  EXPECT_GE(max_attempts->as_int64(), 1);
  EXPECT_LE(attempts->as_int64(), max_attempts->as_int64());
  EXPECT_TRUE(doc.at("priority").is_int64());
  const json::value& progress = doc.at("progress");
  if (!progress.is_null()) {
    EXPECT_TRUE(progress.is_object());
    if (progress.is_object()) {
      EXPECT_GE(Int(progress, "percent"), 0);
      EXPECT_LE(Int(progress, "percent"), 100);
      EXPECT_TRUE(progress.at("message").is_string());
    }
  }
  EXPECT_EQ(Str(doc, "status_url"), "/v1/jobs/" + id);
  if (state == "succeeded") {
    EXPECT_EQ(Str(doc, "result_url"), "/v1/jobs/" + id + "/result");
  } else {
    EXPECT_FALSE(Has(doc, "result_url")) << "result_url on a " << state << " job";
  }
  if (state == "failed") {
    ASSERT_TRUE(Has(doc, "error"));
    EXPECT_TRUE(doc.at("error").at("type").is_string());
    EXPECT_TRUE(doc.at("error").at("message").is_string());
  } else {
    EXPECT_FALSE(Has(doc, "error")) << "error on a " << state << " job";
  }
  EXPECT_TRUE(doc.at("cancel_requested").is_bool());
}

void ExpectProblem(const HttpResponse& res, int status, std::string_view where) {
  SCOPED_TRACE(::testing::Message() << where << " " << Describe(res));
  EXPECT_EQ(res.status, status);
  EXPECT_EQ(res.Header("Content-Type"), "application/problem+json");
  error_code ec;
  json::value v = json::parse(res.body, ec);
  ASSERT_FALSE(ec) << "problem body is not JSON";
  ASSERT_TRUE(v.is_object());
  for (const char* key : {"type", "title", "detail"}) {
    EXPECT_TRUE(v.as_object().contains(key) && v.at(key).is_string()) << "member " << key;
  }
  EXPECT_TRUE(v.as_object().contains("status") && v.at("status").is_int64() &&
              v.at("status").as_int64() == status)
      << "member status";
}

bool IsGone(pid_t pid, Millis timeout) {
  return WaitFor(
      [pid] {
        std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
        size_t close = stat.rfind(')');
        if (stat.empty() || close == std::string::npos || close + 2 >= stat.size()) return true;
        return stat[close + 2] == 'Z' || stat[close + 2] == 'X';
      },
      timeout);
}

pid_t ReadPid(const std::string& path) {
  pid_t pid = 0;
  WaitFor(
      [&] {
        std::string text = ReadFile(path);
        if (text.empty() || text.back() != '\n') return false;
        pid = std::stoi(text);
        return true;
      },
      20s);
  return pid;
}

}  // namespace acceptd::itest
