#include "engine/core/executors.h"

#include "engine/http/http_executor.h"
#include "engine/process/mcp_executor.h"
#include "engine/process/shell_executor.h"

namespace cairn::engine {

Status AddExecutors(ToolRouter& router, boost::asio::any_io_executor io,
                    const EngineOptions& options) {
  auto shell = std::make_shared<process::ShellExecutor>(io);
  router.Add("shell", shell);
  router.Add("command", shell);
  router.Add("mcp", std::make_shared<process::McpExecutor>(io));
  http::HttpOptions http_options;
  http_options.verify_peer = options.verify_tls_peers;
  http_options.extra_ca_pem = options.extra_ca_pem;
  http_options.connect_overrides = options.http_connect_overrides;
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<http::HttpExecutor> http,
                         http::HttpExecutor::Create(io, std::move(http_options)));
  router.Add("http", std::shared_ptr<http::HttpExecutor>(std::move(http)));
  return Status::Ok();
}

}  // namespace cairn::engine
