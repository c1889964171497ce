// How `cairn run` prints runs: the describe view, the list table, the show timeline, a
// start, and the state after a steering command with its exit code.
//
// Everything is printed from the JSON forms that both the store and the /v1 API give
// (tools/serve/run_view.h's RunViewToJson, storage/event_json.h's RunHeaderToJson and
// EventToJson), so that the embedded and the remote mode (--address) print the same bytes
// and exit with the same code for the same state. Pure functions of their arguments and
// the streams of `global`; single-threaded, like the CLI.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/json.h"
#include "tools/cairn/global_options.h"

namespace cairn::cli {

// What a steering command expects of the run it moved.
enum class Expect : uint8_t {
  kCompletion,  // start --wait: completing is success, stopping otherwise is not
  kProgress,    // signal, resolve, approve: the request was recorded; the run moved on
  kStop,        // cancel, kill, reject: stopping is success
};

// A run's view (run describe -o json / GET /v1/runs/{id}): one JSON line with -o json,
// else the describe table.
void PrintRunView(const GlobalOptions& global, const Json& view);

// Prints the view, then on stderr what holds the run up (and which command moves it on)
// or that it is still running after `waited` (`timed_out`); returns the exit code
// (tools/README.md): 0 completed, parked, or stopped when `expect` is kStop; 1 stopped
// otherwise, or still running at the timeout of a kCompletion wait.
int ReportState(const GlobalOptions& global, const Json& view, bool timed_out,
                std::chrono::milliseconds waited, Expect expect);

// `run list`'s table of run headers (RunHeaderToJson forms): RUN STATUS WORKFLOW EVENTS
// STARTED WAITING ON.
void PrintRunTable(const GlobalOptions& global, const std::vector<Json>& headers);

// `run show`'s row for one event (EventToJson form): SEQ TIME TASK KIND SUMMARY.
std::vector<std::string> TimelineRow(const Json& event);
inline const std::vector<std::string> kTimelineHeaders = {"SEQ", "TIME", "TASK", "KIND", "SUMMARY"};

// `run start` without --wait: the run id (with -o json: {"run_id", "created", "workflow"}),
// and on stderr whether it was recorded (embedded: for the next engine to run; remote:
// `server` names the server that runs it) or existed already. Returns kExitOk.
int PrintStarted(const GlobalOptions& global, const std::string& run_id, bool created,
                 const std::string& workflow, const std::string& server);

// "failed (approval_denied)" from a view or a header: the status, and the stop reason when
// it says more.
std::string StatusLabelOf(const Json& run);

// "namespace/name:version" from a view's "workflow" object ("-" when unknown).
std::string ViewWorkflowLabel(const Json& view);

}  // namespace cairn::cli
