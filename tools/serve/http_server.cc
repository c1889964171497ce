#include "tools/serve/http_server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace cairn::serve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using net::ip::tcp;
using error_code = boost::system::error_code;

constexpr size_t kStreamQueuedBytesMax = 1 << 20;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string ReasonPhrase(int status) {
  return std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
}

// "a=1&b=x%20y" -> {a: 1, b: "x y"}; nullopt for a bad escape.
std::optional<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    out.emplace(std::move(*name), std::move(*value));
  }
  return out;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const std::string& HttpRequest::Header(const std::string& name) const {
  static const std::string kEmpty;
  auto it = headers.find(name);
  return it == headers.end() ? kEmpty : it->second;
}

std::optional<std::string> HttpRequest::Query(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

HttpResponse HttpResponse::Json(int status, const cairn::Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, cairn::Json::error_handler_t::replace);
  r.body.push_back('\n');
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  return Json(status, cairn::Json{{"error", {{"code", code}, {"message", message}}}});
}

HttpResponse HttpResponse::Text(int status, std::string body, std::string content_type) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

// ---------------------------------------------------------------------------------------

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        pool_(std::max<size_t>(options_.handler_threads, 1)),
        acceptor_(io_) {}

  Status Open();
  void Stop();

  class Connection;
  class Stream;

  HttpServerOptions options_;
  HttpHandler handler_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> connections_open_{0};
  std::atomic<uint64_t> connections_accepted_{0};
  std::atomic<uint64_t> connections_refused_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> requests_refused_{0};
  std::atomic<uint64_t> streams_open_{0};

  std::mutex mu_;
  std::condition_variable drained_;
  size_t in_flight_ = 0;                                       // mu_
  uint64_t next_connection_ = 0;                               // mu_
  std::map<uint64_t, std::weak_ptr<Connection>> connections_;  // mu_

  net::thread_pool pool_;
  net::io_context io_;  // after what connections touch in their destructors
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool stopped_ = false;

 private:
  void Accept();
};

// One server-sent event stream over a connection.
class HttpServer::Impl::Stream final : public EventStream,
                                       public std::enable_shared_from_this<Stream> {
 public:
  explicit Stream(std::shared_ptr<Connection> connection) : connection_(std::move(connection)) {}

  bool Send(std::string_view event, std::string_view id, std::string_view data) override {
    std::string frame;
    if (!event.empty()) frame.append("event: ").append(event).append("\n");
    if (!id.empty()) frame.append("id: ").append(id).append("\n");
    frame.append("data: ");
    for (char c : data) frame.push_back(c == '\n' || c == '\r' ? ' ' : c);
    frame.append("\n\n");
    return Queue(std::move(frame));
  }
  bool Comment(std::string_view text) override { return Queue(": " + std::string(text) + "\n\n"); }
  void End() override;
  bool ended() const override { return ended_.load(); }
  void OnEnd(std::function<void()> callback) override {
    std::unique_lock lock(mu_);
    if (ended_.load()) {
      lock.unlock();
      callback();
      return;
    }
    on_end_.push_back(std::move(callback));
  }

  // Marks the stream ended and runs the callbacks once.
  void Ended() {
    if (ended_.exchange(true)) return;
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mu_);
      callbacks.swap(on_end_);
    }
    for (auto& callback : callbacks) callback();
  }

  std::atomic<size_t> queued_bytes{0};

 private:
  bool Queue(std::string frame);

  std::shared_ptr<Connection> connection_;
  std::atomic<bool> ended_{false};
  std::mutex mu_;
  std::vector<std::function<void()>> on_end_;  // mu_
};

class HttpServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl* server, tcp::socket socket, uint64_t id, bool refuse)
      : server_(server), stream_(std::move(socket)), id_(id), refuse_(refuse) {
    error_code ec;
    const tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  ~Connection() {
    if (refuse_) return;
    server_->connections_open_.fetch_sub(1);
    std::lock_guard lock(server_->mu_);
    server_->connections_.erase(id_);
  }

  void Start() {
    if (refuse_) {
      server_->connections_refused_.fetch_add(1);
      keep_alive_ = false;
      return Write(HttpResponse::Error(503, "too_many_connections",
                                       "the server has reached its connection limit; retry later"));
    }
    ReadHeader(server_->options_.limits.request_timeout);
  }

  // From Stop (any thread): close when idle, or after the answer being prepared.
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->keep_alive_ = false;
      if (self->stream_state_) return self->stream_state_->End();
      if (self->state_ == State::kReading) self->Close();
    });
  }

  // Stream writes (on the strand).
  void StreamWrite(std::string frame) {
    if (closed_) return;
    frames_.push_back(std::move(frame));
    if (frames_.size() == 1) WriteNextFrame();
  }
  void StreamEnd() {
    if (closed_) return;
    ending_ = true;
    if (frames_.empty()) Close();
  }
  auto executor() { return stream_.get_executor(); }

 private:
  enum class State : uint8_t { kReading, kHandling, kWriting, kStreaming };

  void ReadHeader(std::chrono::milliseconds timeout) {
    if (closed_) return;
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options_.limits.header_bytes_max));
    parser_->body_limit(server_->options_.limits.body_bytes_max);
    stream_.expires_after(timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(error_code ec) {
    if (closed_) return;
    if (ec == bhttp::error::header_limit) {
      return Refuse(431, "headers_too_large",
                    "the request's headers pass " +
                        std::to_string(server_->options_.limits.header_bytes_max) + " bytes");
    }
    if (ec == bhttp::error::body_limit) {  // Content-Length alone passes the bound
      return Refuse(413, "payload_too_large",
                    "the request body passes " +
                        std::to_string(server_->options_.limits.body_bytes_max) + " bytes");
    }
    if (ec) return BadRead(ec);
    if (server_->stopping_.load()) keep_alive_ = false;
    auto length = parser_->content_length();
    if (length && *length > server_->options_.limits.body_bytes_max) {
      return Refuse(413, "payload_too_large",
                    "the request body of " + std::to_string(*length) + " bytes passes " +
                        std::to_string(server_->options_.limits.body_bytes_max));
    }
    if (parser_->is_done()) return OnRequest({});
    stream_.expires_after(server_->options_.limits.request_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](error_code ec, size_t) { self->OnRequest(ec); });
  }

  void BadRead(error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::bad_descriptor) {
      return Close();
    }
    Refuse(400, "malformed_request", "the request is not valid HTTP/1.1: " + ec.message());
  }

  void OnRequest(error_code ec) {
    if (closed_) return;
    if (ec == bhttp::error::body_limit) {
      return Refuse(413, "payload_too_large",
                    "the request body passes " +
                        std::to_string(server_->options_.limits.body_bytes_max) + " bytes");
    }
    if (ec) return BadRead(ec);
    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    const size_t question = request.target.find('?');
    auto path = PercentDecode(std::string_view(request.target).substr(0, question), false);
    std::optional<std::map<std::string, std::string>> query = std::map<std::string, std::string>();
    if (question != std::string::npos) {
      query = ParseQuery(std::string_view(request.target).substr(question + 1));
    }
    if (!path || !query || request.target.empty() || request.target[0] != '/') {
      return Refuse(400, "malformed_request",
                    "the request target is not a valid path (bad percent escape?)");
    }
    request.path = std::move(*path);
    request.query = std::move(*query);
    for (const auto& field : message.base()) {
      std::string name = Lower(std::string(field.name_string()));
      auto [it, inserted] = request.headers.emplace(name, std::string(field.value()));
      if (!inserted) it->second += ", " + std::string(field.value());
    }
    request.body = std::move(message.body());
    request.remote = remote_;
    keep_alive_ = keep_alive_ && message.keep_alive() && !server_->stopping_.load();
    {
      std::lock_guard lock(server_->mu_);
      if (server_->in_flight_ >= server_->options_.limits.requests_in_flight_max) {
        keep_alive_ = false;
        server_->requests_refused_.fetch_add(1);
        return Write(
            HttpResponse::Error(503, "overloaded", "too many requests in flight; retry later"));
      }
      ++server_->in_flight_;
    }
    server_->requests_.fetch_add(1);
    state_ = State::kHandling;
    stream_.expires_never();
    net::post(server_->pool_, [self = shared_from_this(), request = std::move(request)]() mutable {
      HttpResponse response;
      try {
        response = self->server_->handler_(request);
      } catch (const std::exception& e) {
        spdlog::error("http: {} {}: handler threw: {}", request.method, request.path, e.what());
        response = HttpResponse::Error(500, "internal", "the server failed to answer");
      } catch (...) {
        response = HttpResponse::Error(500, "internal", "the server failed to answer");
      }
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Answered(std::move(response));
      });
    });
  }

  void Answered(HttpResponse response) {
    {
      std::lock_guard lock(server_->mu_);
      --server_->in_flight_;
    }
    server_->drained_.notify_all();
    if (closed_) return;
    if (response.open) return OpenStream(std::move(response));
    Write(std::move(response));
  }

  void Refuse(int status, std::string_view code, const std::string& message) {
    server_->requests_refused_.fetch_add(1);
    keep_alive_ = false;
    Write(HttpResponse::Error(status, code, message));
  }

  void Write(HttpResponse response) {
    if (closed_) return;
    state_ = State::kWriting;
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(response.status));
    response_.set(bhttp::field::server, "cairn");
    response_.set(bhttp::field::content_type, response.content_type);
    response_.set(bhttp::field::cache_control, "no-store");
    for (const auto& [name, value] : response.headers) response_.set(name, value);
    response_.body() = std::move(response.body);
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    stream_.expires_after(server_->options_.limits.write_timeout);
    bhttp::async_write(stream_, response_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec || !self->keep_alive_) return self->Close();
      self->ReadHeader(self->server_->options_.limits.idle_timeout);
    });
  }

  void OpenStream(HttpResponse response) {
    state_ = State::kStreaming;
    keep_alive_ = false;
    std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " +
                       ReasonPhrase(response.status) +
                       "\r\nServer: cairn\r\nContent-Type: text/event-stream\r\n"
                       "Cache-Control: no-store\r\nConnection: close\r\nX-Accel-Buffering: no\r\n";
    for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
    head += "\r\n";
    stream_state_ = std::make_shared<Stream>(shared_from_this());
    server_->streams_open_.fetch_add(1);
    stream_state_->queued_bytes.fetch_add(head.size());
    frames_.push_back(std::move(head));
    WriteNextFrame();
    // A client of an event stream sends nothing more: whatever arrives (end of file
    // included) ends the stream.
    stream_.expires_never();
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](error_code, size_t) { self->Close(); });
    net::post(server_->pool_, [stream = stream_state_, open = std::move(response.open)] {
      try {
        open(stream);
      } catch (const std::exception& e) {
        spdlog::error("http: event stream: {}", e.what());
        stream->End();
      }
    });
  }

  void WriteNextFrame() {
    if (closed_ || frames_.empty()) return;
    stream_.expires_after(server_->options_.limits.write_timeout);
    net::async_write(stream_, net::buffer(frames_.front()),
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec) return self->Close();
                       if (self->stream_state_) {
                         self->stream_state_->queued_bytes.fetch_sub(self->frames_.front().size());
                       }
                       self->frames_.pop_front();
                       if (!self->frames_.empty()) return self->WriteNextFrame();
                       self->stream_.expires_never();
                       if (self->ending_) self->Close();
                     });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (stream_state_) {
      server_->streams_open_.fetch_sub(1);
      auto stream = std::move(stream_state_);
      stream->Ended();
    }
  }

  Impl* const server_;
  beast::tcp_stream stream_;
  const uint64_t id_;
  const bool refuse_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  State state_ = State::kReading;
  bool keep_alive_ = true;
  bool closed_ = false;
  bool ending_ = false;
  std::shared_ptr<Stream> stream_state_;
  std::deque<std::string> frames_;
  char scratch_[64];
};

