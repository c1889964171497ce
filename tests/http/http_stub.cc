#include "tests/http/http_stub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>
#include <thread>

namespace cairn::testing {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 &&
               hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// A self-signed certificate (EC P-256, SHA-256) valid for a day, for `host_names`,
// "localhost" and 127.0.0.1; marked CA so clients can trust it as its own anchor.
struct Certificate {
  std::string cert_pem;
  std::string key_pem;
};

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

bool AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(size));
}

Result<Certificate> MakeSelfSignedCertificate(const std::vector<std::string>& host_names) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  if (!key || !cert) return Status::Internal("stub: cannot generate a key");
  X509_set_version(cert.get(), 2);
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> serial(BN_new());
  BN_rand(serial.get(), 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24L * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("cairn test stub"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string alt_names = "DNS:localhost,IP:127.0.0.1";
  for (const std::string& host : host_names) alt_names += ",DNS:" + host;
  bool ok = AddExtension(cert.get(), NID_basic_constraints, "critical,CA:TRUE") &&
            AddExtension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign") &&
            AddExtension(cert.get(), NID_ext_key_usage, "serverAuth") &&
            AddExtension(cert.get(), NID_subject_key_identifier, "hash") &&
            AddExtension(cert.get(), NID_subject_alt_name, alt_names);
  if (!ok) return Status::Internal("stub: cannot add certificate extensions (" + alt_names + ")");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return Status::Internal("stub: cannot sign the certificate");
  }
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1) {
    return Status::Internal("stub: cannot write PEM");
  }
  return Certificate{BioText(cert_bio.get()), BioText(key_bio.get())};
}

}  // namespace

std::string StubRequest::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? "" : it->second;
}

std::string StubRequest::QueryParam(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq)) != name) continue;
    return eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
  }
  return "";
}

StubResponse StubResponse::Json(int status, const cairn::Json& body) {
  StubResponse response;
  response.status = status;
  response.body = DumpJson(body);
  response.headers.emplace_back("Content-Type", "application/json");
  return response;
}

StubResponse StubResponse::Text(int status, std::string body, std::string content_type) {
  StubResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers.emplace_back("Content-Type", std::move(content_type));
  return response;
}

StubResponse StubResponse::Bare(int status) {
  StubResponse response;
  response.status = status;
  return response;
}

StubResponse StubResponse::Close() {
  StubResponse response;
  response.action = Action::kClose;
  return response;
}

StubResponse StubResponse::Hang() {
  StubResponse response;
  response.action = Action::kHang;
  return response;
}

StubResponse StubResponse::Truncate(int status, std::string body, std::string content_type) {
  StubResponse response = Text(status, std::move(body), std::move(content_type));
  response.action = Action::kTruncate;
  return response;
}

// ---------------------------------------------------------------------------------------

class StubServer::Impl {
 public:
  explicit Impl(StubServerOptions options) : options_(std::move(options)) {}

  Status Open();
  void Stop();
  // On the server thread: records the request and picks the response.
  StubResponse Dispatch(const StubRequest& request);

  struct Route {
    std::string method;  // upper case, or "*"
    std::string path;
    bool prefix = false;
    StubHandler handler;
  };

  const StubServerOptions options_;
  net::io_context io_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_{io_};
  std::optional<ssl::context> tls_;
  std::string cert_pem_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::once_flag stop_once_;

  mutable std::mutex mu_;
  std::vector<Route> routes_;
  std::vector<StubRequest> requests_;
  std::map<std::string, size_t> counts_;  // "METHOD path" -> requests served
  size_t connections_accepted_ = 0;

  // Server thread only.
  class Connection;
  std::vector<std::weak_ptr<Connection>> connections_;
  bool stopping_ = false;

  void Accept();
};

class StubServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl* server, tcp::socket socket)
      : server_(server), timer_(server->io_), socket_(std::move(socket)) {}

  void Start() {
    if (!server_->tls_) return ReadRequest();
    tls_.emplace(std::move(*socket_), *server_->tls_);
    socket_.reset();
    tls_->async_handshake(ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
      if (ec) return self->Close();
      self->ReadRequest();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    error_code ignored;
    if (tls_) tls_->next_layer().close(ignored);
    if (socket_) socket_->close(ignored);
  }

 private:
  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*socket_);
    }
  }

  void ReadRequest() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(64 << 10);
    parser_->body_limit(server_->options_.request_body_bytes_max);
    WithStream([&](auto& stream) {
      bhttp::async_read(
          stream, buffer_, *parser_,
          [self = shared_from_this()](error_code ec, size_t) { self->OnRequest(ec); });
    });
  }

  void OnRequest(error_code ec) {
    if (closed_) return;
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      return Act(StubResponse::Text(413, "request body too large"));
    }
    if (ec) return Close();
    auto& message = parser_->get();
    StubRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    for (const auto& field : message.base()) {
      std::string name = Lower(std::string(field.name_string()));
      auto [it, inserted] = request.headers.emplace(name, std::string(field.value()));
      if (!inserted) it->second += ", " + std::string(field.value());
    }
    request.body = std::move(message.body());
    request.tls = tls_.has_value();
    keep_alive_ = message.keep_alive();
    StubResponse response = server_->Dispatch(request);
    if (response.delay.count() > 0 && response.action != StubResponse::Action::kHang) {
      timer_.expires_after(response.delay);
      timer_.async_wait([self = shared_from_this(), response = std::move(response)](error_code ec) {
        if (ec || self->closed_) return;
        self->Act(response);
      });
      return;
    }
    Act(response);
  }

  void Act(const StubResponse& response) {
    switch (response.action) {
      case StubResponse::Action::kClose:
        return Close();
      case StubResponse::Action::kHang:
        // Wait for the client to give up (or Stop); whatever arrives ends the connection.
        return WithStream([&](auto& stream) {
          stream.async_read_some(net::buffer(scratch_), [self = shared_from_this()](
                                                            error_code, size_t) { self->Close(); });
        });
      case StubResponse::Action::kTruncate:
        raw_ = "HTTP/1.1 " + std::to_string(response.status) + " Truncated\r\n";
        for (const auto& [name, value] : response.headers) {
          raw_.append(name).append(": ").append(value).append("\r\n");
        }
        raw_ += "Content-Length: " + std::to_string(response.body.size()) + "\r\n\r\n";
        raw_ += response.body.substr(0, response.body.size() / 2);
        return WithStream([&](auto& stream) {
          net::async_write(stream, net::buffer(raw_),
                           [self = shared_from_this()](error_code, size_t) { self->Close(); });
        });
      case StubResponse::Action::kRespond:
        break;
    }
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(response.status));
    for (const auto& [name, value] : response.headers) response_.insert(name, value);
    response_.body() = response.body;
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    if (response.status == 204 || response.status == 304 ||
        (response.status >= 100 && response.status < 200)) {
      response_.content_length(boost::none);
    } else if (response.chunked) {
      response_.chunked(true);
    } else {
      response_.content_length(response.body.size());
    }
    WithStream([&](auto& stream) {
      bhttp::async_write(stream, response_, [self = shared_from_this()](error_code ec, size_t) {
        if (ec || !self->keep_alive_) return self->Close();
        self->ReadRequest();
      });
    });
  }

  Impl* const server_;
  net::steady_timer timer_;
  std::optional<tcp::socket> socket_;
  std::optional<ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  std::string raw_;
  char scratch_[256];
  bool keep_alive_ = false;
  bool closed_ = false;
};

Status StubServer::Impl::Open() {
  if (options_.tls) {
    CAIRN_ASSIGN_OR_RETURN(Certificate certificate,
                           MakeSelfSignedCertificate(options_.tls_host_names));
    cert_pem_ = certificate.cert_pem;
    error_code ec;
    tls_.emplace(ssl::context::tls_server);
    tls_->use_certificate_chain(net::buffer(certificate.cert_pem), ec);
    if (!ec) tls_->use_private_key(net::buffer(certificate.key_pem), ssl::context::pem, ec);
    if (ec) return Status::Internal("stub: cannot load the certificate: " + ec.message());
  }
  error_code ec;
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::Unavailable("stub: cannot listen on 127.0.0.1:0: " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  work_.emplace(io_.get_executor());
  Accept();
  thread_ = std::thread([this] { io_.run(); });
  return Status::Ok();
}

void StubServer::Impl::Accept() {
  acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
    if (stopping_ || !acceptor_.is_open()) return;
    if (!ec) {
      {
        std::lock_guard lock(mu_);
        ++connections_accepted_;
      }
      auto connection = std::make_shared<Connection>(this, std::move(socket));
      std::erase_if(connections_, [](const auto& weak) { return weak.expired(); });
      connections_.push_back(connection);
      connection->Start();
    }
    Accept();
  });
}

