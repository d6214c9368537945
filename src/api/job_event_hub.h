// JobEventHub: fans the engine's job changes (Engine::AddChangeObserver) out
// to the open GET /v1/events streams (the dashboard's live updates).
//
// Each subscriber has a bounded buffer of formatted events. The engine thread
// appends to it and wakes the subscriber (once per batch: the wake is
// coalesced until the stream takes what is buffered); a subscriber that does
// not keep up (its client reads slowly, or jobs change faster than it sends)
// loses what is buffered once the buffer is full and is told so, with an
// `overflow` event, instead of making the server hold an unbounded backlog:
// the client re-reads what it shows. Publishing costs one atomic load when
// nobody subscribes.
//
// Thread-safe: Publish on the engine thread, Subscribe/Take/unsubscribe
// (destroying the Subscription) on any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/clock.h"
#include "http/types.h"
#include "store/job_store.h"

namespace acceptd::api {

inline constexpr size_t kDefaultEventBuffer = 1000;  // events per subscriber

// The data of a `job` event: {"id":"…","queue":"…","state":"…"}, plus
// "removed":true for a deleted or purged job.
std::string JobChangeData(const JobChange& change);

class JobEventHub {
 public:
  class Subscription;

  explicit JobEventHub(size_t max_buffered = kDefaultEventBuffer) : max_buffered_(max_buffered) {}
  JobEventHub(const JobEventHub&) = delete;
  JobEventHub& operator=(const JobEventHub&) = delete;

  // Appends a `job` event to every subscriber's buffer.
  void Publish(const JobChange& change);
  // A new subscriber; `wake` is called (on the publishing thread, outside
  // the hub's lock; it must be quick: post) when its buffer turns non-empty
  // or overflows. Unsubscribes when the returned object is destroyed.
  std::shared_ptr<Subscription> Subscribe(std::function<void()> wake);
  size_t subscribers() const { return count_.load(std::memory_order_relaxed); }

  class Subscription {
   public:
    ~Subscription();
    // What was buffered since the last Take (SSE text), and how many events
    // were dropped meanwhile (0: none; the buffer is then empty).
    struct Batch {
      std::string events;
      size_t dropped = 0;
    };
    Batch Take();

   private:
    friend class JobEventHub;
    Subscription(JobEventHub& hub, std::function<void()> wake)
        : hub_(hub), wake_(std::move(wake)) {}
    JobEventHub& hub_;
    std::function<void()> wake_;
    std::mutex mu_;
    std::string events_;  // guarded by mu_
    size_t buffered_ = 0;
    size_t dropped_ = 0;
    bool woken_ = false;  // a wake is pending since the last Take
  };

 private:
  void Remove(Subscription* sub);

  const size_t max_buffered_;
  mutable std::mutex mu_;
  std::vector<Subscription*> subs_;  // guarded by mu_
  std::atomic<size_t> count_{0};
};

// Writes the hub's events to `out` until the client is gone: an `overflow`
// event ({"dropped":N}) when some were dropped, and a heartbeat comment every
// `heartbeat` ms of silence.
boost::asio::awaitable<void> StreamHubEvents(JobEventHub& hub, Millis heartbeat,
                                             http::StreamWriter& out);

}  // namespace acceptd::api