bool HttpServer::Impl::Stream::Queue(std::string frame) {
  if (ended_.load()) return false;
  if (queued_bytes.fetch_add(frame.size()) + frame.size() > kStreamQueuedBytesMax) {
    End();  // the client does not keep up: end its stream rather than buffer without bound
    return false;
  }
  net::post(connection_->executor(),
            [connection = connection_, frame = std::move(frame)]() mutable {
              connection->StreamWrite(std::move(frame));
            });
  return true;
}

void HttpServer::Impl::Stream::End() {
  if (ended_.load()) return;
  net::post(connection_->executor(), [connection = connection_] { connection->StreamEnd(); });
  Ended();
}

Status HttpServer::Impl::Open() {
  error_code ec;
  const net::ip::address address = net::ip::make_address(options_.host, ec);
  if (ec) {
    return Status::InvalidArgument("listen address '" + options_.host +
                                   "' is not an IP address: " + ec.message());
  }
  const tcp::endpoint endpoint(address, options_.port);
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::Unavailable("cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  work_.emplace(io_.get_executor());
  Accept();
  for (size_t i = 0; i < std::max<size_t>(options_.io_threads, 1); ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
  return Status::Ok();
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](error_code ec, tcp::socket socket) {
    if (stopping_.load() || !acceptor_.is_open()) return;
    if (!ec) {
      connections_accepted_.fetch_add(1);
      const bool refuse = connections_open_.load() >= options_.limits.connections_max;
      uint64_t id = 0;
      if (!refuse) {
        connections_open_.fetch_add(1);
        std::lock_guard lock(mu_);
        id = ++next_connection_;
      }
      auto connection = std::make_shared<Connection>(this, std::move(socket), id, refuse);
      if (!refuse) {
        std::lock_guard lock(mu_);
        connections_.emplace(id, connection);
      }
      net::post(connection->executor(), [connection] { connection->Start(); });
    } else if (ec == net::error::no_descriptors) {
      spdlog::warn("http: accept: {}", ec.message());
    }
    Accept();
  });
}

