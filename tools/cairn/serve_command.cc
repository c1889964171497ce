#include "tools/cairn/serve_command.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "tools/serve/allocator.h"
#include "tools/serve/auth.h"
#include "tools/serve/config.h"
#include "tools/serve/http_server.h"
#include "tools/serve/service.h"
#include "tools/serve/web_page.h"

namespace cairn::cli {
namespace {

constexpr const char* kListenDefault = "127.0.0.1:8080";

struct ServeOptions {
  std::string listen;       // --listen; else the config's; else kListenDefault
  std::string tokens_file;  // --tokens; else $CAIRN_TOKENS; else the config's
  std::string config_file;  // --config
};

struct TokenAddOptions {
  std::string name;
  std::string role;
  std::string tokens_file;
};

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host.rfind("127.", 0) == 0;
}

// "HOST:PORT" ("[::1]:8080" for IPv6) -> host, port.
Status ParseListen(const std::string& text, std::string* host, uint16_t* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument("--listen '" + text + "': expected HOST:PORT");
  }
  *host = text.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  if (*host == "localhost") *host = "127.0.0.1";
  const std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) > 65535) {
    return Status::InvalidArgument("--listen '" + text + "': the port must be 0-65535");
  }
  *port = static_cast<uint16_t>(std::stoul(port_text));
  return Status::Ok();
}

std::string TokensPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("CAIRN_TOKENS");
  return env != nullptr ? env : "";
}

int Serve(GlobalOptions& global, ServeOptions options) {
  serve::TuneAllocatorForDaemon();  // before the engine's and server's threads start
  serve::ServeConfig config;
  if (!options.config_file.empty()) {
    auto loaded = serve::LoadServeConfigFile(options.config_file);
    if (!loaded.ok()) return Fail(global, loaded.status());
    config = std::move(loaded).value();
  }
  if (options.listen.empty()) options.listen = config.listen.value_or(kListenDefault);
  std::string host;
  uint16_t port = 0;
  if (Status st = ParseListen(options.listen, &host, &port); !st.ok()) return Fail(global, st);
  std::shared_ptr<const serve::TokenFile> tokens;
  std::string tokens_path = TokensPath(options.tokens_file);
  if (tokens_path.empty()) tokens_path = config.tokens_file.value_or("");
  if (!tokens_path.empty()) {
    auto loaded = serve::TokenFile::LoadFile(tokens_path);
    if (!loaded.ok()) return Fail(global, loaded.status());
    tokens = std::make_shared<const serve::TokenFile>(std::move(loaded).value());
  } else if (!IsLoopback(host)) {
    return Fail(global, "--listen " + options.listen +
                            ": without a token file (--tokens FILE or $CAIRN_TOKENS) the server "
                            "listens on loopback only");
  }
  auto catalog = LoadToolCatalog(global);
  if (!catalog.ok()) return Fail(global, catalog.status().WithContext("tool catalog"));

  // SIGTERM and SIGINT are waited for by this thread: block them before any other thread
  // starts, so that none of the engine's or server's threads takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // After the signal mask, so that its thread does not take SIGTERM either.
  serve::AllocatorTrimmer trimmer(std::chrono::seconds(30));
  std::atomic<serve::Service*> service_ptr{nullptr};
  auto engine = OpenEngine(global, *catalog, EngineUse::kDriveAll, /*must_exist=*/false,
                           "cairn serve", [&service_ptr](const engine::TransitionRecord& r) {
                             if (serve::Service* s = service_ptr.load()) s->OnTransition(r);
                           });
  if (!engine.ok()) return Fail(global, engine.status());
  serve::ServiceOptions service_options;
  service_options.tokens = tokens;
  service_options.page_html = std::string(serve::PageHtml());
  auto service = std::make_unique<serve::Service>(**engine, service_options);
  service_ptr.store(service.get());
  service->Begin();

  serve::HttpServerOptions http = config.http;
  http.host = host;
  http.port = port;
  auto server = serve::HttpServer::Start(
      http, [&service](const serve::HttpRequest& r) { return service->Handle(r); });
  if (!server.ok()) {
    service_ptr.store(nullptr);
    (void)(*engine)->Close();
    return Fail(global, server.status());
  }
  const std::string url = "http://" +
                          (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                          std::to_string((*server)->port());
  *global.out << "serving " << global.data_dir << " on " << url << '\n' << std::flush;
  if (!tokens) {
    *global.err << "no token file: listening on loopback only; every request acts as the admin "
                   "'local'\n"
                << std::flush;
  } else {
    spdlog::info("{} tokens from {}", tokens->size(), tokens_path);
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::warn("received signal {}: stopping", signal_number);
  service->EndStreams();
  (*server)->Stop();
  service_ptr.store(nullptr);
  Status closed = (*engine)->Close();
  if (!closed.ok()) return Fail(global, closed.WithContext("closing " + global.data_dir));
  *global.err << "stopped\n";
  return kExitOk;
}

int TokenAdd(GlobalOptions& global, const TokenAddOptions& options) {
  auto role = serve::ParseRole(options.role);
  if (!role) {
    return Fail(global,
                "--role '" + options.role + "': expected reader, operator, approver or admin");
  }
  const std::string path = TokensPath(options.tokens_file);
  if (path.empty()) return Fail(global, "name the token file: --tokens FILE or $CAIRN_TOKENS");
  auto token = serve::NewToken();
  if (!token.ok()) return Fail(global, token.status());
  Status added = serve::AddToken(path, options.name, *role, *token);
  if (!added.ok()) return Fail(global, added);
  if (global.output == OutputFormat::kJson) {
    *global.out << JsonLine({{"name", options.name}, {"role", options.role}, {"token", *token}})
                << '\n';
  } else {
    *global.out << *token << '\n';
    *global.err << "added '" << options.name << "' (" << options.role << ") to " << path
                << "; the token above is shown once and not stored\n";
  }
  return kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App& app, GlobalOptions& global) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* serve = app.add_subcommand(
      "serve", "Run the daemon: own the data directory, drive every run, serve the HTTP API");
  serve
      ->add_option("--listen", options->listen,
                   std::string("Address to listen on (default ") + kListenDefault + ")")
      ->type_name("HOST:PORT");
  serve
      ->add_option("--config", options->config_file,
                   "Daemon settings: listen, tokens, handler_threads, limits (flags win)")
      ->type_name("FILE");
  serve
      ->add_option("--tokens", options->tokens_file,
                   "Token file (hashed bearer tokens with roles; default $CAIRN_TOKENS); "
                   "without one: loopback only")
      ->type_name("FILE");
  SetAction(serve, global, [&global, options, serve] {
    // `serve token ...` ran its own action; CLI11 calls this one after it.
    if (!serve->get_subcommands().empty()) return global.exit_code;
    return Serve(global, *options);
  });

  CLI::App* token = serve->add_subcommand("token", "Manage the API's bearer tokens");
  auto add_options = std::make_shared<TokenAddOptions>();
  CLI::App* add = token->add_subcommand(
      "add", "Create a token for NAME with ROLE; print it once and store only its hash");
  add->add_option("name", add_options->name, "Who the token is for (recorded as the actor)")
      ->required();
  add->add_option("--role", add_options->role, "reader | operator | approver | admin")->required();
  add->add_option("--tokens", add_options->tokens_file, "Token file (default $CAIRN_TOKENS)")
      ->type_name("FILE");
  SetAction(add, global, [&global, add_options] { return TokenAdd(global, *add_options); });
  token->require_subcommand(1);
}

}  // namespace cairn::cli
