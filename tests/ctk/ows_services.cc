#include "tests/ctk/ows_services.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string_view>
#include <utility>

namespace cairn::ctk {
namespace {

using testing::StubRequest;
using testing::StubResponse;

constexpr std::string_view kPetstore = "petstore.swagger.io";
constexpr std::string_view kHttpbin = "httpbin.org";

// The Host header without a port, lower case.
std::string RequestHost(const StubRequest& request) {
  std::string host = request.Header("host");
  if (size_t colon = host.rfind(':'); colon != std::string::npos && host.front() != '[') {
    host.resize(colon);
  }
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

// The petstore's error body, as the real one sends it.
StubResponse PetstoreError(int status, std::string message) {
  return StubResponse::Json(status, {{"code", status}, {"type", "error"}, {"message", message}});
}

StubResponse WrongHost(const StubRequest& request) {
  return StubResponse::Text(404, "no such route on host '" + RequestHost(request) + "'");
}

// Four pets, as the public petstore's sample data has them.
Json Pets() {
  auto pet = [](int id, std::string name, std::string category, std::string status) {
    return Json{{"id", id},
                {"category", {{"id", 1}, {"name", std::move(category)}}},
                {"name", std::move(name)},
                {"photoUrls", Json::array({"https://example.invalid/" + std::to_string(id)})},
                {"tags", Json::array({{{"id", 1}, {"name", "ctk"}}})},
                {"status", std::move(status)}};
  };
  return Json::array({pet(1, "doggie", "dogs", "available"), pet(2, "milou", "dogs", "available"),
                      pet(3, "garfield", "cats", "pending"), pet(4, "nemo", "fish", "sold")});
}

StubResponse FindByStatus(const StubRequest& request) {
  if (RequestHost(request) != kPetstore) return WrongHost(request);
  std::string wanted = request.QueryParam("status");
  if (wanted.empty()) return PetstoreError(400, "Invalid status value");
  Json found = Json::array();
  for (const Json& pet : Pets()) {
    std::string_view rest = wanted;
    while (!rest.empty()) {
      std::string_view one = rest.substr(0, rest.find(','));
      if (pet["status"] == one) found.push_back(pet);
      rest.remove_prefix(std::min(rest.size(), one.size() + 1));
    }
  }
  return StubResponse::Json(200, found);
}

// GET /v2/pet/{id}; anything under /v2/pet/ that is not a pet id is not found.
StubResponse PetById(const StubRequest& request) {
  if (RequestHost(request) != kPetstore) return WrongHost(request);
  std::string id = PercentDecode(std::string_view(request.path).substr(8));  // "/v2/pet/"
  for (const Json& pet : Pets()) {
    if (std::to_string(pet["id"].get<int>()) == id) return StubResponse::Json(200, pet);
  }
  bool numeric = !id.empty() && id.find_first_not_of("0123456789") == std::string::npos;
  return numeric ? PetstoreError(404, "Pet not found")
                 : PetstoreError(404, "java.lang.NumberFormatException: For input string: \"" +
                                          id.substr(0, id.find('/')) + "\"");
}

// httpbin: /basic-auth/{user}/{password}.
StubResponse BasicAuth(const StubRequest& request) {
  if (RequestHost(request) != kHttpbin) return WrongHost(request);
  if (request.method != "GET") return StubResponse::Bare(405);
  std::string_view rest = std::string_view(request.path).substr(12);  // "/basic-auth/"
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return StubResponse::Text(404, "Not Found");
  std::string user = PercentDecode(rest.substr(0, slash));
  std::string password = PercentDecode(rest.substr(slash + 1));
  if (request.Header("authorization") != "Basic " + Base64(user + ":" + password)) {
    return StubResponse::Bare(401).WithHeader("WWW-Authenticate", "Basic realm=\"Fake Realm\"");
  }
  return StubResponse::Json(200, {{"authenticated", true}, {"user", user}});
}

}  // namespace

const std::vector<std::string>& OwsServices::Hosts() {
  static const std::vector<std::string> hosts = {std::string(kPetstore), std::string(kHttpbin)};
  return hosts;
}

Result<std::unique_ptr<OwsServices>> OwsServices::Start() {
  testing::StubServerOptions options;
  options.tls = true;
  options.tls_host_names = Hosts();
  Result<std::unique_ptr<testing::StubServer>> server = testing::StubServer::Start(options);
  if (!server.ok()) return server.status();
  (*server)->Route("GET", "/v2/pet/findByStatus", FindByStatus);
  (*server)->RoutePrefix("GET", "/v2/pet/", PetById);
  (*server)->RoutePrefix("*", "/basic-auth/", BasicAuth);
  return std::unique_ptr<OwsServices>(new OwsServices(std::move(*server)));
}

std::map<std::string, std::string> OwsServices::ConnectOverrides() const {
  std::map<std::string, std::string> overrides;
  for (const std::string& host : Hosts()) overrides[host + ":443"] = server_->Address();
  return overrides;
}

}  // namespace cairn::ctk
