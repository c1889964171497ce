// Remote mode: how the `run`, `workflow` and `kill` commands talk to a running `cairn serve`
// (--address URL, else $CAIRN_ADDRESS) through its /v1 API instead of opening the data
// directory. The commands print what they get back with the same formatters as the
// embedded mode, so the output and exit codes are the same for the same state.
//
// The token is the content of --token-file FILE, else $CAIRN_TOKEN (never a flag: argv is
// visible to every user of the machine). The server records the token's owner as who asks;
// `--as NAME` is accepted only when NAME is that owner, and refused otherwise.
//
// Single-threaded, like the CLI.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/json.h"
#include "base/status.h"
#include "tools/cairn/global_options.h"
#include "tools/serve/client.h"

namespace cairn::cli {

// Whether the commands talk to a server: an address was given (flag or environment).
bool IsRemote(const GlobalOptions& global);

// A client for the address, its token read, connected. Errors, ready for Fail(): a bad
// address (kInvalidArgument naming --address or $CAIRN_ADDRESS; https is refused: no TLS),
// an unreadable or empty token file, a server that cannot be reached (kUnavailable,
// "cannot reach http://HOST:PORT: connection refused"), `--as` naming someone other than
// the token's owner (kInvalidArgument).
Result<std::unique_ptr<serve::Client>> ConnectRemote(const GlobalOptions& global);

// "/v1/runs/ID" (the id encoded).
std::string RunPath(const std::string& run_id);

// What a follower waits for.
enum class FollowUntil : uint8_t {
  // The run stops, or parks on something only the outside world delivers (an event, an
  // approval, an operator): as the embedded engine's Wait. Timers are waited for.
  kParkedOrStopped,
  // The run stops.
  kStopped,
  // The run is no longer running: it stopped or parked, on a timer too.
  kSettled,
};

struct Followed {
  Json view;  // the run as GET /v1/runs/{id} shows it (run describe -o json)
  bool timed_out = false;
};

// Follows the run through its event stream (/v1/runs/{id}/events), reading its state each
// time something happens, until `until` holds or `timeout` passes (then `timed_out`, with
// the state at that moment). The client's errors; kNotFound for an unknown run.
Result<Followed> FollowRun(serve::Client& client, const std::string& run_id,
                           std::chrono::milliseconds timeout, FollowUntil until);

// Whether a run, as its view shows it (status, waiting_on), satisfies `until`.
bool Reached(const Json& view, FollowUntil until);

}  // namespace cairn::cli
