// Record event serialisation and the in-process event bus.
#include "record/events.h"

#include "core/json.h"

namespace rapport::record {

std::string event_json(const Event& e) {
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("entity");
  w.String(e.entity);
  w.Key("id");
  w.String(std::to_string(e.id));
  w.Key("kind");
  w.String(e.kind);
  w.Key("changed");
  w.StartArray();
  for (const auto& c : e.changed) w.String(c);
  w.EndArray();
  w.Key("at");
  w.String(e.at);
  if (e.kind == "imported") {
    w.Key("created");
    w.Int64(e.created);
    w.Key("updated");
    w.Int64(e.updated);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void EventBus::subscribe(Subscriber s) {
  std::lock_guard lock(mu_);
  subscribers_.push_back(std::move(s));
}

void EventBus::publish(const Event& e) const {
  std::vector<Subscriber> subs;
  {
    std::lock_guard lock(mu_);
    subs = subscribers_;
  }
  for (const auto& s : subs) s(e);
}

}  // namespace rapport::record
