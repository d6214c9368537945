// Pool: up to `size` libpq connections to one database, shared by a store's
// reads and its write transaction.
//
// Connections are made lazily, on the first Acquire that finds none idle.
// A connection that broke (or was returned inside a transaction) is dropped,
// and so are the idle ones then (after a server restart they are all dead);
// the next Acquire makes a new one. A failed connect starts a backoff (100 ms
// doubling to 2 s) during which Acquire fails at once with kUnavailable
// instead of hammering the server, so callers answer 503 quickly.
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/postgres/pg_conn.h"

namespace acceptd::pg {

class Pool {
 public:
  struct Options {
    std::vector<std::string> keywords;  // PQconnectdbParams keywords
    std::vector<std::string> values;
    int size = 8;
    // Run on each new connection before use (session settings, checks); an
    // error drops the connection.
    std::function<Status(Conn&)> on_connect;
    // How long Acquire waits for a connection while all are in use.
    std::chrono::milliseconds acquire_timeout{10'000};
  };

  // A borrowed connection that goes back to the pool (or is dropped if it
  // broke) when the lease ends.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_) pool_->Release(std::move(conn_));
    }
    Conn* operator->() { return conn_.get(); }
    Conn& operator*() { return *conn_; }
    // Whether the connection came fresh from a connect (not idle in the pool).
    bool fresh() const { return fresh_; }
    void set_fresh(bool f) { fresh_ = f; }

   private:
    Pool* pool_;
    std::unique_ptr<Conn> conn_;
    bool fresh_ = false;
  };

  explicit Pool(Options options) : options_(std::move(options)) {}
  ~Pool();

  Result<Lease> Acquire();
  // Drops the idle connections (the next Acquire reconnects).
  void DropIdle();
  // The backend pids of the connections currently idle or in use (tests).
  std::vector<int> BackendPids();

 private:
  void Release(std::unique_ptr<Conn> conn);
  Result<std::unique_ptr<Conn>> Connect();

  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;           // guarded by mu_
  std::vector<int> pids_;                             // guarded by mu_: of every open connection
  int open_ = 0;                                      // guarded by mu_: idle + in use + connecting
  std::chrono::steady_clock::time_point retry_at_{};  // guarded by mu_: connect backoff
  std::chrono::milliseconds backoff_{0};              // guarded by mu_
};

}  // namespace acceptd::pg
