#include "engine/process/mcp_call.h"

#include <utility>

#include "engine/process/arguments.h"
#include "engine/process/output_text.h"

namespace cairn::engine::process {
namespace {

constexpr size_t kToolErrorBytesMax = 4096;

Result<std::string> OptionalString(const Json& object, const std::string& field,
                                   std::string fallback) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(field + ": expected a non-empty string, got " +
                                   Excerpt(DumpJson(*it), 100));
  }
  return it->get<std::string>();
}

Result<Json> ClientInfo(const Json& with, const Json& fallback) {
  auto it = with.find("client");
  if (it == with.end() || it->is_null()) return fallback;
  if (!it->is_object()) {
    return Status::InvalidArgument("client: expected an object {name, version}, got " +
                                   std::string(JsonTypeName(*it)));
  }
  CAIRN_ASSIGN_OR_RETURN(std::string name, CommandField(*it, "name"));
  CAIRN_ASSIGN_OR_RETURN(std::string version, CommandField(*it, "version"));
  return Json{{"name", name}, {"version", version}};
}

Status ParseTransport(const Json& with, McpServerConfig* server) {
  auto transport = with.find("transport");
  if (transport == with.end() || !transport->is_object()) {
    return Status::InvalidArgument(
        "transport: required, an object {stdio: {command, arguments?, environment?}}");
  }
  auto stdio = transport->find("stdio");
  if (stdio == transport->end() || stdio->is_null()) {
    if (transport->contains("http")) {
      return Status::InvalidArgument(
          "transport.http: the MCP HTTP transport is not supported; use transport.stdio");
    }
    return Status::InvalidArgument("transport.stdio: required");
  }
  if (!stdio->is_object()) {
    return Status::InvalidArgument("transport.stdio: expected an object, got " +
                                   std::string(JsonTypeName(*stdio)));
  }
  Result<std::string> command = CommandField(*stdio, "command");
  Result<std::vector<std::string>> arguments = StringListField(*stdio, "arguments");
  Result<Environment> environment = EnvironmentField(*stdio, "environment");
  for (const Status& status : {command.status(), arguments.status(), environment.status()}) {
    if (!status.ok()) return status.WithContext("transport.stdio");
  }
  server->command = std::move(command).value();
  server->arguments = std::move(arguments).value();
  server->environment = std::move(environment).value();
  return Status::Ok();
}

std::string ServerName(const McpServerConfig& server) {
  std::string line = server.command;
  for (const std::string& argument : server.arguments) line += " " + argument;
  return Quoted(line);
}

std::string ServerKey(const McpServerConfig& server) {
  Json environment = Json::object();
  for (const auto& [name, value] : server.environment) environment[name] = value;
  return DumpJson({{"command", server.command},
                   {"arguments", server.arguments},
                   {"environment", environment},
                   {"protocolVersion", server.protocol_version},
                   {"client", server.client_info}});
}

// The text a failed tool gave: its text content, else the content as JSON.
std::string ToolErrorText(const Json& result) {
  std::string text;
  if (auto content = result.find("content"); content != result.end() && content->is_array()) {
    for (const Json& item : *content) {
      auto item_text = item.is_object() ? item.find("text") : item.end();
      if (item.is_object() && item_text != item.end() && item_text->is_string()) {
        if (!text.empty()) text += "\n";
        text += item_text->get<std::string>();
      }
    }
    if (text.empty()) text = DumpJson(*content);
  }
  if (text.empty()) text = "(no content)";
  return Excerpt(text, kToolErrorBytesMax);
}

}  // namespace

Result<McpRequest> ParseMcpRequest(const Json& with, const Json& default_client_info) {
  if (!with.is_object()) {
    return Status::InvalidArgument("mcp arguments: expected an object, got " +
                                   std::string(JsonTypeName(with)));
  }
  McpRequest request;
  CAIRN_ASSIGN_OR_RETURN(request.method, CommandField(with, "method"));
  if (request.method == "initialize" || request.method.rfind("notifications/", 0) == 0) {
    return Status::InvalidArgument("method: '" + request.method +
                                   "' is sent by cairn itself, not by a workflow");
  }
  if (auto params = with.find("parameters"); params != with.end() && !params->is_null()) {
    if (!params->is_object()) {
      return Status::InvalidArgument("parameters: expected an object, got " +
                                     std::string(JsonTypeName(*params)));
    }
    request.params = *params;
  }
  CAIRN_ASSIGN_OR_RETURN(request.server.protocol_version,
                         OptionalString(with, "protocolVersion", std::string(kMcpProtocolVersion)));
  CAIRN_ASSIGN_OR_RETURN(request.server.client_info, ClientInfo(with, default_client_info));
  CAIRN_RETURN_IF_ERROR(ParseTransport(with, &request.server));
  request.server.key = ServerKey(request.server);
  request.server.name = ServerName(request.server);
  return request;
}

Json WireParams(const McpRequest& request, const std::string& idempotency_key) {
  if (request.method != "tools/call") return request.params;
  Json params = request.params.is_object() ? request.params : Json::object();
  Json& meta = params["_meta"];
  if (!meta.is_object()) meta = Json::object();
  meta[std::string(kIdempotencyMetaKey)] = idempotency_key;
  return params;
}

Json InitializeParams(const McpServerConfig& server) {
  return {{"protocolVersion", server.protocol_version},
          {"capabilities", Json::object()},
          {"clientInfo", server.client_info}};
}

std::string DescribeRequest(const McpRequest& request) {
  if (request.method == "tools/call" && request.params.is_object()) {
    auto name = request.params.find("name");
    if (name != request.params.end() && name->is_string()) {
      return "tools/call " + Quoted(name->get_ref<const std::string&>(), 100);
    }
  }
  return request.method;
}

ToolResponse McpResult(const McpRequest& request, const RpcMessage& response) {
  if (!response.error.is_null()) {
    return ToolResponse::Failed(
        error_type::kRuntime, RpcErrorStatus(response.error), "MCP request failed",
        "MCP server " + request.server.name + " answered " + DescribeRequest(request) + " with " +
            RpcErrorText(response.error));
  }
  auto is_error =
      response.result.is_object() ? response.result.find("isError") : response.result.end();
  if (request.method == "tools/call" && response.result.is_object() &&
      is_error != response.result.end() && *is_error == true) {
    return ToolResponse::Failed(error_type::kRuntime, 500, "MCP tool failed",
                                "MCP server " + request.server.name + " reported an error for " +
                                    DescribeRequest(request) + ": " +
                                    ToolErrorText(response.result));
  }
  return ToolResponse::Ok(response.result);
}

}  // namespace cairn::engine::process
