// mcp_stub: a small MCP server over stdio for the McpExecutor tests. Single-threaded: it
// reads one JSON-RPC message per line from stdin and answers on stdout.
//
// Behaviour is chosen by arguments:
//   --die-on-call N       exit with code 3 on the Nth tools/call (after a stderr line)
//   --garbage-on-call N   answer the Nth tools/call with a line that is not JSON
//   --hang-on-init        never answer initialize
//   --init-error          answer initialize with a JSON-RPC error
//   --start-delay-ms N    sleep N ms before reading anything (a slow start)
//   --ignore-eof          keep running when stdin ends (Shutdown must kill it)
//   --noisy               a stderr log line and a notifications/message per request
// Tools (tools/call name):
//   echo {..}      result {content: [text], structuredContent: arguments}
//   meta           structuredContent: the params._meta received
//   pid            structuredContent: {pid}
//   state          structuredContent: {initialize: params, initialized: bool, calls}
//   fail           isError: true with a text
//   hang           never answered (the stub keeps serving other requests)
//   big {bytes}    a text of that many bytes
//   die            exit with code 3 at once, after a stderr line
//   garbage        a non-JSON line with invalid UTF-8
//   ping_client    pings the client and makes a sampling request, waits for both
//                  answers, and returns them
// Unknown tools get JSON-RPC error -32602, unknown methods -32601, and requests before
// notifications/initialized error -32002.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

using Json = nlohmann::json;

