// Crash loop: N rounds of (start acceptd, concurrent submits, polls and job
// completions, kill -9 at a random moment), all on one store, then one last
// start and a check of the whole history:
//
//   - every submit answered 202 ("acknowledged") exists and reaches its
//     expected terminal state (lost: must be 0);
//   - every result and error belongs to its own job (echo returns the job's
//     unique payload, fail its unique message, sleep its own "ms");
//   - no job that succeeded (or failed) is run again: once any observation
//     shows a job terminal, every later observation shows the same state,
//     attempts and finished_at (reruns: must be 0), and no observed state is
//     rolled back by a crash (attempts never decrease, a terminal state is
//     never followed by a pending one);
//   - every job in the store is accounted for by a submit (phantoms: 0);
//   - every terminal job's completion callback arrives.
//
// Where a rerun would show. Observations come from three sources: the
// submitting thread's own polls and long-polls (during the rounds, across
// restarts; each job is polled by one thread only, so its observations are
// totally ordered), the completion callbacks, and the final listing. The
// callback is the job's side effect outside acceptd: the delivery is made due
// by the same transaction that makes the job terminal, so a succeeded job
// that ran and finished again would send a second document with other
// `attempts`/`finished_at`, even if no poll happened to look at the right
// moment. Duplicate deliveries of the same document are allowed
// (at-least-once).
//
// Submits whose answer was lost to the kill (transport error) have an
// unknown outcome: the job may or may not exist. Every submit carries a
// unique Idempotency-Key, so after the last restart the harness resubmits
// those with the same key, as a client would: the answer is the original job
// (Idempotent-Replayed: true) or a new one. Either way it must then finish
// and be consistent like the others.
//
// Environment:
//   ACCEPTD_CRASH_ROUNDS  rounds (default 50; 15 in sanitizer builds)
//   ACCEPTD_CRASH_SEED    seed of the workload and of the kill moments
//                         (default: random, printed); the thread
//                         interleaving is not replayable, the payloads,
//                         queue choices and kill points are.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "harness.h"
#include "webhook_receiver.h"

namespace acceptd::itest {
namespace {

// ASan (GCC defines __SANITIZE_ADDRESS__, Clang has the feature test): the
// sanitizer build starts and serves several times slower, so fewer rounds.
#if defined(__SANITIZE_ADDRESS__)
#define ACCEPTD_CRASH_LOOP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ACCEPTD_CRASH_LOOP_ASAN 1
#endif
#endif
#ifdef ACCEPTD_CRASH_LOOP_ASAN
constexpr int kDefaultRounds = 15;
#else
constexpr int kDefaultRounds = 50;
#endif
constexpr int kClientThreads = 4;
// A round is killed after a random number of client operations in
// [0, kMaxOpsPerRound] (0: right after /healthz answered).
constexpr int kMaxOpsPerRound = 300;
constexpr int kMaxSleepMs = 200;
constexpr int kProgressEvery = 100;  // rounds between progress lines
constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::stoll(v);
}

// One submit request, identified by its sequence number n.
struct Submit {
  int64_t n = 0;
  std::string queue;  // echo, sleep or fail
  std::string payload;
  std::string key;  // Idempotency-Key
  std::string expected_state;
  std::string expected_result;   // succeeded jobs: the exact result body
  std::string expected_message;  // failed jobs: error.message
  int round = 0;
  enum class Outcome { kPending, kAcknowledged, kUnknown } outcome = Outcome::kPending;
  std::string id;  // when acknowledged, or resolved after the rounds
};

// What one look at a job showed.
struct Observation {
  int round = 0;      // rounds.size() for the final phase
  char source = 'p';  // p: poll by the submitting thread; c: callback; f: final listing
  std::string state;
  int64_t attempts = 0;
  std::string finished_at;
  std::string result;  // succeeded and fetched: the result body
  bool has_result = false;
};

bool Terminal(std::string_view state) {
  return state == "succeeded" || state == "failed" || state == "canceled";
}

Observation Observe(const json::value& doc, int round, char source) {
  Observation o;
  o.round = round;
  o.source = source;
  o.state = Str(doc, "state");
  o.attempts = Has(doc, "attempts") ? Int(doc, "attempts") : -1;
  o.finished_at = Str(doc, "finished_at");
  return o;
}

std::string Format(const Observation& o) {
  std::ostringstream s;
  s << "[r" << o.round << " " << o.source << " " << o.state << " attempts=" << o.attempts
    << " finished_at=" << o.finished_at;
  if (o.has_result) s << " result=" << o.result;
  s << "]";
  return s.str();
}

class CrashLoop {
 public:
  CrashLoop(int rounds, uint64_t seed) : rounds_(rounds), seed_(seed), rng_(seed) {}

