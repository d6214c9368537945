#include "api/job_event_hub.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/events.h"

namespace acceptd::api {

namespace asio = boost::asio;

std::string JobChangeData(const JobChange& change) {
  boost::json::object o{
      {"id", change.id.ToHex()}, {"queue", change.queue}, {"state", ToString(change.state)}};
  if (change.removed) o["removed"] = true;
  return boost::json::serialize(o);
}

void JobEventHub::Publish(const JobChange& change) {
  if (count_.load(std::memory_order_relaxed) == 0) return;
  std::string event;
  AppendEvent(event, "job", {}, JobChangeData(change));
  std::vector<Subscription*> to_wake;
  std::lock_guard lock(mu_);
  for (Subscription* sub : subs_) {
    std::lock_guard sub_lock(sub->mu_);
    if (sub->buffered_ >= max_buffered_) {
      // Full: drop the backlog; the client re-reads instead (see the header).
      sub->dropped_ += sub->buffered_ + 1;
      sub->buffered_ = 0;
      sub->events_.clear();
    } else if (sub->dropped_ > 0) {
      ++sub->dropped_;  // the client re-reads anyway: keep the buffer empty
    } else {
      sub->events_ += event;
      ++sub->buffered_;
    }
    if (!sub->woken_) {
      sub->woken_ = true;
      to_wake.push_back(sub);
    }
  }
  // Wakes only post (see Subscribe), and a subscription removes itself under
  // mu_, so calling them under the hub's lock keeps them alive and is quick.
  for (Subscription* sub : to_wake) sub->wake_();
}

std::shared_ptr<JobEventHub::Subscription> JobEventHub::Subscribe(std::function<void()> wake) {
  std::shared_ptr<Subscription> sub(new Subscription(*this, std::move(wake)));
  std::lock_guard lock(mu_);
  subs_.push_back(sub.get());
  count_.store(subs_.size(), std::memory_order_relaxed);
  return sub;
}

void JobEventHub::Remove(Subscription* sub) {
  std::lock_guard lock(mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), sub), subs_.end());
  count_.store(subs_.size(), std::memory_order_relaxed);
}

JobEventHub::Subscription::~Subscription() { hub_.Remove(this); }

JobEventHub::Subscription::Batch JobEventHub::Subscription::Take() {
  std::lock_guard lock(mu_);
  Batch batch;
  batch.events.swap(events_);
  batch.dropped = dropped_;
  buffered_ = 0;
  dropped_ = 0;
  woken_ = false;
  return batch;
}

asio::awaitable<void> StreamHubEvents(JobEventHub& hub, Millis heartbeat, http::StreamWriter& out) {
  struct WakeState {
    explicit WakeState(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    bool woken = false;  // both touched only on the stream's executor
  };
  using SteadyClock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(std::max<Millis>(heartbeat, 1));
  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<WakeState>(ex);
  // The waker holds the state weakly: a wake may run after the stream ended.
  auto sub = hub.Subscribe([weak = std::weak_ptr<WakeState>(state), ex] {
    asio::post(ex, [weak] {
      if (auto s = weak.lock()) {
        s->woken = true;
        s->timer.cancel();
      }
    });
  });
  // At once: the client knows the stream is live (and from when to trust it).
  const std::string hello = ": connected\n\n";
  if (!co_await out.Write(hello)) co_return;
  auto next_heartbeat = SteadyClock::now() + interval;
  for (;;) {
    while (!state->woken && SteadyClock::now() < next_heartbeat) {
      state->timer.expires_at(next_heartbeat);
      co_await state->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    state->woken = false;
    JobEventHub::Subscription::Batch batch = sub->Take();
    std::string text = std::move(batch.events);
    if (batch.dropped > 0) {
      AppendEvent(text, "overflow", {}, fmt::format(R"({{"dropped":{}}})", batch.dropped));
    }
    if (text.empty()) text = kHeartbeatComment;
    if (!co_await out.Write(text)) co_return;
    next_heartbeat = SteadyClock::now() + interval;
  }
}

}  // namespace acceptd::api
