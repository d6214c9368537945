#include "core/error.h"

namespace acceptd {

std::string_view ToString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kGone:
      return "gone";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kQueueFull:
      return "queue_full";
    case ErrorCode::kPayloadTooLarge:
      return "payload_too_large";
    case ErrorCode::kIdempotencyMismatch:
      return "idempotency_mismatch";
    case ErrorCode::kStaleLease:
      return "stale_lease";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace acceptd
