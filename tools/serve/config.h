// The daemon's configuration file (`cairn serve --config FILE`), YAML:
//
//   listen: 127.0.0.1:8080        # HOST:PORT
//   tokens: /etc/cairn/tokens.yaml  # relative paths resolve against the file's folder
//   handler_threads: 8
//   limits:
//     header_bytes: 16384
//     body_bytes: 4194304
//     request_timeout: 15s
//     idle_timeout: 60s
//     write_timeout: 30s
//     connections: 512
//     requests_in_flight: 1024
//
// Every key is optional; flags given on the command line win over the file. Unknown keys
// are refused by name; errors as "FILE:LINE:COL: what is wrong (expected ...)".
#pragma once

#include <optional>
#include <string>

#include "base/status.h"
#include "tools/serve/http_server.h"

namespace cairn::serve {

struct ServeConfig {
  std::optional<std::string> listen;
  std::optional<std::string> tokens_file;
  HttpServerOptions http;  // limits and handler_threads (defaults where the file is silent)
};

Result<ServeConfig> LoadServeConfig(std::string_view yaml, std::string_view source_name,
                                    const std::string& base_dir);
Result<ServeConfig> LoadServeConfigFile(const std::string& path);

}  // namespace cairn::serve
