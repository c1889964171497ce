// An immutable JSON value that several holders share instead of each keeping a copy.
//
// The interpreter passes the same value from frame to frame (a list's data becomes a
// task's input, often its transformed input, then its first child list's data); copying
// and freeing it at every step was a large part of what replaying a history cost.
// A SharedJson never changes the value it holds: assigning gives it another value, and
// Take() moves the value out only when no other holder shares it. Copies may therefore be
// read and dropped from different threads; one SharedJson object is not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "base/json.h"

namespace cairn {

class SharedJson {
 public:
  SharedJson() = default;  // null
  // Implicit: a Json passed where a SharedJson is wanted is moved (or copied) in once.
  SharedJson(Json value) {  // NOLINT(google-explicit-constructor)
    if (!value.is_null()) shared_ = std::make_shared<Held>(Held{std::move(value), {}, false});
  }
  // `dumped` must be DumpJson(value): kept, so that Dump() does not write it again.
  SharedJson(Json value, std::string dumped)
      : shared_(std::make_shared<Held>(Held{std::move(value), std::move(dumped), true})) {}

  const Json& operator*() const { return shared_ ? shared_->value : Null(); }
  const Json* operator->() const { return &**this; }

  // DumpJson of the value; the text given at construction when there was one.
  std::string Dump() const {
    if (shared_ && shared_->has_dump) return shared_->dumped;
    return DumpJson(**this);
  }

  // Keeps `dumped`, which must be DumpJson of the value, for Dump() — only when this is
  // the value's only holder (the held text never changes while it is shared).
  void KeepDump(std::string dumped) {
    if (shared_ && shared_.use_count() == 1 && !shared_->has_dump) {
      shared_->dumped = std::move(dumped);
      shared_->has_dump = true;
    }
  }

  // The value, moved out when this is its only holder, else a copy; leaves this null.
  Json Take() && {
    std::shared_ptr<Held> held = std::move(shared_);
    if (!held) return Json();
    if (held.use_count() == 1) return std::move(held->value);
    return held->value;
  }

  // Whether both share one value (not whether their values are equal).
  bool SharesWith(const SharedJson& other) const { return shared_ == other.shared_; }

 private:
  struct Held {
    Json value;
    std::string dumped;
    bool has_dump;
  };
  static const Json& Null() {
    static const Json null;
    return null;
  }

  std::shared_ptr<Held> shared_;  // null for a null value
};

}  // namespace cairn
