// Server-Sent Events for one job: GET /v1/jobs/{id}/events (docs/api.md,
// "Job events").
//
// The stream sends the job's state and progress as the engine commits them,
// without keeping any history: each event describes the CURRENT snapshot of
// the job, and its id says which snapshot that was, so a reconnecting client
// (Last-Event-ID) gets exactly what changed since, and never an old value.
//
// Event ids: "<state>-<attempts>-<millis>-<kind>", e.g. "running-1-1764000000123-p":
// the job's state and attempt count, its updated_at (Unix ms) when the event
// was sent, and `s` (a state event) or `p` (a progress event). Within one
// stream, ids never repeat and their millis never decrease.
//
// Resume (snapshot semantics): given the id of the last event a client saw,
//  - a state event (the status document) is sent unless the id names the
//    job's current state and attempt count, so the latest state is never
//    skipped; states the job passed through while the client was away are;
//  - a progress event (while queued or running) is sent if the job changed
//    after the id's millis (or at that millisecond, after a state event): the
//    latest progress; values reported meanwhile are skipped, and the same
//    value may be sent again if something else changed;
//  - the terminal state event is sent unless the id names it; a client that
//    has seen it gets 204 No Content (which tells an EventSource to stop).
// A malformed Last-Event-ID is ignored (the whole current snapshot is sent).
//
// EventCursor and the framing helpers are pure; StreamJobEvents is the I/O
// loop that feeds a StreamWriter from the engine's wake-ups.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "api/event_id.h"
#include "core/job.h"
#include "engine/engine.h"
#include "http/types.h"

namespace acceptd::api {

// Comments keep proxies from closing an idle stream; each is also the moment
// a stream re-reads its job (a safety net: changes committed by other nodes
// wake the stream through the engine's change feed or watch poll).
inline constexpr Millis kDefaultEventsHeartbeat = 15'000;
inline constexpr std::string_view kHeartbeatComment = ": keep-alive\n\n";

// Appends one SSE event: "event: <event>\nid: <id>\ndata: ...\n\n" (no id
// line if `id` is empty; one data line per line of `data`).
void AppendEvent(std::string& out, std::string_view event, std::string_view id,
                 std::string_view data);
// The data of a progress event: {"percent":N,"message":"..."}.
std::string ProgressData(const Progress& progress);

// What one client has seen of one job, and what a new snapshot owes it.
// Not thread-safe (one per stream).
class EventCursor {
 public:
  // `last`: the client's Last-Event-ID, if any.
  explicit EventCursor(std::optional<EventId> last = std::nullopt) : last_(last) {}

  // Appends to `out` the events that `job` owes the client (state, then
  // progress), and records them as seen. Appends nothing if nothing changed.
  void Render(const Job& job, std::string& out);
  // True if the client has seen the terminal state event of `job`: the
  // stream has nothing more to say.
  bool SawEnd(const Job& job) const;
  const std::optional<EventId>& last() const { return last_; }

 private:
  bool SameState(const Job& job) const {
    return last_ && last_->state == job.state && last_->attempts == job.attempts;
  }
  // An id for an event about `job` that is not before the last one.
  EventId NextId(const Job& job, EventKind kind) const;

  std::optional<EventId> last_;
  // The progress the client has (known after the first Render of a stream;
  // a resumed stream knows only the id, so it may repeat a value once).
  std::optional<Progress> progress_;
  bool progress_known_ = false;
};

// Writes `id`'s events to `out` until the job is terminal (after its state
// event), deleted (after a `deleted` event), or the client is gone. Waits on
// the engine's JobWatchers between changes, writing a heartbeat comment
// every `heartbeat` ms of silence and re-reading the job then. The caller
// has answered 404/410/204 already when appropriate.
boost::asio::awaitable<void> StreamJobEvents(Engine& engine, JobId id, EventCursor cursor,
                                             Millis heartbeat, http::StreamWriter& out);

}  // namespace acceptd::api
