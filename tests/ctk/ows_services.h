// The external services the CTK's features call, served on this machine.
//
// The features call https://petstore.swagger.io/v2/... and https://httpbin.org/basic-auth/
// {user}/{password}. OwsServices serves both from one loopback TLS StubServer whose
// certificate names those hosts; the engine is told to connect there instead
// (EngineOptions::http_connect_overrides, like curl --resolve) and to trust the
// certificate (extra_ca_pem). The definitions run unchanged: the request still names the
// real host (Host header, SNI, certificate check), so `request.uri` in a `response`
// output is the URI the feature wrote. Each handler answers only for its own host.
//
//   petstore.swagger.io  GET /v2/pet/{id}                 the pet, or 404
//                        GET /v2/pet/findByStatus?status=X the pets with that status
//                                                           (comma-separated list allowed)
//                        GET /v2/pet/anything-else         404, as the real one answers
//                                                           (e.g. getPetByName/{name})
//   httpbin.org          GET /basic-auth/{user}/{password} 200 {authenticated, user} with
//                        the matching Basic credentials, else 401 + WWW-Authenticate
//
// Lifecycle and threading: those of StubServer (Start, serve, Stop or destroy).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tests/http/http_stub.h"

namespace cairn::ctk {

class OwsServices {
 public:
  // Starts the TLS stub with every route. Errors: those of StubServer::Start.
  static Result<std::unique_ptr<OwsServices>> Start();

  // The hosts served, lower case: "petstore.swagger.io", "httpbin.org".
  static const std::vector<std::string>& Hosts();

  // "host:443" -> "127.0.0.1:PORT" for every served host.
  std::map<std::string, std::string> ConnectOverrides() const;
  // The stub's self-signed certificate, to trust.
  const std::string& CertificatePem() const { return server_->CertificatePem(); }
  // Every request received, for diagnostics.
  std::vector<testing::StubRequest> Requests() const { return server_->Requests(); }

 private:
  explicit OwsServices(std::unique_ptr<testing::StubServer> server) : server_(std::move(server)) {}
  std::unique_ptr<testing::StubServer> server_;
};

}  // namespace cairn::ctk
