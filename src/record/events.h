// Record events: one per committed change. The audit trail is written in the transaction; these
// go to the WebSocket hub, workflow rules and webhooks after the commit.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace rapport::record {

struct Event {
  std::string entity;
  std::int64_t id = 0;
  // created | updated | deleted | restored, or imported: one event for a batch of an import
  // (id = the import_run, `changed` = the fields the file writes, counts in created/updated)
  std::string kind;
  std::vector<std::string> changed;
  std::int64_t owner_id = 0;
  std::int64_t team_id = 0;
  std::int64_t user_id = 0;  // who made the change
  std::string at;            // ISO 8601 UTC
  std::int64_t created = 0;  // imported: records created and updated by the batch
  std::int64_t updated = 0;
};

std::string event_json(const Event& e);

// Fan-out of committed events to in-process subscribers. Subscribing happens at start-up;
// publish() is thread-safe and runs subscribers on the publishing thread (keep them quick).
class EventBus {
 public:
  using Subscriber = std::function<void(const Event&)>;
  void subscribe(Subscriber s);
  void publish(const Event& e) const;

 private:
  mutable std::mutex mu_;
  std::vector<Subscriber> subscribers_;
};

}  // namespace rapport::record
