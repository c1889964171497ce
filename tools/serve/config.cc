#include "tools/serve/config.h"

#include <filesystem>

#include "base/text_file.h"
#include "base/yaml_config.h"

namespace cairn::serve {
namespace {

constexpr size_t kConfigBytesMax = 64 << 10;
constexpr uint64_t kTimeoutMsMax = 3'600'000;

}  // namespace

Result<ServeConfig> LoadServeConfig(std::string_view yaml, std::string_view source_name,
                                    const std::string& base_dir) {
  YamlProblems problems(source_name);
  ServeConfig config;
  std::optional<YAML::Node> root =
      ParseYamlText(problems, yaml, "the serve config", kConfigBytesMax);
  if (root && !root->IsNull()) {
    YamlContext ctx{problems, "", nullptr};
    if (!root->IsMap()) {
      ctx.Add(*root, "expected a map (listen, tokens, handler_threads, limits), found " +
                         DescribeYamlNode(*root));
    } else {
      yaml::RefuseUnknownKeys(ctx, *root, "the serve config",
                              {"listen", "tokens", "handler_threads", "limits"});
      if (const YAML::Node n = (*root)["listen"])
        config.listen = yaml::NonEmptyString(ctx, n, "listen");
      if (const YAML::Node n = (*root)["tokens"]) {
        if (auto path = yaml::NonEmptyString(ctx, n, "tokens")) {
          std::filesystem::path p(*path);
          if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
          config.tokens_file = p.lexically_normal().string();
        }
      }
      if (const YAML::Node n = (*root)["handler_threads"]) {
        if (auto v = yaml::Unsigned(ctx, n, "handler_threads", 1, 256))
          config.http.handler_threads = *v;
      }
      if (const YAML::Node limits = (*root)["limits"]) {
        YamlContext lc{problems, "limits", nullptr};
        if (!limits.IsMap()) {
          lc.Add(limits, "expected a map, found " + DescribeYamlNode(limits));
        } else {
          yaml::RefuseUnknownKeys(lc, limits, "limits",
                                  {"header_bytes", "body_bytes", "request_timeout", "idle_timeout",
                                   "write_timeout", "connections", "requests_in_flight"});
          HttpLimits& l = config.http.limits;
          auto bytes = [&](const char* key, size_t* out, uint64_t min, uint64_t max) {
            if (const YAML::Node n = limits[key]) {
              if (auto v = yaml::Unsigned(lc, n, key, min, max)) *out = *v;
            }
          };
          auto duration = [&](const char* key, std::chrono::milliseconds* out) {
            if (const YAML::Node n = limits[key]) {
              if (auto v = yaml::DurationMs(lc, n, key, kTimeoutMsMax)) {
                *out = std::chrono::milliseconds(*v);
              }
            }
          };
          bytes("header_bytes", &l.header_bytes_max, 1024, 1 << 20);
          bytes("body_bytes", &l.body_bytes_max, 1024, 64 << 20);
          bytes("connections", &l.connections_max, 1, 100'000);
          bytes("requests_in_flight", &l.requests_in_flight_max, 1, 1'000'000);
          duration("request_timeout", &l.request_timeout);
          duration("idle_timeout", &l.idle_timeout);
          duration("write_timeout", &l.write_timeout);
        }
      }
    }
  }
  if (!problems.empty()) return problems.ToStatus();
  return config;
}

Result<ServeConfig> LoadServeConfigFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, "serve config", kConfigBytesMax));
  return LoadServeConfig(text, path, std::filesystem::path(path).parent_path().string());
}

}  // namespace cairn::serve
