// StreamSlots: the open event streams of a server (GET /v1/jobs/{id}/events
// and the dashboard's GET /v1/events), counted against one cap
// (ApiOptions::max_event_streams): each holds a connection and a listener
// for as long as the client stays.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace acceptd::api {

class StreamSlots {
 public:
  // Held by a streamed response; gives its slot back when destroyed.
  class Slot {
   public:
    explicit Slot(std::shared_ptr<std::atomic<int64_t>> open) : open_(std::move(open)) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { --*open_; }

   private:
    std::shared_ptr<std::atomic<int64_t>> open_;
  };

  // A slot while fewer than `max` are taken, else null (answer 503). The
  // count outlives this object for slots still held.
  std::shared_ptr<Slot> Take(int64_t max) {
    if (++*open_ > max) {
      --*open_;
      return nullptr;
    }
    return std::make_shared<Slot>(open_);
  }
  int64_t open() const { return open_->load(); }

 private:
  std::shared_ptr<std::atomic<int64_t>> open_ = std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace acceptd::api
