#include "api/events.h"

#include <chrono>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/await_engine.h"
#include "api/job_document.h"

namespace acceptd::api {

namespace asio = boost::asio;

namespace {

bool SameProgress(const std::optional<Progress>& a, const std::optional<Progress>& b) {
  if (!a || !b) return !a && !b;
  return a->percent == b->percent && a->message == b->message;
}

}  // namespace

void AppendEvent(std::string& out, std::string_view event, std::string_view id,
                 std::string_view data) {
  out += "event: ";
  out += event;
  out += '\n';
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  // A line break inside data would end the field: each line gets its own.
  for (;;) {
    const size_t nl = data.find('\n');
    out += "data: ";
    out += data.substr(0, nl);
    out += '\n';
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  out += '\n';
}

std::string ProgressData(const Progress& progress) {
  return boost::json::serialize(
      boost::json::object{{"percent", progress.percent}, {"message", progress.message}});
}

EventId EventCursor::NextId(const Job& job, EventKind kind) const {
  EventId id{job.state, job.attempts, job.updated_at, kind};
  if (last_) {
    // Ids of one stream never go back, even if the wall clock does; and two
    // progress events in one millisecond get distinct ids.
    if (id.millis < last_->millis) id.millis = last_->millis;
    if (id.millis == last_->millis && kind == EventKind::kProgress &&
        last_->kind == EventKind::kProgress) {
      ++id.millis;
    }
  }
  return id;
}

void EventCursor::Render(const Job& job, std::string& out) {
  bool state_sent = false;
  if (!SameState(job)) {
    const EventId id = NextId(job, EventKind::kState);
    AppendEvent(out, "state", FormatEventId(id), JobDocument(job));
    last_ = id;
    state_sent = true;
  }
  if (job.progress && !IsTerminal(job.state)) {
    bool send;
    if (progress_known_) {
      send = !SameProgress(progress_, job.progress);
    } else {
      // Resumed: all we know is the time of the last event the client saw.
      send = state_sent || !last_ || job.updated_at > last_->millis ||
             (job.updated_at == last_->millis && last_->kind == EventKind::kState);
    }
    if (send) {
      const EventId id = NextId(job, EventKind::kProgress);
      AppendEvent(out, "progress", FormatEventId(id), ProgressData(*job.progress));
      last_ = id;
    }
  }
  progress_ = job.progress;
  progress_known_ = true;
}

bool EventCursor::SawEnd(const Job& job) const { return IsTerminal(job.state) && SameState(job); }

asio::awaitable<void> StreamJobEvents(Engine& engine, JobId id, EventCursor cursor,
                                      Millis heartbeat, http::StreamWriter& out) {
  struct WakeState {
    explicit WakeState(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    bool woken = false;  // both touched only on the stream's executor
  };
  // Stops listening however the stream ends, including when the server
  // stops and destroys this coroutine mid-wait.
  struct ListenGuard {
    JobWatchers& watchers;
    JobId id;
    uint64_t token = 0;
    ~ListenGuard() { watchers.Unwatch(id, token); }
  };
  using SteadyClock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(std::max<Millis>(heartbeat, 1));

  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<WakeState>(ex);
  // Listen before the first read, so no change between the read and the wait
  // is missed. The waker holds the state weakly: it may run after the end.
  ListenGuard guard{engine.watchers(), id};
  guard.token = engine.watchers().Listen(id, [weak = std::weak_ptr<WakeState>(state), ex] {
    asio::post(ex, [weak] {
      if (auto s = weak.lock()) {
        s->woken = true;
        s->timer.cancel();
      }
    });
  });

  std::string events;
  auto next_heartbeat = SteadyClock::now() + interval;
  for (;;) {
    state->woken = false;  // wakes from here on mean changes this read may miss
    auto job = co_await ReadJob(engine, id);
    events.clear();
    if (!job) {
      const ErrorCode code = job.error().code;
      if (code == ErrorCode::kNotFound || code == ErrorCode::kGone) {
        AppendEvent(events, "deleted", {}, fmt::format(R"({{"id":"{}"}})", id.ToHex()));
        co_await out.Write(events);
      } else {
        // The store failed: end the stream; the client reconnects and resumes.
        spdlog::warn("job={} event stream ended: {}", id.ToHex(), job.error().message);
      }
      co_return;
    }
    cursor.Render(*job, events);
    if (!events.empty()) {
      if (!co_await out.Write(events)) co_return;
      next_heartbeat = SteadyClock::now() + interval;
    }
    if (IsTerminal(job->state)) co_return;  // its state event was the last one
    while (!state->woken) {
      if (SteadyClock::now() >= next_heartbeat) {
        if (!co_await out.Write(kHeartbeatComment)) co_return;
        next_heartbeat = SteadyClock::now() + interval;
        break;  // and re-read: a wake-up from another node may have been missed
      }
      state->timer.expires_at(next_heartbeat);
      co_await state->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
}

}  // namespace acceptd::api