void HttpServer::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  net::post(acceptor_.get_executor(), [this] {
    error_code ignored;
    acceptor_.close(ignored);
  });
  auto each_connection = [this](auto&& f) {
    std::vector<std::shared_ptr<Connection>> live;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, weak] : connections_) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) f(*c);
  };
  each_connection([](Connection& c) { c.Shutdown(); });
  {
    // Handlers already running finish, and their answers are written.
    std::unique_lock lock(mu_);
    drained_.wait_for(lock, options_.drain_timeout, [this] { return in_flight_ == 0; });
  }
  pool_.join();
  // Give the last answers a moment to leave, then close what is left.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (connections_open_.load() != 0 && std::chrono::steady_clock::now() < deadline) {
    each_connection([](Connection& c) { c.Shutdown(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  work_.reset();
  io_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      HttpHandler handler) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  CAIRN_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }
void HttpServer::Stop() { impl_->Stop(); }
uint16_t HttpServer::port() const { return impl_->port_; }
std::string HttpServer::address() const {
  return impl_->options_.host + ":" + std::to_string(impl_->port_);
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  s.connections_open = impl_->connections_open_.load();
  s.connections_accepted = impl_->connections_accepted_.load();
  s.connections_refused = impl_->connections_refused_.load();
  s.requests = impl_->requests_.load();
  s.requests_refused = impl_->requests_refused_.load();
  s.streams_open = impl_->streams_open_.load();
  return s;
}

}  // namespace cairn::serve
