// Policies for tests that exercise the engine rather than the policy: every call allowed.
#pragma once

#include <memory>

#include "base/assert.h"
#include "policy/policy.h"

namespace cairn::testing {

inline std::shared_ptr<const policy::Policy> AllowAllPolicy() {
  auto loaded = policy::Policy::Load(
      "version: 1\nname: allow-all (tests)\ndefaults: {read: allow, write: allow}\n",
      "allow-all.yaml");
  CAIRN_ASSERT(loaded.ok(), "the allow-all test policy must load");
  return *loaded;
}

}  // namespace cairn::testing
