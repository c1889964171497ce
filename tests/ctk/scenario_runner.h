// Runs one CTK scenario against cairn's real Engine.
//
// Each scenario gets a fresh engine on a temporary data directory (Durability::kBuffered,
// a SystemClock, two threads) and its own OwsServices stub for the HTTP the features call
// (see ows_services.h). Steps run in order and the first failing step ends the scenario,
// as in Cucumber. Every step is bound before any runs: a step the runner does not know is
// a failure ("undefined step"), never silently passed.
//
// Step vocabulary (the CTK README's, for workflows):
//   Given a workflow with definition:            + doc string (YAML or JSON)
//   And given the workflow input is:             + doc string (default input: {})
//   When the workflow is executed
//   Then the workflow should complete            [with output: + doc string]
//   Then the workflow should fault               [with error: + doc string; the listed
//                                                 fields (type, status, title, detail,
//                                                 instance) must be equal]
//   Then the workflow should cancel
//   And the workflow output should have properties 'a', 'b.c'
//   And the workflow output should have a 'a.b' property with value: + doc string
//   And the workflow output should have a 'a' property containing N items
//   And TASK should run first | last | before OTHER | after OTHER
//   And TASK should complete | fault
// Values are compared as JSON values (1 == 1.0; object key order is irrelevant). Task
// order comes from the run's recorded events: a task "runs" at its task_routed event and
// has run at its task_completed event; "A after B" means A was routed after B completed
// (first occurrences of each name); "first"/"last" are the first/last task routed.
//
// Skips: a definition the loader refuses only for using DSL features outside cairn's
// subset (every problem it lists says "... not supported") skips the scenario with the
// loader's message. Any other refusal, and anything that goes wrong later, is a failure.
//
// Thread-compatible: one runner per scenario, on one thread.
#pragma once

#include <string>

#include "base/status.h"
#include "tests/ctk/gherkin.h"

namespace cairn::ctk {

struct ScenarioOutcome {
  enum class Kind { kPassed = 0, kSkipped, kFailed };
  Kind kind = Kind::kPassed;
  // kSkipped: why, in full. kFailed: the failing step ("call.feature:31: Then ..."), what
  // was expected and seen, the run's events and the HTTP requests served.
  std::string message;
  // kSkipped: the refusal without positions, for the summary ("`fork` tasks are not
  // supported").
  std::string short_reason;
};

// Runs `scenario` of `feature`. Never throws; setup problems (no temporary directory, a
// stub that cannot bind) are failures.
ScenarioOutcome RunScenario(const Feature& feature, const Scenario& scenario);

// Whether a definition refusal is only about features outside cairn's subset, and if so
// its short form (the loader's messages without positions and parentheses, "; "-joined).
// Empty when some problem is of another kind.
std::string UnsupportedFeatureReason(const Status& refusal);

}  // namespace cairn::ctk
