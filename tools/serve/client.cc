#include "tools/serve/client.h"

#include <poll.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <utility>

namespace cairn::serve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr size_t kHeaderBytesMax = 64 * 1024;
// A non-JSON error answer (a proxy's page) is quoted up to this many bytes.
constexpr size_t kQuotedBytesMax = 200;

std::string_view ToStd(beast::string_view text) { return {text.data(), text.size()}; }

std::string DurationText(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// What went wrong on the connection, in words for the end of a sentence.
std::string Why(const error_code& ec) {
  if (ec == net::error::connection_refused) return "connection refused";
  if (ec == net::error::host_not_found || ec == net::error::host_not_found_try_again) {
    return "host not found";
  }
  if (ec == net::error::connection_reset) return "connection reset by the server";
  if (ec == net::error::eof || ec == bhttp::error::end_of_stream) {
    return "the server closed the connection";
  }
  std::string message = ec.message();
  if (!message.empty()) {
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  }
  return message;
}

bool ClosedConnection(const error_code& ec) {
  return ec == net::error::eof || ec == bhttp::error::end_of_stream ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == bhttp::error::partial_message;
}

// Runs `ioc` until `done` or `deadline`; true when `done`. The operation stays pending
// on a timeout (Abandon() ends it).
bool RunUntil(net::io_context& ioc, const bool& done, Clock::time_point deadline) {
  ioc.restart();
  while (!done) {
    if (ioc.run_one_until(deadline) == 0) break;
  }
  return done;
}

// Ends whatever is pending on `socket` (its handlers run, aborted) and closes it.
void Abandon(net::io_context& ioc, tcp::socket& socket) {
  error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  ioc.restart();
  ioc.run();
}

// True when the server has closed a kept-alive connection (or sent something unasked):
// it must not be reused.
bool PeerClosed(tcp::socket& socket) {
  pollfd p{socket.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

Status ConnectSocket(net::io_context& ioc, tcp::socket& socket, const ClientOptions& options) {
  const std::string& url = options.address.url;
  const Clock::time_point deadline = Clock::now() + options.connect_timeout;
  auto no_answer = [&] {
    return Status::Unavailable("cannot reach " + url + ": no connection within " +
                               DurationText(options.connect_timeout));
  };
  tcp::resolver resolver(ioc);
  bool done = false;
  error_code ec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(options.address.host, std::to_string(options.address.port),
                         tcp::resolver::numeric_service,
                         [&](const error_code& e, tcp::resolver::results_type results) {
                           ec = e;
                           endpoints = std::move(results);
                           done = true;
                         });
  if (!RunUntil(ioc, done, deadline)) {
    resolver.cancel();
    ioc.restart();
    ioc.run();
    return no_answer();
  }
  if (ec) return Status::Unavailable("cannot reach " + url + ": " + Why(ec));
  done = false;
  net::async_connect(socket, endpoints, [&](const error_code& e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  if (!RunUntil(ioc, done, deadline)) {
    Abandon(ioc, socket);
    return no_answer();
  }
  if (ec) {
    error_code ignored;
    socket.close(ignored);
    return Status::Unavailable("cannot reach " + url + ": " + Why(ec));
  }
  socket.set_option(tcp::no_delay(true), ec);
  return Status::Ok();
}

std::string HostHeader(const ServerAddress& address) {
  return address.url.substr(std::string_view("http://").size());
}

bhttp::request<bhttp::string_body> MakeRequest(const ClientOptions& options, bhttp::verb verb,
                                               std::string_view target, std::string body,
                                               std::string_view content_type) {
  bhttp::request<bhttp::string_body> request{verb, std::string(target), 11};
  request.set(bhttp::field::host, HostHeader(options.address));
  request.set(bhttp::field::user_agent, options.user_agent);
  if (!options.token.empty()) request.set(bhttp::field::authorization, "Bearer " + options.token);
  if (!body.empty()) request.set(bhttp::field::content_type, std::string(content_type));
  request.body() = std::move(body);
  request.keep_alive(true);
  request.prepare_payload();
  return request;
}

std::string StringMember(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The Status for an answer that is not 2xx (see client.h).
Status ErrorFromAnswer(const ClientOptions& options, int status, std::string_view reason,
                       const std::string& body) {
  const std::string& url = options.address.url;
  std::string code;
  std::string message;
  Result<Json> parsed = ParseJson(body, "the error answer", 1 << 20);
  if (parsed.ok() && parsed->is_object()) {
    auto error = parsed->find("error");
    if (error != parsed->end() && error->is_object()) {
      code = StringMember(*error, "code");
      message = StringMember(*error, "message");
    }
  }
  if (message.empty()) {
    // Not the cairn API answering (a proxy, another server): say what came back.
    message = url + " answered " + std::to_string(status) + " " + std::string(reason);
    std::string quoted = body.substr(0, std::min(body.find('\n'), kQuotedBytesMax));
    if (!quoted.empty()) message += ": " + quoted;
    code = code.empty() ? "not_cairn" : code;
  }
  switch (status) {
    case 400:
    case 405:
    case 413:
    case 422:
    case 431:
      return Status::InvalidArgument(message);
    case 401:
      return Status(
          StatusCode::kPermissionDenied,
          "unauthenticated: " + message +
              (options.token.empty() ? " (no token was given)"
                                     : " (the token from " +
                                           (options.token_source.empty() ? std::string("the client")
                                                                         : options.token_source) +
                                           ")"));
    case 403:
      return Status(StatusCode::kPermissionDenied, "forbidden: " + message);
    case 404:
      return Status::NotFound(message);
    case 409:
      return Status::FailedPrecondition(message);
    case 503:
      return Status::Unavailable(url + " is unavailable (" + code + "): " + message);
    case 504:
      return Status::DeadlineExceeded(message);
    default:
      return Status(StatusCode::kInternal,
                    url + " failed (" + std::to_string(status) + " " + code + "): " + message);
  }
}

}  // namespace

// ---- addresses ----

Result<ServerAddress> ParseServerAddress(std::string_view text) {
  const std::string shown(text.substr(0, 200));
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("'" + shown + "' is not a server address: " + why +
                                   " (expected http://HOST:PORT)");
  };
  const size_t separator = text.find("://");
  if (separator == std::string_view::npos) return bad("no http:// in front");
  std::string scheme(text.substr(0, separator));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "https") {
    return Status::InvalidArgument(
        "'" + shown +
        "': https is not supported: cairn speaks plain HTTP only (no TLS); reach a TLS "
        "server through a TLS-terminating proxy or tunnel that listens on "
        "http://127.0.0.1:PORT, and give that address");
  }
  if (scheme != "http") return bad("the scheme must be http, not '" + scheme + "'");
  std::string_view rest = text.substr(separator + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('@') != std::string_view::npos) {
    return bad("user info is not supported (the token comes from $CAIRN_TOKEN or --token-file)");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("a query or fragment is not supported");
  }
  if (rest.find('/') != std::string_view::npos) return bad("a path is not supported");
  ServerAddress address;
  std::string_view port_text;
  bool ipv6 = false;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("'[' without ']'");
    address.host = std::string(rest.substr(1, close - 1));
    ipv6 = true;
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("expected ':PORT' after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("no port after ':'");
    }
    if (address.host.empty() ||
        address.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      return bad("'" + address.host + "' is not an IPv6 address");
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.find(':') != colon) {
      return bad("an IPv6 address goes in brackets, as http://[::1]:8080");
    }
    address.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return bad("no port after ':'");
    }
    if (address.host.empty()) return bad("no host");
    for (char c : address.host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return bad("'" + address.host + "' is not a host name or address");
      }
    }
  }
  if (!port_text.empty()) {
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
      return bad("the port must be a number from 1 to 65535");
    }
    const unsigned long port = std::stoul(std::string(port_text));
    if (port == 0 || port > 65535) return bad("the port must be a number from 1 to 65535");
    address.port = static_cast<uint16_t>(port);
  }
  address.url = "http://" + (ipv6 ? "[" + address.host + "]" : address.host) + ":" +
                std::to_string(address.port);
  return address;
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// ---- Client ----

