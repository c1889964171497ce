#include "engine/http/http_executor.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/http/http_call.h"

namespace cairn::engine::http {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

struct HttpExecutor::Shared {
  Shared(net::any_io_executor executor_in, HttpOptions options_in)
      : executor(std::move(executor_in)), options(std::move(options_in)) {}

  // Removes a finished call; wakes Shutdown() when none is left.
  void Unregister(uint64_t id) {
    std::lock_guard lock(mu);
    active.erase(id);
    if (active.empty()) idle.notify_all();
  }

  const net::any_io_executor executor;
  const HttpOptions options;
  ssl::context tls{ssl::context::tls_client};  // configured in Create, then only read

  std::mutex mu;
  std::condition_variable idle;
  bool shutting_down = false;
  uint64_t next_id = 0;
  // Calls in flight: id -> a function that asks the call to end ("shutting down").
  std::unordered_map<uint64_t, std::function<void()>> active;
};

namespace {

ToolResponse ShuttingDown() {
  return ToolResponse::Failed(error_type::kCommunication, 503, "HTTP executor shutting down",
                              "the call was abandoned because the engine is shutting down");
}

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

// One call: its own strand, timers, resolver and connection. Every member is touched only
// on the strand. Kept alive by the handlers that reference it; it never touches the
// HttpExecutor itself, only the Shared state it holds a reference to.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpExecutor::Shared> shared, uint64_t id, ToolRequest request,
          ToolCallback done, Result<HttpCall> call)
      : shared_(std::move(shared)),
        id_(id),
        request_(std::move(request)),
        done_(std::move(done)),
        strand_(net::make_strand(shared_->executor)),
        resolver_(strand_),
        deadline_(strand_),
        connect_timer_(strand_) {
    if (call.ok()) {
      call_ = std::move(call).value();
    } else {
      initial_error_ = ToolResponse::Failed(error_type::kConfiguration, 400, "Invalid HTTP call",
                                            call.status().message());
    }
  }

  void Start() {
    net::post(strand_, [self = shared_from_this()] { self->Run(); });
  }
  void Cancel() {
    net::post(strand_, [self = shared_from_this()] { self->Finish(ShuttingDown()); });
  }

 private:
  enum class Phase : uint8_t { kResolving, kConnecting, kHandshaking, kSending, kReading };

  static const char* PhaseName(Phase phase) {
    switch (phase) {
      case Phase::kResolving:
        return "resolving the host";
      case Phase::kConnecting:
        return "connecting";
      case Phase::kHandshaking:
        return "in the TLS handshake";
      case Phase::kSending:
        return "sending the request";
      case Phase::kReading:
        return "reading the response";
    }
    return "?";
  }

  bool Stale(uint32_t hop) const { return finished_ || hop != hop_; }

  void Run() {
    if (finished_) return;  // cancelled before it started
    if (initial_error_) return Finish(std::move(*initial_error_));
    // Clamped: a huge timeout must not overflow the clock's time_point.
    deadline_.expires_after(std::clamp<std::chrono::milliseconds>(
        request_.timeout, std::chrono::milliseconds(0), std::chrono::hours(24 * 365)));
    deadline_.async_wait([self = shared_from_this()](error_code ec) { self->OnDeadline(ec); });
    StartHop();
  }

  // Resolves and connects to call_.uri (or its override).
  void StartHop() {
    uint32_t hop = ++hop_;
    std::string host = call_.uri.host;
    std::string port = std::to_string(call_.uri.port);
    auto override_it = shared_->options.connect_overrides.find(host + ":" + port);
    if (override_it != shared_->options.connect_overrides.end()) {
      const std::string& target = override_it->second;
      size_t colon = target.rfind(':');
      host = target.substr(0, colon);
      port = colon == std::string::npos ? port : target.substr(colon + 1);
      if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    }
    connect_target_ = host + ":" + port;
    phase_ = Phase::kResolving;
    connect_timer_.expires_after(shared_->options.connect_timeout);
    connect_timer_.async_wait(
        [self = shared_from_this(), hop](error_code ec) { self->OnConnectTimeout(ec, hop); });
    resolver_.async_resolve(host, port, tcp::resolver::numeric_service,
                            [self = shared_from_this(), hop](
                                error_code ec, const tcp::resolver::results_type& results) {
                              self->OnResolved(ec, results, hop);
                            });
  }

