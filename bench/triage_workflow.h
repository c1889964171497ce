// The back-office workflow the engine and service benchmarks drive: 5 tasks (set, a C++
// read tool, switch, set), ~12 events per run of ~260 bytes on average.
#pragma once

#include "base/json.h"
#include "base/status.h"
#include "engine/tools/catalog.h"

namespace cairn::bench {

inline constexpr const char* kTriageWorkflow = R"(
document: {dsl: '1.0.3', namespace: bench, name: refund-triage, version: '1.0.0'}
do:
  - normalize:
      set:
        ticket: ${ .ticket }
        amount: ${ .amount }
  - lookup:
      call: crm.get_customer
      with: {ticket: '${ .ticket }'}
      output:
        as: '$input + { customer: . }'
  - route:
      switch:
        - large:
            when: .amount > 100
            then: escalate
        - small:
            then: approve
  - escalate:
      set: {decision: escalate, ticket: '${ .ticket }'}
      then: end
  - approve:
      set: {decision: approve, ticket: '${ .ticket }'}
)";

// The workflow's average encoded event size, for the raw ceiling beside it.
inline constexpr size_t kTriageEventBytes = 260;

// Registers the workflow's read tool (crm.get_customer, answered in process).
inline Status RegisterTriageTools(engine::ToolCatalog& tools) {
  engine::ToolSpec spec;
  spec.name = "crm.get_customer";
  spec.effect = storage::EffectKind::kRead;
  spec.risk = storage::RiskLevel::kLow;
  return tools.Register(spec, [](const engine::ToolRequest& r) -> Result<Json> {
    return Json{{"id", "cus_" + r.arguments.value("ticket", "")}, {"tier", "gold"}};
  });
}

}  // namespace cairn::bench
