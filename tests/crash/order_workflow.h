// The workflow the engine crash test runs, shared by the child that runs it
// (engine_kill_child.cc) and the test that checks what it left (engine_kill_test.cc).
//
// One run is one order: `set`, a write call, a short durable `wait`, a `for` loop that
// calls a write tool once per item, a `try` whose call the sink may decline (503) with a
// bounded retry and a fallback call in `catch.do`, and a final `set`. Every call goes to
// a catalog tool with executor "http", idempotent: true, so an interrupted call is
// retried with its idempotency key on recovery. The workflow cannot fail unless the engine
// does: a declined charge is caught, and nothing else answers with an error.
#pragma once

#include <string>
#include <string_view>

namespace cairn::crash {

// Catalog names of the write tools; each POSTs to "<sink>/sink/<name without 'sink.'>".
inline constexpr std::string_view kReserveTool = "sink.reserve";
inline constexpr std::string_view kShipTool = "sink.ship";
inline constexpr std::string_view kChargeTool = "sink.charge";
inline constexpr std::string_view kNotifyTool = "sink.notify";
inline constexpr std::string_view kTools[] = {kReserveTool, kShipTool, kChargeTool, kNotifyTool};

inline constexpr std::string_view kWorkflow = "crash/order";
// Calls of sink.charge before the catch gives up and runs its fallback: the first
// attempt plus `retry.limit.attempt.count` retries.
inline constexpr int kChargeAttemptsMax = 3;
// Items per order (the `for` loop's length) are drawn from this range.
inline constexpr int kItemsMin = 2;
inline constexpr int kItemsMax = 3;

// The definition's YAML text.
inline std::string OrderWorkflowYaml() {
  return R"(
document: {dsl: '1.0.3', namespace: crash, name: order, version: '1.0.0'}
do:
  - prepare:
      set:
        order: '${ $workflow.input.order }'
  - reserve:
      call: sink.reserve
      with:
        order: '${ $workflow.input.order }'
  - settle:
      wait: {milliseconds: 20}
  - shipItems:
      for:
        each: item
        in: '${ $workflow.input.items }'
      do:
        - ship:
            call: sink.ship
            with:
              order: '${ $workflow.input.order }'
              item: '${ $item }'
              index: '${ $index }'
  - payment:
      try:
        - charge:
            call: sink.charge
            with:
              order: '${ $workflow.input.order }'
      catch:
        errors:
          with:
            type: https://open-workflow-specification.org/spec/1.0.0/errors/communication
            status: 503
        retry:
          delay: {milliseconds: 10}
          limit: {attempt: {count: )" +
         std::to_string(kChargeAttemptsMax - 1) + R"(}}
        do:
          - notify:
              call: sink.notify
              with:
                order: '${ $workflow.input.order }'
                reason: declined
  - done:
      set:
        order: '${ $workflow.input.order }'
        status: done
)";
}

}  // namespace cairn::crash