class Client::Impl {
 public:
  explicit Impl(ClientOptions options) : options_(std::move(options)), socket_(ioc_) {}
  ~Impl() { Close(); }

  Status Connect() {
    if (socket_.is_open()) return Status::Ok();
    buffer_.consume(buffer_.size());
    return ConnectSocket(ioc_, socket_, options_);
  }

  Result<Json> Call(std::string_view method, std::string_view target, std::string body,
                    std::string_view content_type);
  Result<std::unique_ptr<EventReader>> OpenEvents(std::string_view target);

  const ClientOptions& options() const { return options_; }

 private:
  struct Exchanged {
    error_code ec;
    bool written = false;
    bool timed_out = false;
    bhttp::response<bhttp::string_body> response;
  };
  Exchanged Exchange(const bhttp::request<bhttp::string_body>& request);
  void Close() {
    if (socket_.is_open()) Abandon(ioc_, socket_);
    buffer_.consume(buffer_.size());
  }

  ClientOptions options_;
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

Client::Impl::Exchanged Client::Impl::Exchange(const bhttp::request<bhttp::string_body>& request) {
  Exchanged out;
  const Clock::time_point deadline = Clock::now() + options_.response_timeout;
  bool done = false;
  bhttp::async_write(socket_, request, [&](const error_code& ec, size_t) {
    out.ec = ec;
    done = true;
  });
  // On a timeout the operation is ended here: its handler refers to this frame.
  if (!RunUntil(ioc_, done, deadline)) {
    Abandon(ioc_, socket_);
    out.timed_out = true;
    return out;
  }
  if (out.ec) return out;
  out.written = true;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(kHeaderBytesMax);
  parser.body_limit(options_.response_bytes_max);
  // The header first: Beast 1.74 does not hold a Content-Length to body_limit when the
  // body arrives in the same read as the header, so it is checked here.
  done = false;
  bhttp::async_read_header(socket_, buffer_, parser, [&](const error_code& ec, size_t) {
    out.ec = ec;
    done = true;
  });
  if (!RunUntil(ioc_, done, deadline)) {
    Abandon(ioc_, socket_);
    out.timed_out = true;
    return out;
  }
  if (out.ec) return out;
  if (parser.content_length() && *parser.content_length() > options_.response_bytes_max) {
    out.ec = bhttp::error::body_limit;
    return out;
  }
  done = false;
  bhttp::async_read(socket_, buffer_, parser, [&](const error_code& ec, size_t) {
    out.ec = ec;
    done = true;
  });
  if (!RunUntil(ioc_, done, deadline)) {
    Abandon(ioc_, socket_);
    out.timed_out = true;
    return out;
  }
  if (!out.ec) out.response = parser.release();
  return out;
}

Result<Json> Client::Impl::Call(std::string_view method, std::string_view target, std::string body,
                                std::string_view content_type) {
  const bhttp::verb verb = bhttp::string_to_verb(beast::string_view(method.data(), method.size()));
  if (verb == bhttp::verb::unknown || target.empty() || target.front() != '/') {
    return Status::InvalidArgument("bad request: " + std::string(method) + " " +
                                   std::string(target));
  }
  const bool idempotent =
      verb == bhttp::verb::get || verb == bhttp::verb::put || verb == bhttp::verb::delete_;
  const std::string& url = options_.address.url;
  for (int attempt = 0;; ++attempt) {
    bool reused = socket_.is_open();
    if (reused && PeerClosed(socket_)) {
      Close();
      reused = false;
    }
    CAIRN_RETURN_IF_ERROR(Connect());
    Exchanged answer = Exchange(MakeRequest(options_, verb, target, body, content_type));
    if (answer.timed_out) {
      Close();
      return Status::DeadlineExceeded(url + " did not answer " + std::string(method) + " " +
                                      std::string(target) + " within " +
                                      DurationText(options_.response_timeout));
    }
    if (answer.ec) {
      Close();
      // A kept-alive connection the server closed meanwhile: send again on a new one
      // when that cannot do the request twice.
      if (reused && attempt == 0 && ClosedConnection(answer.ec) &&
          (idempotent || !answer.written)) {
        continue;
      }
      if (answer.ec == bhttp::error::body_limit) {
        return Status::InvalidArgument("the answer from " + url + " is larger than " +
                                       std::to_string(options_.response_bytes_max) + " bytes");
      }
      return Status::Unavailable("connection to " + url + " lost" +
                                 (answer.written && !idempotent
                                      ? " before the answer (the request may have been done)"
                                      : "") +
                                 ": " + Why(answer.ec));
    }
    if (!answer.response.keep_alive()) Close();
    const int status = answer.response.result_int();
    std::string& text = answer.response.body();
    if (status < 200 || status > 299) {
      return ErrorFromAnswer(options_, status, ToStd(answer.response.reason()), text);
    }
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return Json(nullptr);
    return ParseJson(text, "the answer from " + url, options_.response_bytes_max);
  }
}

// ---- EventReader ----

class EventReader::Impl {
 public:
  explicit Impl(const ClientOptions& options) : options(options), socket(ioc) {}
  ~Impl() { Abandon(ioc, socket); }

