// The job model: ids, states, and the Job record shared by every layer.
//
// JobId is 128 bits rendered as 32 lowercase hex characters; the status URL
// is a capability, so ids must be unguessable: a new id (JobId::New) is a
// 48-bit millisecond time prefix and 80 random bits. JobState moves only along
// the transitions in job_state.cc (see docs/state_machine.md).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace acceptd {

class JobId {
 public:
  JobId() = default;
  // A new job's id: the first 48 bits are `now` in Unix milliseconds
  // (big-endian, so ids sort by creation time as bytes and as hex), never
  // below a prefix this process handed out before (the clock may step back);
  // the other 80 bits come from the kernel's CSPRNG (getrandom). Time-ordered
  // ids append to the store's primary-key index instead of dirtying a random
  // page of it per insert (like UUIDv7, without the version bits: 80 random
  // bits rather than 74). Ids of any other shape (the 128 random bits of
  // earlier versions) stay valid everywhere: nothing depends on the order.
  static JobId New(UnixMillis now);
  // 128 bits from the kernel's CSPRNG (getrandom): tests, and node names.
  static JobId Random();
  // Exactly 32 lowercase hex characters, else nullopt.
  static std::optional<JobId> Parse(std::string_view hex);
  static JobId FromBytes(const void* data);  // reads 16 bytes

  std::string ToHex() const;
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  friend bool operator==(const JobId&, const JobId&) = default;
  friend auto operator<=>(const JobId&, const JobId&) = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

struct JobIdHash {
  size_t operator()(const JobId& id) const;
};

// Stored as small integers: the values are part of the store format.
enum class JobState : uint8_t {
  kQueued = 0,
  kRunning = 1,
  kSucceeded = 2,
  kFailed = 3,
  kCanceled = 4,
};
inline constexpr int kJobStateCount = 5;

std::string_view ToString(JobState state);
std::optional<JobState> ParseJobState(std::string_view text);
constexpr bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCanceled;
}
// The one transition table (job_state.cc): true iff `from -> to` is legal.
// A new job is created queued (see IsLegalInitialState); no other place
// decides which state changes may happen, and every store checks each change
// it makes against this function (see store/job_store.h).
bool IsLegalTransition(JobState from, JobState to);
constexpr bool IsLegalInitialState(JobState state) { return state == JobState::kQueued; }

struct Progress {
  int percent = 0;  // 0..100
  std::string message;
};

struct JobError {
  std::string type;  // "handler_error", "timeout", "lease_expired", ...
  std::string message;
};

// Delivery of a job's completion callback (webhook); see docs/api.md.
struct CallbackState {
  std::string url;
  int attempts = 0;                           // delivery attempts made so far
  std::optional<int> last_status;             // HTTP status of the last attempt, if it got one
  std::string last_error;                     // why the last attempt failed without a status
  std::optional<UnixMillis> delivered_at;     // set once a 2xx was received
  std::optional<UnixMillis> next_attempt_at;  // set while a delivery is pending
};

struct Job {
  int64_t seq = 0;  // store-assigned insertion order; list cursor
  JobId id;
  std::string queue;
  std::string tenant;  // who submitted it (the API key's tenant); empty: no tenant
  JobState state = JobState::kQueued;
  int priority = 0;
  std::string content_type;  // of the payload

  UnixMillis created_at = 0;
  UnixMillis updated_at = 0;
  UnixMillis run_at = 0;                         // not claimed before this time (delay, backoff)
  std::optional<UnixMillis> started_at;          // of the first attempt
  std::optional<UnixMillis> attempt_started_at;  // of the latest attempt
  std::optional<UnixMillis> finished_at;
  std::optional<UnixMillis> expires_at;  // set when terminal: finished_at + retention

  int attempts = 0;
  int max_attempts = 1;
  Millis timeout = 0;    // per attempt
  Millis retention = 0;  // how long a terminal job is kept

  std::optional<Progress> progress;
  std::optional<JobError> error;  // last error (kept across retries)
  bool cancel_requested = false;
  bool delete_requested = false;
  bool has_result = false;
  std::optional<CallbackState> callback;  // only for jobs submitted with a callback

  // The current lease (meaningful while running).
  std::string lease_owner;
  int64_t lease_token = 0;  // fencing token: grows on every claim
  UnixMillis lease_expires_at = 0;

  // Filled only by operations that hand a job to a worker (claim).
  std::string payload;
};

}  // namespace acceptd