  void Run() {
    const auto started = SteadyClock::now();
    ServerProcess server(Options());
    for (int round = 0; round < rounds_; ++round) {
      if (round > 0) Restart(server, round);
      RunRound(server, round);
      if ((round + 1) % kProgressEvery == 0 && round + 1 < rounds_) {
        std::lock_guard lock(mu_);
        std::cout << "crash loop: " << round + 1 << " rounds, " << acknowledged_
                  << " acknowledged, "
                  << std::chrono::duration<double>(SteadyClock::now() - started).count() << "s"
                  << std::endl;
      }
    }
    Restart(server, rounds_);
    Final(server);
    elapsed_s_ = std::chrono::duration<double>(SteadyClock::now() - started).count();
    Report();
  }

 private:
  ServerOptions Options() const {
    // lease 0.5 s (the minimum): attempts cut short by a kill are rescued
    // within about a second of the next start. Attempts are plentiful so that
    // a job killed in many rounds still ends as its handler says.
    const std::string common =
        "max_attempts = 1000\nconcurrency = 8\nbackoff = { base = 0.02, max = 0.05, jitter = 0 }\n";
    ServerOptions options;
    options.log_level = "warn";  // one line per lease expiry; the rounds would log too much at info
    options.Set("lease", "0.5")
        .Set("max_wait", "1")
        .WithQueues("[queues.echo]\nhandler = \"echo\"\n" + common +
                    "[queues.sleep]\nhandler = \"sleep\"\n" + common +
                    "[queues.fail]\nhandler = \"fail\"\n" + common + "[callbacks]\nsecret = \"" +
                    kSecret +
                    "\"\nallow = [\"127.0.0.0/8\"]\nmax_attempts = 1000\ntimeout = 1\n"
                    "poll_interval = 0.05\nbackoff = { base = 0.02, max = 0.2, jitter = 0 }\n");
    return options;
  }

  // Each start on a new port: while acceptd is down, a connection of another
  // test running in parallel may take the old port as its local port.
  void Restart(ServerProcess& server, int round) {
    try {
      server.RestartOnNewPort();
    } catch (const std::exception& e) {
      throw std::runtime_error("seed " + std::to_string(seed_) + ": restart before round " +
                               std::to_string(round) + " failed: " + e.what());
    }
  }

  // Per client thread, across rounds: its jobs not yet seen terminal, and
  // those seen terminal (re-read now and then to catch a rerun).
  struct ThreadState {
    std::vector<int64_t> pending;
    std::vector<int64_t> done;
  };

  Submit NewSubmit(std::mt19937_64& rng, int round) {
    std::lock_guard lock(mu_);
    Submit s;
    s.n = static_cast<int64_t>(submits_.size());
    s.round = round;
    const uint64_t nonce = rng();
    const std::string tag = std::to_string(s.n) + "-" + std::to_string(nonce);
    s.key = "crash-" + std::to_string(seed_) + "-" + tag;
    const int pick = static_cast<int>(rng() % 100);
    if (pick < 70) {
      s.queue = "echo";
      s.payload =
          R"({"n":)" + std::to_string(s.n) + R"(,"nonce":")" + std::to_string(nonce) + R"("})";
      s.expected_state = "succeeded";
      s.expected_result = s.payload;
    } else if (pick < 92) {
      s.queue = "sleep";
      const int ms = static_cast<int>(rng() % (kMaxSleepMs + 1));
      s.payload = R"({"ms":)" + std::to_string(ms) + R"(,"n":)" + std::to_string(s.n) + "}";
      s.expected_state = "succeeded";
      s.expected_result = R"({"slept_ms":)" + std::to_string(ms) + "}";
    } else {
      s.queue = "fail";
      s.expected_message = "fail-" + tag;
      s.payload = R"({"message":")" + s.expected_message + R"(","retryable":false})";
      s.expected_state = "failed";
    }
    submits_.push_back(s);
    return s;
  }

