#include "api/event_id.h"

#include <charconv>

#include <fmt/format.h>

namespace acceptd::api {

namespace {

template <typename T>
std::optional<T> ParseNumber(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v < 0) return std::nullopt;
  return v;
}

}  // namespace

std::string FormatEventId(const EventId& id) {
  return fmt::format("{}-{}-{}-{}", ToString(id.state), id.attempts, id.millis,
                     id.kind == EventKind::kState ? 's' : 'p');
}

std::optional<EventId> ParseEventId(std::string_view text) {
  std::string_view parts[4];
  for (int i = 0; i < 4; ++i) {
    const size_t dash = text.find('-');
    if ((dash == std::string_view::npos) != (i == 3)) return std::nullopt;
    parts[i] = text.substr(0, dash);
    text = dash == std::string_view::npos ? std::string_view() : text.substr(dash + 1);
  }
  EventId id;
  auto state = ParseJobState(parts[0]);
  auto attempts = ParseNumber<int>(parts[1]);
  auto millis = ParseNumber<UnixMillis>(parts[2]);
  if (!state || !attempts || !millis) return std::nullopt;
  if (parts[3] == "s") {
    id.kind = EventKind::kState;
  } else if (parts[3] == "p") {
    id.kind = EventKind::kProgress;
  } else {
    return std::nullopt;
  }
  id.state = *state;
  id.attempts = *attempts;
  id.millis = *millis;
  return id;
}

}  // namespace acceptd::api
