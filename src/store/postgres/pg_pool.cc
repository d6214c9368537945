#include "store/postgres/pg_pool.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace acceptd::pg {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2'000};

}  // namespace

Pool::~Pool() {
  std::lock_guard lock(mu_);
  idle_.clear();
}

Result<std::unique_ptr<Conn>> Pool::Connect() {
  auto conn = Conn::Connect(options_.keywords, options_.values);
  if (conn && options_.on_connect) {
    if (auto st = options_.on_connect(**conn); !st) return std::move(st).error();
  }
  return conn;
}

Result<Pool::Lease> Pool::Acquire() {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    if (open_ < options_.size) {
      const auto now = std::chrono::steady_clock::now();
      if (now < retry_at_) {
        return Error::Unavailable("postgres: reconnecting after a failed connect (backoff)",
                                  "store unavailable");
      }
      ++open_;
      lock.unlock();
      auto conn = Connect();
      lock.lock();
      if (!conn) {
        --open_;
        backoff_ = std::min(kMaxBackoff, backoff_.count() ? backoff_ * 2 : kFirstBackoff);
        retry_at_ = std::chrono::steady_clock::now() + backoff_;
        cv_.notify_one();
        return std::move(conn).error();
      }
      if (backoff_.count()) spdlog::info("postgres: connected again");
      backoff_ = std::chrono::milliseconds{0};
      pids_.push_back((*conn)->BackendPid());
      Lease lease(this, std::move(*conn));
      lease.set_fresh(true);
      return lease;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.size) {
      return Error::Unavailable("postgres: every pooled connection is busy", "store unavailable");
    }
  }
}

void Pool::Release(std::unique_ptr<Conn> conn) {
  std::vector<std::unique_ptr<Conn>> dropped;
  {
    std::lock_guard lock(mu_);
    if (conn->Healthy() && !conn->InTransaction()) {
      idle_.push_back(std::move(conn));
    } else {
      // A broken connection: the idle ones probably broke the same way
      // (server restart, network); close them so nobody trips on them.
      --open_;
      std::erase(pids_, conn->BackendPid());
      dropped.push_back(std::move(conn));
      for (auto& c : idle_) {
        --open_;
        std::erase(pids_, c->BackendPid());
        dropped.push_back(std::move(c));
      }
      idle_.clear();
    }
  }
  cv_.notify_all();
  // PQfinish outside the lock: it may wait on the network.
  dropped.clear();
}

void Pool::DropIdle() {
  std::vector<std::unique_ptr<Conn>> dropped;
  {
    std::lock_guard lock(mu_);
    for (auto& c : idle_) {
      --open_;
      std::erase(pids_, c->BackendPid());
      dropped.push_back(std::move(c));
    }
    idle_.clear();
  }
  cv_.notify_all();
}

std::vector<int> Pool::BackendPids() {
  std::lock_guard lock(mu_);
  return pids_;
}

}  // namespace acceptd::pg
