// Event ids of a job's event stream (api/events.h): "<state>-<attempts>-<millis>-<kind>",
// e.g. "running-1-1764000000123-p". What a client sends back in
// Last-Event-ID, so ParseEventId reads untrusted input. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/job.h"

namespace acceptd::api {

enum class EventKind : uint8_t { kState, kProgress };

struct EventId {
  JobState state = JobState::kQueued;
  int attempts = 0;
  UnixMillis millis = 0;
  EventKind kind = EventKind::kState;
  friend bool operator==(const EventId&, const EventId&) = default;
};

std::string FormatEventId(const EventId& id);
// The id FormatEventId wrote; nullopt if `text` is anything else.
std::optional<EventId> ParseEventId(std::string_view text);

}  // namespace acceptd::api