  void OnResolved(error_code ec, const tcp::resolver::results_type& results, uint32_t hop) {
    if (Stale(hop)) return;
    if (ec) return FailConnect("cannot resolve " + connect_target_ + ": " + ec.message());
    phase_ = Phase::kConnecting;
    socket_.reset();
    tls_.reset();
    tcp::socket* lowest = nullptr;
    if (call_.uri.tls()) {
      try {
        tls_.emplace(strand_, shared_->tls);
      } catch (const std::exception& e) {
        return FailConnect(std::string("cannot create a TLS session: ") + e.what());
      }
      if (std::string error = ConfigureTls(); !error.empty()) return FailConnect(error);
      lowest = &tls_->next_layer();
    } else {
      lowest = &socket_.emplace(strand_);
    }
    net::async_connect(*lowest, results,
                       [self = shared_from_this(), hop](error_code ec, const tcp::endpoint&) {
                         self->OnConnected(ec, hop);
                       });
  }

  // SNI and host name verification for call_.uri.host (not the override: the server is
  // expected to present the original host's certificate). "" or what went wrong.
  std::string ConfigureTls() {
    SSL* ssl = tls_->native_handle();
    const std::string& host = call_.uri.host;
    error_code ec;
    net::ip::make_address(host, ec);
    bool is_ip = !ec;
    if (!is_ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
      return "cannot set the TLS server name (SNI) to " + host;
    }
    if (!shared_->options.verify_peer) return "";
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                   : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    if (ok != 1) return "cannot set up certificate host name verification for " + host;
    return "";
  }

  void OnConnected(error_code ec, uint32_t hop) {
    if (Stale(hop)) return;
    if (ec) return FailConnect("cannot connect to " + connect_target_ + ": " + ec.message());
    if (!tls_) return SendRequest(hop);
    phase_ = Phase::kHandshaking;
    tls_->async_handshake(
        ssl::stream_base::client,
        [self = shared_from_this(), hop](error_code ec) { self->OnHandshake(ec, hop); });
  }

  void OnHandshake(error_code ec, uint32_t hop) {
    if (Stale(hop)) return;
    if (ec) {
      std::string cause = ec.message();
      long verify = SSL_get_verify_result(tls_->native_handle());  // NOLINT(runtime/int)
      if (verify != X509_V_OK) cause += ": " + std::string(X509_verify_cert_error_string(verify));
      return FailConnect("TLS handshake with " + call_.uri.host + " (" + connect_target_ +
                         ") failed: " + cause);
    }
    SendRequest(hop);
  }

  void SendRequest(uint32_t hop) {
    connect_timer_.cancel();
    phase_ = Phase::kSending;
    request_message_ = {};
    request_message_.version(11);
    request_message_.method_string(call_.method);
    request_message_.target(call_.uri.Target());
    std::optional<std::string_view> host = FindHeader(call_.headers, "host");
    request_message_.set(bhttp::field::host, host ? std::string(*host) : call_.uri.Authority());
    for (const HttpHeader& header : call_.headers) {
      if (beast::iequals(header.name, "host")) continue;
      request_message_.insert(header.name, header.value);
    }
    request_message_.keep_alive(false);
    if (call_.body) request_message_.body() = *call_.body;
    request_message_.prepare_payload();
    WithStream([&](auto& stream) {
      bhttp::async_write(
          stream, request_message_,
          [self = shared_from_this(), hop](error_code ec, size_t) { self->OnWritten(ec, hop); });
    });
  }

