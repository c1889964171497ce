// `cairn serve`: the daemon (DESIGN.md §10) — owns the data directory, runs the engine,
// resumes every run at start, and serves the /v1 HTTP API (tools/serve/service.h).
//
//   cairn serve [--listen HOST:PORT] [--tokens FILE] [--config FILE]
//   cairn serve token add NAME --role ROLE [--tokens FILE]
//
// --config names a YAML file of settings (tools/serve/config.h: listen, tokens,
// handler_threads, limits); flags win over it. Without a token file the server listens only on a loopback address (it refuses
// another) and every request acts as the admin "local"; it says so at start. With one,
// every request but /v1/health and the page needs `Authorization: Bearer TOKEN`.
// On SIGTERM or SIGINT it stops accepting, lets requests being answered finish, ends
// live streams, closes the engine (in-flight transitions become durable) and exits 0.
// Once listening it prints one line on stdout: "serving DATA on http://HOST:PORT".
#pragma once

#include "tools/cairn/global_options.h"

namespace cairn::cli {

void AddServeCommand(CLI::App& app, GlobalOptions& global);

}  // namespace cairn::cli
