#include "engine/process/mcp_executor.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <utility>
#include <vector>

#include "engine/process/mcp_server.h"

namespace cairn::engine::process {
namespace {

ToolResponse ShuttingDown() {
  return ToolResponse::Failed(error_type::kRuntime, 503, "MCP executor shutting down",
                              "the MCP executor is shutting down");
}

// Answers `done` on the executor (never inside Call), then counts the call out.
void PostAnswer(const std::shared_ptr<McpExecutor::Shared>& shared, ToolCallback done,
                ToolResponse response) {
  boost::asio::post(shared->executor,
                    [shared, done = std::move(done), response = std::move(response)]() mutable {
                      done(std::move(response));
                      shared->outstanding.Leave();
                    });
}

// The server for `config`, created if needed; when servers_max are running, the least
// recently used idle one is closed to make room. nullptr (and `refusal` set) if all are
// busy. Called under shared.mutex.
std::shared_ptr<McpServer> FindOrCreateServer(const std::shared_ptr<McpExecutor::Shared>& shared,
                                              const McpServerConfig& config, std::string* refusal) {
  auto& servers = shared->servers;
  if (auto it = servers.find(config.key); it != servers.end()) return it->second;
  if (servers.size() >= shared->options.servers_max) {
    auto oldest = servers.end();
    for (auto it = servers.begin(); it != servers.end(); ++it) {
      if (it->second->outstanding.load() != 0) continue;
      if (oldest == servers.end() || it->second->last_use < oldest->second->last_use) {
        oldest = it;
      }
    }
    if (oldest == servers.end()) {
      *refusal = "cannot start MCP server " + config.name + ": all " +
                 std::to_string(shared->options.servers_max) + " MCP servers are busy";
      return nullptr;
    }
    std::shared_ptr<McpServer> evicted = std::move(oldest->second);
    servers.erase(oldest);
    boost::asio::post(evicted->strand(), [evicted] { evicted->Close(); });
  }
  auto server = std::make_shared<McpServer>(shared, config);
  servers.emplace(config.key, server);
  return server;
}

}  // namespace

McpExecutor::McpExecutor(boost::asio::any_io_executor executor, McpOptions options)
    : shared_(std::make_shared<Shared>(std::move(executor), std::move(options))) {
  CAIRN_ASSERT(shared_->options.servers_max > 0, "McpOptions::servers_max must be > 0");
  CAIRN_ASSERT(shared_->options.requests_per_server_max > 0,
               "McpOptions::requests_per_server_max must be > 0");
  EnsureSigpipeIgnored();
}

McpExecutor::~McpExecutor() { Shutdown(); }

void McpExecutor::Call(ToolRequest request, ToolCallback done) {
  if (!shared_->outstanding.Enter()) {
    boost::asio::post(shared_->executor, [done = std::move(done)] { done(ShuttingDown()); });
    return;
  }
  Result<McpRequest> parsed = ParseMcpRequest(request.arguments, shared_->default_client_info);
  if (!parsed.ok()) {
    PostAnswer(shared_, std::move(done),
               ToolResponse::Failed(error_type::kConfiguration, 400, "Invalid MCP arguments",
                                    SanitizeUtf8(parsed.status().message())));
    return;
  }
  std::shared_ptr<McpServer> server;
  std::string refusal;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (!shared_->shutting_down) {
      server = FindOrCreateServer(shared_, parsed->server, &refusal);
      if (server) {
        server->outstanding.fetch_add(1);  // under the mutex: eviction sees it
        server->last_use = ++shared_->use_clock;
      }
    }
  }
  if (!server) {
    PostAnswer(shared_, std::move(done),
               refusal.empty()
                   ? ShuttingDown()
                   : ToolResponse::Failed(error_type::kRuntime, 503, "MCP server unavailable",
                                          SanitizeUtf8(refusal)));
    return;
  }
  boost::asio::post(
      server->strand(),
      [server, parsed = std::move(parsed).value(), key = std::move(request.idempotency_key),
       timeout = request.timeout, done = std::move(done)]() mutable {
        server->Submit(std::move(parsed), std::move(key), timeout, std::move(done));
      });
}

void McpExecutor::Shutdown() {
  shared_->outstanding.Close();
  std::vector<std::shared_ptr<McpServer>> servers;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->shutting_down = true;
    for (auto& [key, server] : shared_->servers) servers.push_back(std::move(server));
    shared_->servers.clear();  // also breaks the servers' references back to shared_
  }
  for (const auto& server : servers) {
    boost::asio::post(server->strand(), [server] { server->Close(); });
  }
  shared_->outstanding.WaitIdle();
  auto reap_wait = shared_->options.shutdown_grace + shared_->options.shutdown_reap_timeout;
  if (!shared_->children->WaitAllReaped(reap_wait)) {
    spdlog::warn("MCP executor: {} server processes not reaped after {} ms",
                 shared_->children->size(), reap_wait.count());
  }
}

size_t McpExecutor::InFlight() const { return shared_->outstanding.count(); }

size_t McpExecutor::LiveChildren() const { return shared_->children->size(); }

}  // namespace cairn::engine::process