namespace {

struct Options {
  long die_on_call = 0;
  long garbage_on_call = 0;
  bool hang_on_init = false;
  bool init_error = false;
  long start_delay_ms = 0;
  bool ignore_eof = false;
  bool noisy = false;
};

struct State {
  Json initialize_params;
  bool initialized = false;
  long calls = 0;
  std::deque<std::string> backlog;  // lines read while waiting for a specific answer
};

void Send(const Json& message) {
  std::cout << message.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n" << std::flush;
}

void Reply(const Json& id, Json result) {
  Send({{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
}

void ReplyError(const Json& id, int code, const std::string& message) {
  Send({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

Json TextResult(const std::string& text, Json structured = nullptr) {
  Json result = {{"content", {{{"type", "text"}, {"text", text}}}}};
  if (!structured.is_null()) result["structuredContent"] = std::move(structured);
  return result;
}

bool ReadLine(State& state, std::string* line) {
  if (!state.backlog.empty()) {
    *line = std::move(state.backlog.front());
    state.backlog.pop_front();
    return true;
  }
  return static_cast<bool>(std::getline(std::cin, *line));
}

[[noreturn]] void Die(const std::string& why) {
  std::cerr << "mcp_stub: dying: " << why << std::endl;
  std::exit(3);
}

// Sends a ping and a sampling request to the client; returns both answers.
Json PingClient(State& state) {
  Send({{"jsonrpc", "2.0"},
        {"method", "notifications/message"},
        {"params", {{"level", "info"}, {"data", "about to ping"}}}});
  Send({{"jsonrpc", "2.0"}, {"id", "srv-ping"}, {"method", "ping"}});
  Send({{"jsonrpc", "2.0"},
        {"id", "srv-sampling"},
        {"method", "sampling/createMessage"},
        {"params", Json::object()}});
  Json answers = Json::object();
  std::string line;
  while (answers.size() < 2 && std::getline(std::cin, line)) {
    Json message = Json::parse(line, nullptr, false);
    if (message.is_object() && message.contains("id") && message["id"].is_string() &&
        !message.contains("method")) {
      answers[message["id"].get<std::string>()] = message;
    } else {
      state.backlog.push_back(line);
    }
  }
  return answers;
}

void CallTool(const Options& options, State& state, const Json& id, const Json& params) {
  ++state.calls;
  if (options.die_on_call != 0 && state.calls == options.die_on_call) {
    Die("call " + std::to_string(state.calls));
  }
  if (options.garbage_on_call != 0 && state.calls == options.garbage_on_call) {
    std::cout << "this is not JSON-RPC \xff\xfe" << std::endl;
    return;
  }
  std::string name = params.value("name", "");
  Json arguments = params.value("arguments", Json::object());
  if (name == "echo") {
    Reply(id, TextResult(arguments.dump(), arguments));
  } else if (name == "meta") {
    Reply(id, TextResult("meta", params.value("_meta", Json(nullptr))));
  } else if (name == "pid") {
    Reply(id, TextResult(std::to_string(getpid()), {{"pid", getpid()}}));
  } else if (name == "state") {
    Reply(id, TextResult("state", {{"initialize", state.initialize_params},
                                   {"initialized", state.initialized},
                                   {"calls", state.calls}}));
  } else if (name == "fail") {
    Json result = TextResult("the tool failed on purpose");
    result["isError"] = true;
    Reply(id, result);
  } else if (name == "hang") {
    // no answer
  } else if (name == "big") {
    Reply(id, TextResult(std::string(arguments.value("bytes", 0), 'b')));
  } else if (name == "die") {
    Die("asked to");
  } else if (name == "garbage") {
    std::cout << "garbage \xff\xfe{" << std::endl;
  } else if (name == "ping_client") {
    Reply(id, TextResult("pinged", PingClient(state)));
  } else {
    ReplyError(id, -32602, "Unknown tool: " + name);
  }
}

void Handle(const Options& options, State& state, const Json& message) {
  std::string method = message.value("method", "");
  Json id = message.contains("id") ? message["id"] : Json(nullptr);
  if (options.noisy) {
    std::cerr << "mcp_stub: got " << method << std::endl;
    Send({{"jsonrpc", "2.0"},
          {"method", "notifications/message"},
          {"params", {{"level", "debug"}, {"data", "got " + method}}}});
  }
  if (method == "initialize") {
    if (options.hang_on_init) return;
    if (options.init_error) {
      ReplyError(id, -32603, "initialization refused on purpose");
      return;
    }
    state.initialize_params = message.value("params", Json::object());
    Reply(id, {{"protocolVersion", state.initialize_params.value("protocolVersion", "")},
               {"capabilities", {{"tools", Json::object()}}},
               {"serverInfo", {{"name", "mcp_stub"}, {"version", "1.0"}}}});
    return;
  }
  if (method == "notifications/initialized") {
    state.initialized = true;
    return;
  }
  if (id.is_null()) return;  // other notifications
  if (!state.initialized) {
    ReplyError(id, -32002, "not initialized");
    return;
  }
  if (method == "tools/list") {
    Json tools = Json::array();
    for (const char* name :
         {"echo", "meta", "pid", "state", "fail", "hang", "big", "die", "garbage", "ping_client"}) {
      tools.push_back({{"name", name}, {"inputSchema", {{"type", "object"}}}});
    }
    Reply(id, {{"tools", tools}});
  } else if (method == "tools/call") {
    CallTool(options, state, id, message.value("params", Json::object()));
  } else if (method == "ping") {
    Reply(id, Json::object());
  } else {
    ReplyError(id, -32601, "Method not found: " + method);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atol(argv[++i]) : 0L; };
    if (arg == "--die-on-call")
      options.die_on_call = next();
    else if (arg == "--garbage-on-call")
      options.garbage_on_call = next();
    else if (arg == "--hang-on-init")
      options.hang_on_init = true;
    else if (arg == "--init-error")
      options.init_error = true;
    else if (arg == "--start-delay-ms")
      options.start_delay_ms = next();
    else if (arg == "--ignore-eof")
      options.ignore_eof = true;
    else if (arg == "--noisy")
      options.noisy = true;
    else {
      std::cerr << "mcp_stub: unknown argument " << arg << std::endl;
      return 2;
    }
  }
  if (options.start_delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options.start_delay_ms));
  }
  State state;
  std::string line;
  while (ReadLine(state, &line)) {
    Json message = Json::parse(line, nullptr, false);
    if (!message.is_object()) {
      std::cerr << "mcp_stub: ignoring a line that is not a JSON object" << std::endl;
      continue;
    }
    Handle(options, state, message);
  }
  if (options.ignore_eof) {
    while (true) pause();
  }
  return 0;
}