  Result<std::optional<ServerSentEvent>> Next(milliseconds wait);
  std::optional<ServerSentEvent> Pop();
  void StartRead();

  ClientOptions options;
  net::io_context ioc;
  tcp::socket socket;
  beast::flat_buffer buffer;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  std::array<char, 16 * 1024> chunk{};
  std::string text;  // received, not yet cut into events
  bool reading = false;
  bool read_done = false;
  error_code read_ec;
  bool finished = false;  // the server ended the stream
};

void EventReader::Impl::StartRead() {
  parser->get().body().data = chunk.data();
  parser->get().body().size = chunk.size();
  reading = true;
  read_done = false;
  bhttp::async_read_some(socket, buffer, *parser, [this](const error_code& ec, size_t) {
    read_ec = ec;
    read_done = true;
  });
}

std::optional<ServerSentEvent> EventReader::Impl::Pop() {
  for (;;) {
    const size_t end = text.find("\n\n");
    if (end == std::string::npos) return std::nullopt;
    const std::string frame = text.substr(0, end);
    text.erase(0, end + 2);
    ServerSentEvent event;
    bool any = false;
    size_t start = 0;
    while (start <= frame.size()) {
      size_t stop = frame.find('\n', start);
      if (stop == std::string::npos) stop = frame.size();
      const std::string_view line(frame.data() + start, stop - start);
      start = stop + 1;
      if (line.empty() || line.front() == ':') continue;  // a comment (keep-alive)
      const size_t colon = line.find(':');
      const std::string_view field = line.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (field == "event") {
        event.event = std::string(value);
      } else if (field == "id") {
        event.id = std::string(value);
      } else if (field == "data") {
        if (any && !event.data.empty()) event.data.push_back('\n');
        event.data += std::string(value);
      } else {
        continue;
      }
      any = true;
    }
    if (any) return event;
  }
}

Result<std::optional<ServerSentEvent>> EventReader::Impl::Next(milliseconds wait) {
  const Clock::time_point deadline = Clock::now() + wait;
  for (;;) {
    if (auto event = Pop()) return event;
    if (finished) {
      text.clear();  // an unfinished last frame: the stream ended inside it
      return std::optional<ServerSentEvent>();
    }
    if (!reading) StartRead();
    if (!RunUntil(ioc, read_done, deadline)) return std::optional<ServerSentEvent>();
    reading = false;
    const size_t got = chunk.size() - parser->get().body().size;
    for (size_t i = 0; i < got; ++i) {
      if (chunk[i] != '\r') text.push_back(chunk[i]);  // CRLF and LF alike
    }
    if (text.size() > options.response_bytes_max) {
      finished = true;
      return Status::InvalidArgument("an event from " + options.address.url + " is larger than " +
                                     std::to_string(options.response_bytes_max) + " bytes");
    }
    error_code ec = read_ec;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec && !ClosedConnection(ec)) {
      finished = true;
      return Status::Unavailable("the event stream from " + options.address.url +
                                 " broke: " + Why(ec));
    }
    if (ec || parser->is_done()) finished = true;
  }
}