  void OnWritten(error_code ec, uint32_t hop) {
    if (Stale(hop)) return;
    if (ec) {
      return FailResponse("Sending the HTTP request failed",
                          "the connection to " + connect_target_ + " failed: " + ec.message());
    }
    phase_ = Phase::kReading;
    buffer_.clear();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(shared_->options.response_header_bytes_max, UINT32_MAX)));
    parser_->body_limit(shared_->options.response_body_bytes_max);
    if (call_.method == "HEAD") parser_->skip(true);
    // The header first: Beast 1.74 loses the body_limit error for a Content-Length over
    // the limit when http::async_read (eager) gets the header and body in one buffer.
    WithStream([&](auto& stream) {
      bhttp::async_read_header(
          stream, buffer_, *parser_,
          [self = shared_from_this(), hop](error_code ec, size_t) { self->OnHeader(ec, hop); });
    });
  }

  void OnHeader(error_code ec, uint32_t hop) {
    if (Stale(hop)) return;
    if (ec) return FailRead(ec);
    if (auto length = parser_->content_length();
        length && *length > shared_->options.response_body_bytes_max) {
      return FailRead(bhttp::error::body_limit);
    }
    WithStream([&](auto& stream) {
      bhttp::async_read(
          stream, buffer_, *parser_,
          [self = shared_from_this(), hop](error_code ec, size_t) { self->OnRead(ec, hop); });
    });
  }

  void OnRead(error_code ec, uint32_t hop) {
    if (Stale(hop)) return;
    if (ec) return FailRead(ec);
    auto& message = parser_->get();
    HttpResponseData response;
    response.status = static_cast<int>(message.result_int());
    response.reason = std::string(message.reason());
    if (response.reason.empty()) {
      response.reason = std::string(bhttp::obsolete_reason(message.result()));
      if (response.reason == "<unknown-status>") response.reason.clear();
    }
    for (const auto& field : message.base()) {
      response.headers.push_back({std::string(field.name_string()), std::string(field.value())});
    }
    response.body = std::move(message.body());
    if (call_.redirect && IsFollowableRedirect(response.status)) {
      if (auto location = FindHeader(response.headers, "location")) {
        return FollowRedirect(response.status, std::string(*location));
      }
    }
    Finish(InterpretResponse(call_, response));
  }

  void FollowRedirect(int status, const std::string& location) {
    std::string from = DescribeRequest(call_);
    if (redirects_ >= limits::http_redirects_max) {
      return FailResponse("Too many redirects", from + " returned " + std::to_string(status) +
                                                    " after " + std::to_string(redirects_) +
                                                    " redirects (the limit)");
    }
    if (Status applied = ApplyRedirect(call_, status, location); !applied.ok()) {
      return FailResponse("Invalid redirect",
                          from + " returned " + std::to_string(status) + ": " + applied.message());
    }
    ++redirects_;
    CloseConnection();
    StartHop();
  }

  void FailRead(error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return FailResponse("HTTP response too large",
                          "the body is larger than " +
                              std::to_string(shared_->options.response_body_bytes_max) +
                              " bytes (the limit)");
    }
    if (ec == bhttp::error::header_limit) {
      return FailResponse("HTTP response headers too large",
                          "the header is larger than " +
                              std::to_string(shared_->options.response_header_bytes_max) +
                              " bytes (the limit)");
    }
    bool closed = ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
                  ec == net::error::eof || ec == ssl::error::stream_truncated ||
                  ec == net::error::connection_reset;
    if (closed) {
      // end_of_stream: not one byte came back; otherwise something did, or may have.
      bool nothing =
          ec == bhttp::error::end_of_stream ||
          (ec != bhttp::error::partial_message && !parser_->got_some() && buffer_.size() == 0);
      if (nothing) {
        return FailResponse(
            "Connection closed before the response",
            "the server closed the connection without answering (" + ec.message() + ")");
      }
      return FailResponse("Connection closed mid-response",
                          "the server closed the connection before the response was "
                          "complete (" +
                              ec.message() + ")");
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
      return FailResponse("Malformed HTTP response", "cannot parse the response: " + ec.message());
    }
    FailResponse("Reading the HTTP response failed", ec.message());
  }

  void OnDeadline(error_code ec) {
    if (ec == net::error::operation_aborted || finished_) return;
    Finish(ToolResponse::TimedOut(DescribeRequest(call_) + ": no complete response within " +
                                  Millis(request_.timeout) + " (timed out " + PhaseName(phase_) +
                                  ")"));
  }

  void OnConnectTimeout(error_code ec, uint32_t hop) {
    if (ec == net::error::operation_aborted || Stale(hop)) return;
    if (phase_ == Phase::kSending || phase_ == Phase::kReading) return;
    FailConnect("no connection to " + connect_target_ + " within " +
                Millis(shared_->options.connect_timeout) + " (timed out " + PhaseName(phase_) +
                ")");
  }

  void FailConnect(const std::string& detail) {
    Finish(ToolResponse::Failed(error_type::kCommunication, 503, "Service unavailable",
                                DescribeRequest(call_) + ": " + detail));
  }
  void FailResponse(std::string title, const std::string& detail) {
    Finish(ToolResponse::Failed(error_type::kCommunication, 502, std::move(title),
                                DescribeRequest(call_) + ": " + detail));
  }

  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*socket_);
    }
  }

  void CloseConnection() {
    error_code ignored;
    if (tls_) tls_->next_layer().close(ignored);
    if (socket_) socket_->close(ignored);
  }

  // Delivers the one response of this call and releases everything it holds.
  void Finish(ToolResponse response) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    connect_timer_.cancel();
    resolver_.cancel();
    CloseConnection();
    if (response.status != ToolResponse::Status::kOk) {
      spdlog::debug("http: call {} ({}) failed: {} {}: {}", request_.task_path, id_,
                    response.error.status, response.error.title, response.error.detail);
    }
    ToolCallback done = std::move(done_);
    struct Unregister {
      HttpExecutor::Shared* shared;
      uint64_t id;
      ~Unregister() { shared->Unregister(id); }
    } unregister{shared_.get(), id_};
    done(std::move(response));
  }

  const std::shared_ptr<HttpExecutor::Shared> shared_;
  const uint64_t id_;
  const ToolRequest request_;
  ToolCallback done_;
  HttpCall call_;
  std::optional<ToolResponse> initial_error_;

  net::strand<net::any_io_executor> strand_;
  tcp::resolver resolver_;
  net::steady_timer deadline_;
  net::steady_timer connect_timer_;
  std::optional<tcp::socket> socket_;            // http
  std::optional<ssl::stream<tcp::socket>> tls_;  // https
  bhttp::request<bhttp::string_body> request_message_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;

  std::string connect_target_;  // "host:port" actually connected to, for messages
  Phase phase_ = Phase::kResolving;
  uint32_t hop_ = 0;  // bumped per connection; handlers of older hops are ignored
  uint32_t redirects_ = 0;
  bool finished_ = false;
};

