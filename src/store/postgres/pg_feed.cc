#include "store/postgres/pg_feed.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "store/postgres/pg_conn.h"
#include "store/sql_state_encoding.h"

namespace acceptd::pg {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5'000};
// An idle feed checks its connection this often (a query that fails fast
// if the server went away without closing the socket).
constexpr std::chrono::seconds kIdleCheck{15};

std::string ProbeToken(const std::string& node) {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  return fmt::format("probe:{}:{}:{}", node, rd(), counter.fetch_add(1));
}

}  // namespace

std::string ParseChanges(const std::string& payload, const std::string& self,
                         std::vector<JobChange>* out) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(payload, ec);
  if (ec || !v.is_object()) return "";
  const auto& obj = v.as_object();
  const auto* o = obj.if_contains("o");
  const auto* c = obj.if_contains("c");
  if (!o || !c) return "";
  std::string origin = o->is_string() ? std::string(o->as_string()) : std::string();
  if (origin == self || !c->is_array()) return origin;
  for (const auto& item : c->as_array()) {
    if (!item.is_array() || item.as_array().size() != 6) continue;
    const auto& a = item.as_array();
    if (!a[0].is_string() || !a[1].is_string() || !a[2].is_int64()) continue;
    std::string hex(a[0].as_string());
    std::erase(hex, '-');
    auto id = JobId::Parse(hex);
    auto state = sql::StateFromColumn(a[2].as_int64());
    if (!id || !state) continue;
    JobChange ch;
    ch.id = *id;
    ch.queue = std::string(a[1].as_string());
    ch.state = *state;
    ch.cancel_requested = a[3].is_bool() && a[3].as_bool();
    ch.due = a[4].is_bool() && a[4].as_bool();
    ch.removed = a[5].is_bool() && a[5].as_bool();
    out->push_back(std::move(ch));
  }
  return origin;
}

ChangeFeed::ChangeFeed(std::vector<std::string> keywords, std::vector<std::string> values,
                       std::string node, ChangeListener listener)
    : keywords_(std::move(keywords)),
      values_(std::move(values)),
      node_(std::move(node)),
      listener_(std::move(listener)) {
  if (pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    stop_pipe_[0] = stop_pipe_[1] = -1;
  }
  thread_ = std::thread([this] { Run(); });
}

ChangeFeed::~ChangeFeed() {
  stopping_ = true;
  if (stop_pipe_[1] >= 0) {
    const char b = 1;
    (void)!write(stop_pipe_[1], &b, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : stop_pipe_) {
    if (fd >= 0) close(fd);
  }
}

bool ChangeFeed::Sleep(std::chrono::milliseconds d) {
  if (stopping_) return false;
  pollfd p{stop_pipe_[0], POLLIN, 0};
  (void)poll(&p, 1, static_cast<int>(d.count()));
  return !stopping_;
}

void ChangeFeed::SetLive(bool live) {
  if (live_ == live) return;
  live_ = live;
  if (listener_.on_state) listener_.on_state(live);
}

void ChangeFeed::Run() {
  std::chrono::milliseconds backoff{0};
  while (!stopping_) {
    auto connected = Conn::Connect(keywords_, values_);
    if (!connected) {
      SetLive(false);
      backoff = std::min(kMaxBackoff, backoff.count() ? backoff * 2 : kFirstBackoff);
      spdlog::debug("postgres change feed: {} (again in {} ms)", connected.error().message,
                    backoff.count());
      if (!Sleep(backoff)) return;
      continue;
    }
    std::unique_ptr<Conn> conn = std::move(*connected);
    const std::string probe = ProbeToken(node_);
    {
      std::string sql = fmt::format("LISTEN {}", kChannel);
      auto r = conn->Exec(sql);
      Params p;
      p.Text(kChannel).Text(
          boost::json::serialize(boost::json::object{{"o", probe}, {"c", boost::json::array{}}}));
      if (r) r = conn->Run("acceptd_feed_probe", "SELECT pg_notify($1, $2)", p);
      if (!r) {
        SetLive(false);
        spdlog::warn("postgres change feed: {}", r.error().message);
        if (!Sleep(kMaxBackoff)) return;
        continue;
      }
    }
    bool probed = false;
    auto probe_deadline = std::chrono::steady_clock::now() + kProbeTimeout;
    auto last_traffic = std::chrono::steady_clock::now();
    bool lost = false;
    while (!stopping_ && !lost) {
      const auto now = std::chrono::steady_clock::now();
      if (!probed && now >= probe_deadline) break;
      const auto wait =
          probed ? std::chrono::duration_cast<std::chrono::milliseconds>(kIdleCheck)
                 : std::chrono::duration_cast<std::chrono::milliseconds>(probe_deadline - now);
      pollfd fds[2] = {{conn->Socket(), POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      const int n = poll(fds, 2, static_cast<int>(std::max<int64_t>(wait.count(), 1)));
      if (stopping_) return;
      if (n == 0) {
        if (probed && std::chrono::steady_clock::now() - last_traffic >= kIdleCheck) {
          // Nothing for a while: make sure the connection still works (a
          // server gone without closing it fails the send, or the TCP
          // keepalives fail the socket). Not waiting for the answer keeps
          // the destructor from waiting on the network.
          if (!conn->SendQuery("SELECT 1")) lost = true;
          last_traffic = std::chrono::steady_clock::now();
        }
      }
      if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        if (conn->ConsumeInput()) {
          conn->DrainResults();
        } else {
          lost = true;
        }
      }
      std::vector<JobChange> changes;
      for (auto& [channel, payload] : conn->TakeNotifications()) {
        last_traffic = std::chrono::steady_clock::now();
        if (channel != kChannel) continue;
        if (ParseChanges(payload, node_, &changes) == probe && !probed) {
          probed = true;
          backoff = std::chrono::milliseconds{0};
          warned_unavailable_ = false;
          SetLive(true);
        }
      }
      if (!changes.empty() && probed && listener_.on_changes) listener_.on_changes(changes);
    }
    if (stopping_) return;
    SetLive(false);
    if (!probed && !lost) {
      if (!warned_unavailable_) {
        spdlog::warn(
            "postgres change feed unavailable: a NOTIFY sent on this connection did not come back "
            "within {} ms (e.g. a transaction-mode connection pooler in between); nodes fall back "
            "to polling the store; trying again every {} s",
            kProbeTimeout.count(), kProbeRetry.count());
        warned_unavailable_ = true;
      }
      conn.reset();
      if (!Sleep(kProbeRetry)) return;
      continue;
    }
    spdlog::warn("postgres change feed: connection lost; reconnecting (nodes poll meanwhile)");
    conn.reset();
    backoff = std::min(kMaxBackoff, backoff.count() ? backoff * 2 : kFirstBackoff);
    if (!Sleep(backoff)) return;
  }
}

}  // namespace acceptd::pg