EventReader::EventReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventReader::~EventReader() = default;

Result<std::optional<ServerSentEvent>> EventReader::Next(milliseconds wait) {
  return impl_->Next(wait);
}

bool EventReader::ended() const { return impl_->finished && impl_->text.empty(); }

Result<std::unique_ptr<EventReader>> Client::Impl::OpenEvents(std::string_view target) {
  const std::string& url = options_.address.url;
  auto reader = std::make_unique<EventReader::Impl>(options_);
  CAIRN_RETURN_IF_ERROR(ConnectSocket(reader->ioc, reader->socket, options_));
  bhttp::request<bhttp::string_body> request =
      MakeRequest(options_, bhttp::verb::get, target, "", "");
  request.set(bhttp::field::accept, "text/event-stream");
  const Clock::time_point deadline = Clock::now() + options_.response_timeout;
  bool done = false;
  error_code ec;
  bhttp::async_write(reader->socket, request, [&](const error_code& e, size_t) {
    ec = e;
    done = true;
  });
  // On a timeout the pending operation is ended before this frame goes: its handler and
  // the parser it reads into live here.
  auto failed = [&](bool timed_out) -> Status {
    Abandon(reader->ioc, reader->socket);
    if (timed_out) {
      return Status::DeadlineExceeded(url + " did not answer GET " + std::string(target) +
                                      " within " + DurationText(options_.response_timeout));
    }
    return Status::Unavailable("connection to " + url + " lost: " + Why(ec));
  };
  if (!RunUntil(reader->ioc, done, deadline) || ec) return failed(!done);
  bhttp::response_parser<bhttp::empty_body> head;
  head.header_limit(kHeaderBytesMax);
  done = false;
  bhttp::async_read_header(reader->socket, reader->buffer, head, [&](const error_code& e, size_t) {
    ec = e;
    done = true;
  });
  if (!RunUntil(reader->ioc, done, deadline) || ec) return failed(!done);
  const int status = head.get().result_int();
  if (status != 200) {
    if (head.content_length() && *head.content_length() > options_.response_bytes_max) {
      Abandon(reader->ioc, reader->socket);
      return Status::InvalidArgument("the answer from " + url + " is larger than " +
                                     std::to_string(options_.response_bytes_max) + " bytes");
    }
    bhttp::response_parser<bhttp::string_body> whole(std::move(head));
    whole.body_limit(options_.response_bytes_max);
    done = false;
    bhttp::async_read(reader->socket, reader->buffer, whole, [&](const error_code& e, size_t) {
      ec = e;
      done = true;
    });
    if (!RunUntil(reader->ioc, done, deadline) || ec) return failed(!done);
    return ErrorFromAnswer(options_, status, ToStd(whole.get().reason()), whole.get().body());
  }
  reader->parser.emplace(std::move(head));
  reader->parser->body_limit(boost::none);
  return std::make_unique<EventReader>(std::move(reader));
}

Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  for (char c : options.token) {
    if (c < 0x21 || c > 0x7E) {
      return Status::InvalidArgument(
          "the token holds a space, a control or a non-ASCII character (a cairn token is "
          "printable ASCII)");
    }
  }
  return std::unique_ptr<Client>(new Client(std::make_unique<Impl>(std::move(options))));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Status Client::Connect() { return impl_->Connect(); }

Result<Json> Client::Call(std::string_view method, std::string_view target, std::string body,
                          std::string_view content_type) {
  return impl_->Call(method, target, std::move(body), content_type);
}

Result<Json> Client::Post(std::string_view target, const Json& body) {
  return impl_->Call("POST", target, body.dump(-1, ' ', false, Json::error_handler_t::replace),
                     "application/json");
}

Result<std::unique_ptr<EventReader>> Client::OpenEvents(std::string_view target) {
  return impl_->OpenEvents(target);
}

const ServerAddress& Client::address() const { return impl_->options().address; }

}  // namespace cairn::serve