void StubServer::Impl::Stop() {
  std::call_once(stop_once_, [this] {
    if (!thread_.joinable()) return;
    net::post(io_, [this] {
      stopping_ = true;
      error_code ignored;
      acceptor_.close(ignored);
      for (auto& weak : connections_) {
        if (auto connection = weak.lock()) connection->Close();
      }
      connections_.clear();
    });
    work_.reset();
    thread_.join();
  });
}

StubResponse StubServer::Impl::Dispatch(const StubRequest& request) {
  StubHandler handler;
  {
    std::lock_guard lock(mu_);
    std::string method = Upper(request.method);
    auto method_matches = [&](const Route& route) {
      return route.method == "*" || route.method == method;
    };
    const Route* best = nullptr;
    for (const Route& route : routes_) {
      if (!route.prefix && method_matches(route) && route.path == request.path) {
        best = &route;
        break;
      }
    }
    for (const Route& route : routes_) {
      if (best != nullptr && !best->prefix) break;
      if (route.prefix && method_matches(route) &&
          request.path.compare(0, route.path.size(), route.path) == 0 &&
          (best == nullptr || route.path.size() > best->path.size())) {
        best = &route;
      }
    }
    requests_.push_back(request);
    if (best != nullptr) {
      ++counts_[best->method + " " + best->path];
      handler = best->handler;
    }
  }
  if (!handler)
    return StubResponse::Text(404, "no route for " + request.method + " " + request.path);
  try {
    return handler(request);
  } catch (const std::exception& e) {
    return StubResponse::Text(500, std::string("stub handler threw: ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------

Result<std::unique_ptr<StubServer>> StubServer::Start(StubServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  CAIRN_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<StubServer>(new StubServer(std::move(impl)));
}

StubServer::StubServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StubServer::~StubServer() { Stop(); }

uint16_t StubServer::port() const { return impl_->port_; }

std::string StubServer::BaseUrl() const {
  return std::string(impl_->tls_ ? "https" : "http") + "://" + Address();
}

std::string StubServer::Address() const { return "127.0.0.1:" + std::to_string(impl_->port_); }

const std::string& StubServer::CertificatePem() const { return impl_->cert_pem_; }

void StubServer::Route(std::string method, std::string path, StubHandler handler) {
  std::lock_guard lock(impl_->mu_);
  method = method == "*" ? method : Upper(method);
  std::erase_if(impl_->routes_, [&](const Impl::Route& route) {
    return !route.prefix && route.method == method && route.path == path;
  });
  impl_->routes_.push_back({std::move(method), std::move(path), false, std::move(handler)});
}

void StubServer::RoutePrefix(std::string method, std::string prefix, StubHandler handler) {
  std::lock_guard lock(impl_->mu_);
  method = method == "*" ? method : Upper(method);
  std::erase_if(impl_->routes_, [&](const Impl::Route& route) {
    return route.prefix && route.method == method && route.path == prefix;
  });
  impl_->routes_.push_back({std::move(method), std::move(prefix), true, std::move(handler)});
}

std::vector<StubRequest> StubServer::Requests() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->requests_;
}

size_t StubServer::RequestCount() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->requests_.size();
}

size_t StubServer::Count(std::string_view method, std::string_view path_or_prefix) const {
  std::lock_guard lock(impl_->mu_);
  std::string key =
      (method == "*" ? std::string(method) : Upper(method)) + " " + std::string(path_or_prefix);
  auto it = impl_->counts_.find(key);
  return it == impl_->counts_.end() ? 0 : it->second;
}

size_t StubServer::ConnectionCount() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->connections_accepted_;
}

void StubServer::ClearRequests() {
  std::lock_guard lock(impl_->mu_);
  impl_->requests_.clear();
  impl_->counts_.clear();
}

void StubServer::Stop() { impl_->Stop(); }

// ---------------------------------------------------------------------------------------

RefusingPort::RefusingPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return;
  }
  port_ = ntohs(address.sin_port);
}

RefusingPort::~RefusingPort() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace cairn::testing
