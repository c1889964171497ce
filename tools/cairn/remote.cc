#include "tools/cairn/remote.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>
#include <utility>

#include "base/text_file.h"
#include "storage/event.h"

namespace cairn::cli {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr size_t kTokenBytesMax = 4096;
// A follower reads the run's state again at least this often when its stream is quiet, so
// that a proxy holding a stream open without passing events on cannot hang a --wait.
constexpr milliseconds kFollowRecheck = std::chrono::seconds(30);
// A stream the server ended without an event (it is stopping, or found the client slow)
// is opened again after this pause.
constexpr milliseconds kReopenPause = std::chrono::milliseconds(200);

struct Token {
  std::string value;
  std::string source;  // "--token-file FILE" or "$CAIRN_TOKEN"; "" when there is none
};

std::string Trim(std::string text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// --token-file FILE wins over $CAIRN_TOKEN; neither: no token (a server without a token
// file, on loopback, needs none).
Result<Token> ReadToken(const GlobalOptions& global) {
  if (!global.token_file.empty()) {
    const std::string source = "--token-file " + global.token_file;
    CAIRN_ASSIGN_OR_RETURN(std::string text,
                           ReadTextFile(global.token_file, "--token-file", kTokenBytesMax));
    text = Trim(std::move(text));
    if (text.empty()) {
      return Status::InvalidArgument(source +
                                     ": the file is empty (it holds the token that 'cairn serve "
                                     "token add' printed)");
    }
    if (text.find_first_of(" \t\r\n") != std::string::npos) {
      return Status::InvalidArgument(source + ": expected one token on one line");
    }
    return Token{std::move(text), source};
  }
  const char* env = std::getenv("CAIRN_TOKEN");
  if (env != nullptr && *env != '\0') return Token{Trim(env), "$CAIRN_TOKEN"};
  return Token{};
}

}  // namespace

bool IsRemote(const GlobalOptions& global) {
  return global.address_flag || !global.address.empty();
}

Result<std::unique_ptr<serve::Client>> ConnectRemote(const GlobalOptions& global) {
  auto address = serve::ParseServerAddress(global.address);
  if (!address.ok()) return address.status().WithContext(global.address_source);
  CAIRN_ASSIGN_OR_RETURN(Token token, ReadToken(global));
  serve::ClientOptions options;
  options.address = *address;
  options.token = token.value;
  options.token_source = token.source;
  options.user_agent = "cairn-cli";
  auto client = serve::Client::Create(std::move(options));
  if (!client.ok()) return client.status().WithContext(token.source);
  CAIRN_RETURN_IF_ERROR((*client)->Connect());
  if (global.actor_given) {
    CAIRN_ASSIGN_OR_RETURN(Json who, (*client)->Get("/v1/whoami"));
    const std::string name = JsonText(who, "name");
    if (name != global.actor) {
      return Status::InvalidArgument("--as " + global.actor + ": " + address->url +
                                     " records who asks from the token, which is '" + name + "' (" +
                                     JsonText(who, "role") + "); drop --as, or use " +
                                     global.actor + "'s token");
    }
  }
  return client;
}

std::string RunPath(const std::string& run_id) { return "/v1/runs/" + serve::UrlEncode(run_id); }

bool Reached(const Json& view, FollowUntil until) {
  auto status = storage::ParseRunStatus(JsonText(view, "status"));
  if (!status.ok()) return true;  // a status this cairn does not know: nothing to wait for
  if (storage::IsTerminal(*status)) return true;
  if (until == FollowUntil::kStopped) return false;
  if (until == FollowUntil::kSettled) return *status != storage::RunStatus::kRunning;
  if (*status == storage::RunStatus::kBlocked) return true;
  if (*status != storage::RunStatus::kWaiting) return false;
  // As the engine's Wait: a timer (or a retry's backoff) is waited for.
  const std::string waiting_on = JsonText(view, "waiting_on");
  return waiting_on.rfind("timer", 0) != 0 && waiting_on.rfind("retry", 0) != 0;
}

Result<Followed> FollowRun(serve::Client& client, const std::string& run_id, milliseconds timeout,
                           FollowUntil until) {
  const Clock::time_point deadline = Clock::now() + timeout;
  const std::string path = RunPath(run_id);
  Followed out;
  CAIRN_ASSIGN_OR_RETURN(out.view, client.Get(path));
  std::unique_ptr<serve::EventReader> stream;
  bool heard = false;  // the open stream delivered an event
  while (!Reached(out.view, until)) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      out.timed_out = true;
      return out;
    }
    if (stream && stream->ended()) {
      if (!heard)
        std::this_thread::sleep_for(std::min<Clock::duration>(kReopenPause, deadline - now));
      stream.reset();
      continue;  // the state was read after the stream's last event; read from there again
    }
    if (!stream) {
      // From the first event the state just read has not counted: nothing between the
      // read and the stream is missed.
      const uint64_t next = out.view.value("events", uint64_t{0});
      CAIRN_ASSIGN_OR_RETURN(stream,
                             client.OpenEvents(path + "/events?from=" + std::to_string(next)));
      heard = false;
    }
    const milliseconds wait =
        std::min(std::chrono::duration_cast<milliseconds>(deadline - now), kFollowRecheck);
    CAIRN_ASSIGN_OR_RETURN(std::optional<serve::ServerSentEvent> event, stream->Next(wait));
    // One read of the state per burst of events.
    while (event) {
      heard = true;
      CAIRN_ASSIGN_OR_RETURN(event, stream->Next(milliseconds(0)));
    }
    CAIRN_ASSIGN_OR_RETURN(out.view, client.Get(path));
  }
  return out;
}

}  // namespace cairn::cli