Status ConfigureTlsContext(ssl::context& tls, const HttpOptions& options) {
  error_code ec;
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
  if (ec) return Status::Internal("TLS context options: " + ec.message());
  if (!options.verify_peer) {
    tls.set_verify_mode(ssl::verify_none, ec);
    if (ec) return Status::Internal("TLS verify mode: " + ec.message());
    return Status::Ok();
  }
  tls.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return Status::Internal("TLS verify mode: " + ec.message());
  if (options.use_system_ca_store) {
    tls.set_default_verify_paths(ec);
    if (ec) return Status::Internal("cannot load the system CA store: " + ec.message());
  }
  if (!options.extra_ca_pem.empty()) {
    tls.add_certificate_authority(net::buffer(options.extra_ca_pem), ec);
    if (ec) {
      return Status::InvalidArgument("HttpOptions.extra_ca_pem: not valid PEM certificates: " +
                                     ec.message());
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<HttpExecutor>> HttpExecutor::Create(net::any_io_executor executor,
                                                           HttpOptions options) {
  std::shared_ptr<Shared> shared;
  try {
    shared = std::make_shared<Shared>(std::move(executor), std::move(options));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot create a TLS context: ") + e.what());
  }
  CAIRN_RETURN_IF_ERROR(ConfigureTlsContext(shared->tls, shared->options));
  return std::unique_ptr<HttpExecutor>(new HttpExecutor(std::move(shared)));
}

HttpExecutor::HttpExecutor(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

HttpExecutor::~HttpExecutor() { Shutdown(); }

void HttpExecutor::Call(ToolRequest request, ToolCallback done) {
  Result<HttpCall> call = ParseHttpCall(
      request.arguments, HttpCallDefaults{request.idempotency_key, shared_->options.user_agent});
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->shutting_down) {
      net::post(shared_->executor, [done = std::move(done)] { done(ShuttingDown()); });
      return;
    }
    uint64_t id = shared_->next_id++;
    session = std::make_shared<Session>(shared_, id, std::move(request), std::move(done),
                                        std::move(call));
    shared_->active.emplace(id, [weak = std::weak_ptr<Session>(session)] {
      if (auto alive = weak.lock()) alive->Cancel();
    });
  }
  session->Start();
}

void HttpExecutor::Shutdown() {
  std::vector<std::function<void()>> cancels;
  {
    std::lock_guard lock(shared_->mu);
    shared_->shutting_down = true;
    for (auto& [id, cancel] : shared_->active) cancels.push_back(cancel);
  }
  for (auto& cancel : cancels) cancel();
  std::unique_lock lock(shared_->mu);
  shared_->idle.wait(lock, [&] { return shared_->active.empty(); });
}

size_t HttpExecutor::InFlight() const {
  std::lock_guard lock(shared_->mu);
  return shared_->active.size();
}

}  // namespace cairn::engine::http