  // Sends a submit; the answer, or nullopt if the transport failed.
  std::optional<HttpResponse> SendSubmit(HttpClient& c, const Submit& s) {
    const std::string target = "/v1/queues/" + s.queue + "/jobs?callback=" + hook_url_encoded_;
    try {
      return c.Send("POST", target, s.payload,
                    {{"Content-Type", "application/json"}, {"Idempotency-Key", s.key}});
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  void Record(const std::string& id, Observation o) {
    std::lock_guard lock(mu_);
    history_[id].push_back(std::move(o));
  }

  void Unexpected(std::string what) {
    std::lock_guard lock(mu_);
    unexpected_.push_back("seed " + std::to_string(seed_) + ": " + std::move(what));
  }

  // One look at job `n` by its thread: records the observation; true once
  // the job was seen terminal (and, if succeeded, its result was read).
  // Throws if the server is gone.
  bool Look(HttpClient& c, int64_t n, int round, bool long_poll) {
    std::string id;
    {
      std::lock_guard lock(mu_);
      id = submits_[n].id;
    }
    HttpResponse r = c.Get("/v1/jobs/" + id + (long_poll ? "?wait=0.3" : ""));
    if (r.status != 200 && r.status != 202 && r.status != 302) {
      Unexpected("round " + std::to_string(round) + ": GET job " + id + " (n=" + std::to_string(n) +
                 ", acknowledged) answered " + Describe(r));
      return true;  // reported; stop looking at it
    }
    Observation o = Observe(r.Json(), round, 'p');
    if (o.state == "succeeded") {
      HttpResponse res = c.Get("/v1/jobs/" + id + "/result");
      if (res.status != 200) {
        Unexpected("round " + std::to_string(round) + ": result of succeeded job " + id +
                   " answered " + Describe(res));
      } else {
        o.result = res.body;
        o.has_result = true;
      }
    }
    const bool terminal = Terminal(o.state);
    Record(id, std::move(o));
    return terminal;
  }

  void Client(const ServerProcess& server, int round, int index, uint64_t seed) {
    std::mt19937_64 rng(seed);
    ThreadState& me = threads_[index];
    HttpClient c(server.port(), 10s);
    while (!stop_.load()) {
      const int pick = static_cast<int>(rng() % 100);
      try {
        if (me.pending.empty() || pick < 45) {
          Submit s = NewSubmit(rng, round);
          std::optional<HttpResponse> r = SendSubmit(c, s);
          std::lock_guard lock(mu_);
          Submit& rec = submits_[s.n];
          if (!r) {
            rec.outcome = Submit::Outcome::kUnknown;
            return;  // the server is gone
          }
          if (r->status != 202) {
            unexpected_.push_back("seed " + std::to_string(seed_) + ": round " +
                                  std::to_string(round) + ": submit n=" + std::to_string(s.n) +
                                  " answered " + Describe(*r));
            rec.outcome = Submit::Outcome::kUnknown;  // resolved with its key later
          } else {
            rec.outcome = Submit::Outcome::kAcknowledged;
            rec.id = Str(r->Json(), "id");
            history_[rec.id].push_back(Observe(r->Json(), round, 'p'));
            me.pending.push_back(s.n);
            ++acknowledged_;
          }
        } else if (pick < 92 || me.done.empty()) {
          const size_t i = rng() % me.pending.size();
          const int64_t n = me.pending[i];
          if (Look(c, n, round, pick >= 80)) {
            me.pending.erase(me.pending.begin() + static_cast<std::ptrdiff_t>(i));
            me.done.push_back(n);
          }
        } else {
          Look(c, me.done[rng() % me.done.size()], round, false);
        }
      } catch (const std::exception&) {
        return;  // the server is gone (a poll or a result read was cut off)
      }
      ++ops_;
    }
  }

  void RunRound(ServerProcess& server, int round) {
    const int kill_after = static_cast<int>(rng_() % (kMaxOpsPerRound + 1));
    std::vector<uint64_t> seeds;
    for (int t = 0; t < kClientThreads; ++t) seeds.push_back(rng_());
    stop_ = false;
    ops_ = 0;
    std::vector<std::thread> clients;
    for (int t = 0; t < kClientThreads; ++t) {
      clients.emplace_back([&, t] { Client(server, round, t, seeds[t]); });
    }
    // Polls rather than waits on a signal: the kill must not be delayed
    // behind a lock the clients hold.
    std::optional<int> exited;
    WaitFor(
        [&] {
          exited = server.WaitExit(0ms);
          return exited || ops_.load() >= kill_after;
        },
        30s, 1ms);
    if (exited) {
      Unexpected("round " + std::to_string(round) + ": acceptd exited by itself with code " +
                 std::to_string(*exited) + "; stderr: " + server.Stderr());
    } else {
      server.Kill();
    }
    stop_ = true;
    for (auto& th : clients) th.join();
  }

  // After the last restart: resolve unknown outcomes, wait for every job to
  // finish, then check everything.
  void Final(ServerProcess& server) {
    const int round = rounds_;
    // Unknown outcomes: resubmit with the same Idempotency-Key.
    for (Submit& s : submits_) {
      if (s.outcome != Submit::Outcome::kUnknown) continue;
      ++unknown_;
      HttpClient c(server.port(), 10s);
      std::optional<HttpResponse> r = SendSubmit(c, s);
      if (!r || r->status != 202) {
        Unexpected("resubmit of unknown-outcome n=" + std::to_string(s.n) + " answered " +
                   (r ? Describe(*r) : "nothing"));
        continue;
      }
      s.id = Str(r->Json(), "id");
      if (r->Header("Idempotent-Replayed") == "true") ++unknown_existed_;
    }

    // Wait until nothing is queued or running.
    const Millis drain = std::max<Millis>(120s, Millis(static_cast<int64_t>(submits_.size()) * 5));
    const bool drained = WaitFor(
        [&] {
          for (const char* state : {"queued", "running"}) {
            HttpResponse r = server.Get(std::string("/v1/jobs?limit=1&state=") + state);
            if (r.status != 200 || !r.Json().at("jobs").as_array().empty()) return false;
          }
          return true;
        },
        drain, 50ms);
    if (!drained) {
      Unexpected("jobs still queued or running " + std::to_string(drain.count()) +
                 " ms after the last restart: " + server.Get("/v1/jobs?limit=5&state=queued").body +
                 " " + server.Get("/v1/jobs?limit=5&state=running").body);
    }

    // Every job in the store, by id.
    std::map<std::string, json::object> stored;
    std::string cursor;
    for (;;) {
      HttpResponse r =
          server.Get("/v1/jobs?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
      if (r.status != 200) throw std::runtime_error("GET /v1/jobs answered " + Describe(r));
      json::value page = r.Json();
      for (const json::value& doc : page.at("jobs").as_array()) {
        stored[Str(doc, "id")] = doc.as_object();
      }
      if (page.at("next_cursor").is_null()) break;
      cursor = Str(page, "next_cursor");
    }
    stored_ = stored.size();

    std::map<std::string, int64_t>& owner = owner_;
    HttpClient c(server.port(), 10s);
    for (Submit& s : submits_) {
      if (s.id.empty()) continue;
      if (!owner.emplace(s.id, s.n).second) {
        Unexpected("submits n=" + std::to_string(owner[s.id]) + " and n=" + std::to_string(s.n) +
                   " got the same job id " + s.id);
        continue;
      }
      auto it = stored.find(s.id);
      if (it == stored.end()) {
        if (s.outcome == Submit::Outcome::kAcknowledged) {
          ++lost_;
          Unexpected("LOST: job " + s.id + " (n=" + std::to_string(s.n) + ", " + s.queue +
                     ", acknowledged in round " + std::to_string(s.round) +
                     ") is not in the store; GET answers " +
                     Describe(server.Get("/v1/jobs/" + s.id)) + "; history: " + History(s.id));
        } else {
          Unexpected("resubmitted job " + s.id + " (n=" + std::to_string(s.n) +
                     ") is not in the store");
        }
        continue;
      }
      const json::object& doc = it->second;
      Observation o = Observe(doc, round, 'f');
      if (o.state != s.expected_state) {
        ++wrong_;
        Unexpected("job " + s.id + " (n=" + std::to_string(s.n) + ", " + s.queue + ") ended " +
                   json::serialize(doc) + ", expected state " + s.expected_state);
      }
      if (o.state == "succeeded") {
        HttpResponse res = c.Get("/v1/jobs/" + s.id + "/result");
        o.result = res.body;
        o.has_result = res.status == 200;
        if (res.status != 200 || res.body != s.expected_result) {
          ++wrong_;
          Unexpected("job " + s.id + " (n=" + std::to_string(s.n) + ") result: " + Describe(res) +
                     "; expected its own " + s.expected_result);
        }
      } else if (o.state == "failed" && s.queue == "fail") {
        const std::string message = Str(doc.at("error"), "message");
        if (message != s.expected_message) {
          ++wrong_;
          Unexpected("job " + s.id + " (n=" + std::to_string(s.n) + ") error message " + message +
                     "; expected its own " + s.expected_message);
        }
      }
      if (o.attempts > 1) ++reattempted_;
      Record(s.id, std::move(o));
    }
    for (const auto& [id, doc] : stored) {
      if (!owner.contains(id)) {
        ++phantoms_;
        Unexpected("PHANTOM: job " + id +
                   " in the store belongs to no submit: " + json::serialize(doc));
      }
    }

    // Completion callbacks: one per terminal job at least, all alike.
    std::set<std::string> terminal_ids;
    for (const auto& [id, doc] : stored) {
      if (Terminal(Str(doc, "state"))) terminal_ids.insert(id);
    }
    std::set<std::string> called;
    const auto take_callbacks = [&] {
      std::vector<ReceivedRequest> requests = receiver_->RequestsFrom(callbacks_seen_);
      for (size_t i = 0; i < requests.size(); ++i) {
        boost::system::error_code ec;
        json::value doc = json::parse(requests[i].body, ec);
        if (ec || !doc.is_object()) {
          Unexpected("callback body is not a JSON object: " + requests[i].body);
          continue;
        }
        const std::string id = Str(doc, "id");
        Record(id, Observe(doc, round, 'c'));
        called.insert(id);
      }
      callbacks_seen_ += requests.size();
    };
    WaitFor(
        [&] {
          take_callbacks();
          return std::includes(called.begin(), called.end(), terminal_ids.begin(),
                               terminal_ids.end());
        },
        60s, 50ms);
    for (const std::string& id : terminal_ids) {
      if (!called.contains(id)) {
        ++callbacks_missing_;
        if (callbacks_missing_ <= 10) {
          Unexpected("no completion callback for terminal job " + id + ": " +
                     json::serialize(stored[id]));
        }
      }
    }

    CheckHistories();
  }

  std::string History(const std::string& id) {
    std::lock_guard lock(mu_);
    std::string out;
    for (const Observation& o : history_[id]) out += Format(o) + " ";
    return out;
  }

  // Once terminal, always the same terminal state, attempts and finished_at
  // (and result); pending observations by the owning thread never follow a
  // terminal one, and attempts never go down.
  void CheckHistories() {
    for (const auto& [id, obs] : history_) {
      const Observation* first_terminal = nullptr;
      const Observation* last_ordered = nullptr;
      auto owner = owner_.find(id);
      const Submit* n = owner == owner_.end() ? nullptr : &submits_[owner->second];
      std::vector<std::string> problems;
      bool rolled_back = false, finished_again = false, wrong_result = false;
      for (const Observation& o : obs) {
        if (o.source != 'c') {  // polls and the final listing are ordered in time
          if (last_ordered && o.attempts < last_ordered->attempts) rolled_back = true;
          if (last_ordered && Terminal(last_ordered->state) && !Terminal(o.state)) {
            rolled_back = true;
          }
          last_ordered = &o;
        }
        // The final listing's result was checked (and counted) in Final.
        if (o.source == 'p' && o.has_result && n && o.result != n->expected_result) {
          wrong_result = true;
        }
        if (!Terminal(o.state)) continue;
        if (!first_terminal) {
          first_terminal = &o;
        } else if (o.state != first_terminal->state || o.attempts != first_terminal->attempts ||
                   o.finished_at != first_terminal->finished_at) {
          finished_again = true;
        }
      }
      if (rolled_back) {
        ++rollbacks_;
        problems.push_back("ROLLBACK: a state it was seen in was undone");
      }
      if (finished_again) {
        ++reruns_;
        problems.push_back("RERUN: finished again after it was seen finished");
      }
      if (wrong_result) {
        ++wrong_;
        problems.push_back("a poll read a result that is not the job's own");
      }
      if (problems.empty()) continue;
      std::string line = "job " + id;
      if (n) {
        line += " (n=" + std::to_string(n->n) + ", " + n->queue + ", submitted in round " +
                std::to_string(n->round) + ")";
      }
      for (const std::string& p : problems) line += "; " + p;
      line += "; history:";
      for (const Observation& o : obs) line += " " + Format(o);
      Unexpected(line);
    }
  }

  void Report() {
    std::ostringstream s;
    s << "crash loop: seed=" << seed_ << " rounds=" << rounds_ << " submits=" << submits_.size()
      << " acknowledged=" << acknowledged_ << " lost=" << lost_ << " reruns=" << reruns_
      << " rollbacks=" << rollbacks_ << " phantoms=" << phantoms_ << " wrong_results=" << wrong_
      << " unknown_outcome=" << unknown_ << " (existed=" << unknown_existed_ << ")"
      << " stored=" << stored_ << " reattempted=" << reattempted_
      << " callbacks_missing=" << callbacks_missing_ << " elapsed=" << elapsed_s_ << "s";
    summary_ = s.str();
    std::cout << summary_ << std::endl;
    ::testing::Test::RecordProperty("crash_loop", summary_);
  }

 public:
  void Attach(WebhookReceiver& receiver) {
    receiver_ = &receiver;
    const std::string url = receiver.Url("/hook");
    // Percent-encode the URL for the query string.
    for (char ch : url) {
      if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_') {
        hook_url_encoded_ += ch;
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(ch));
        hook_url_encoded_ += buf;
      }
    }
  }

  const std::vector<std::string>& unexpected() const { return unexpected_; }
  const std::string& summary() const { return summary_; }
  int64_t lost() const { return lost_; }
  int64_t reruns() const { return reruns_; }
  int64_t rollbacks() const { return rollbacks_; }
  int64_t phantoms() const { return phantoms_; }
  int64_t wrong() const { return wrong_; }
  int64_t callbacks_missing() const { return callbacks_missing_; }
  int64_t acknowledged() const { return acknowledged_; }

 private:
  const int rounds_;
  const uint64_t seed_;
  std::mt19937_64 rng_;
  WebhookReceiver* receiver_ = nullptr;
  std::string hook_url_encoded_;

  std::mutex mu_;  // guards submits_, history_, unexpected_ while clients run
  std::vector<Submit> submits_;
  std::map<std::string, std::vector<Observation>> history_;
  std::map<std::string, int64_t> owner_;  // job id -> n, after the rounds
  std::vector<std::string> unexpected_;
  ThreadState threads_[kClientThreads];
  std::atomic<bool> stop_{false};
  std::atomic<int> ops_{0};

  int64_t acknowledged_ = 0, unknown_ = 0, unknown_existed_ = 0, lost_ = 0, reruns_ = 0,
          rollbacks_ = 0, phantoms_ = 0, wrong_ = 0, reattempted_ = 0, callbacks_missing_ = 0;
  size_t stored_ = 0, callbacks_seen_ = 0;
  double elapsed_s_ = 0;
  std::string summary_;
};

TEST(IntegrationCrashLoopTest, AcknowledgedJobsSurviveRepeatedKill9AndNoFinishedJobRunsAgain) {
  const int rounds = static_cast<int>(EnvInt("ACCEPTD_CRASH_ROUNDS", kDefaultRounds));
  const uint64_t seed = static_cast<uint64_t>(
      EnvInt("ACCEPTD_CRASH_SEED", static_cast<int64_t>(std::random_device{}() & 0x7fffffff)));
  std::cout << "crash loop: seed=" << seed << " rounds=" << rounds
            << " (replay with ACCEPTD_CRASH_SEED=" << seed << " ACCEPTD_CRASH_ROUNDS=" << rounds
            << ")" << std::endl;
  WebhookReceiver receiver;
  CrashLoop loop(rounds, seed);
  loop.Attach(receiver);
  loop.Run();
  EXPECT_GT(loop.acknowledged(), 0);
  EXPECT_EQ(loop.lost(), 0);
  EXPECT_EQ(loop.reruns(), 0);
  EXPECT_EQ(loop.rollbacks(), 0);
  EXPECT_EQ(loop.phantoms(), 0);
  EXPECT_EQ(loop.wrong(), 0);
  EXPECT_EQ(loop.callbacks_missing(), 0);
  for (size_t i = 0; i < loop.unexpected().size() && i < 30; ++i) {
    ADD_FAILURE() << loop.unexpected()[i];
  }
  EXPECT_TRUE(loop.unexpected().empty())
      << loop.unexpected().size() << " problems; " << loop.summary();
}

}  // namespace
}  // namespace acceptd::itest
