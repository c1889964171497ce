#include "engine/process/json_rpc.h"

#include <utility>

#include "engine/process/output_text.h"

namespace cairn::engine::process {
namespace {

constexpr size_t kErrorTextBytesMax = 4096;

Result<RpcMessage> ToMessage(Json value) {
  if (!value.is_object()) {
    return Status::InvalidArgument("a JSON " + std::string(JsonTypeName(value)) +
                                   ", not a JSON-RPC message object");
  }
  auto version = value.find("jsonrpc");
  if (version == value.end() || *version != "2.0") {
    return Status::InvalidArgument("no \"jsonrpc\": \"2.0\"");
  }
  RpcMessage message;
  auto id = value.find("id");
  bool has_id = id != value.end() && !id->is_null();
  if (has_id && !id->is_number() && !id->is_string()) {
    return Status::InvalidArgument("an id that is neither a number nor a string");
  }
  if (has_id) message.id = *id;
  auto method = value.find("method");
  if (method != value.end()) {
    if (!method->is_string()) return Status::InvalidArgument("a method that is not a string");
    message.method = method->get<std::string>();
    message.kind = has_id ? RpcMessage::Kind::kRequest : RpcMessage::Kind::kNotification;
    if (auto params = value.find("params"); params != value.end()) {
      message.params = std::move(*params);
    }
    return message;
  }
  auto result = value.find("result");
  auto error = value.find("error");
  bool has_result = result != value.end();
  bool has_error = error != value.end() && !error->is_null();
  if (!has_id || has_result == has_error) {
    return Status::InvalidArgument("neither a request, a notification nor a response");
  }
  if (has_error && !error->is_object()) {
    return Status::InvalidArgument("an error that is not an object");
  }
  message.kind = RpcMessage::Kind::kResponse;
  if (has_result) message.result = std::move(*result);
  if (has_error) message.error = std::move(*error);
  return message;
}

}  // namespace

Status LineSplitter::Append(std::string_view bytes,
                            const std::function<bool(std::string_view)>& on_line) {
  buffer_.append(bytes);
  size_t start = 0;
  while (true) {
    size_t newline = buffer_.find('\n', std::max(start, scanned_));
    if (newline == std::string::npos) break;
    std::string_view line(buffer_.data() + start, newline - start);
    if (line.size() > line_bytes_max_) return LineTooLong();
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = newline + 1;
    if (!on_line(line)) return Status::Ok();
  }
  buffer_.erase(0, start);
  scanned_ = buffer_.size();  // no newline in what is left
  if (buffer_.size() > line_bytes_max_) return LineTooLong();
  return Status::Ok();
}

Status LineSplitter::LineTooLong() const {
  return Status::ResourceExhausted("a line longer than " + std::to_string(line_bytes_max_) +
                                   " bytes");
}

void LineSplitter::Clear() {
  buffer_.clear();
  scanned_ = 0;
}

Result<std::vector<RpcMessage>> ParseRpcLine(std::string_view line, size_t bytes_max) {
  CAIRN_ASSIGN_OR_RETURN(Json value, ParseJson(line, "line", bytes_max));
  std::vector<RpcMessage> messages;
  if (value.is_array()) {
    if (value.empty()) return Status::InvalidArgument("an empty batch");
    for (Json& element : value) {
      CAIRN_ASSIGN_OR_RETURN(RpcMessage message, ToMessage(std::move(element)));
      messages.push_back(std::move(message));
    }
    return messages;
  }
  CAIRN_ASSIGN_OR_RETURN(RpcMessage message, ToMessage(std::move(value)));
  messages.push_back(std::move(message));
  return messages;
}

Json RpcRequest(uint64_t id, std::string_view method, const Json& params) {
  Json message = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) message["params"] = params;
  return message;
}

Json RpcNotification(std::string_view method, const Json& params) {
  Json message = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) message["params"] = params;
  return message;
}

Json RpcResult(const Json& id, Json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Json RpcError(const Json& id, int code, std::string_view message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

std::string RpcErrorText(const Json& error) {
  std::string text = "error";
  if (auto code = error.find("code"); code != error.end() && code->is_number()) {
    text += " " + DumpJson(*code);
  }
  if (auto message = error.find("message"); message != error.end()) {
    text += ": " + (message->is_string() ? message->get<std::string>() : DumpJson(*message));
  }
  if (auto data = error.find("data"); data != error.end() && !data->is_null()) {
    text += " (data: " + DumpJson(*data) + ")";
  }
  return Excerpt(text, kErrorTextBytesMax);
}

int32_t RpcErrorStatus(const Json& error) {
  auto code = error.find("code");
  if (code == error.end() || !code->is_number_integer()) return 500;
  int64_t value = code->get<int64_t>();
  if (value == -32600 || value == -32602) return 400;
  if (value == kRpcMethodNotFound) return 404;
  return 500;
}

}  // namespace cairn::engine::process
