// The CLI's HTTP client over real sockets on 127.0.0.1 (tools/serve/client.h): addresses,
// requests with the bearer token on one kept-alive connection (and a new one when the
// server has closed it), every error answer as a Status carrying the server's code and
// message, an unreachable server, bounds on time and size, and server-sent event streams.
#include "tools/serve/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tests/support/assertions.h"
#include "tools/serve/http_server.h"

namespace cairn::serve {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using cairn::testing::IsError;
using cairn::testing::Must;

TEST(ServerAddressTest, ParsesHttpUrls) {
  ServerAddress a = Must(ParseServerAddress("http://127.0.0.1:8080"));
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 8080);
  EXPECT_EQ(a.url, "http://127.0.0.1:8080");
  EXPECT_EQ(Must(ParseServerAddress("HTTP://localhost:9/")).url, "http://localhost:9");
  ServerAddress v6 = Must(ParseServerAddress("http://[::1]:7000/"));
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.url, "http://[::1]:7000");
  EXPECT_EQ(Must(ParseServerAddress("http://cairn.internal")).port, 80);
}

TEST(ServerAddressTest, RefusesWhatItCannotSpeakNamingWhy) {
  EXPECT_TRUE(IsError(ParseServerAddress("https://cairn.example:443").status(),
                      StatusCode::kInvalidArgument, {"https", "no TLS", "TLS-terminating proxy"}));
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {
      {"127.0.0.1:8080", "no http://"}, {"ftp://h:21", "scheme must be http"},
      {"http://", "no host"},           {"http://:8080", "no host"},
      {"http://h:0", "port must be"},   {"http://h:65536", "port must be"},
      {"http://h:80x", "port must be"}, {"http://h:", "no port"},
      {"http://h:80/v1", "a path"},     {"http://alice:pw@h:80", "user info"},
      {"http://h:80?x=1", "query"},     {"http://::1:80", "in brackets"},
      {"http://[::1", "without ']'"},   {"http://h a:80", "not a host"},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(IsError(ParseServerAddress(c.text).status(), StatusCode::kInvalidArgument,
                        {c.why, "expected http://HOST:PORT"}))
        << c.text;
  }
}

TEST(ServerAddressTest, UrlEncodeKeepsUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("billing/plan-change_1.0~x"), "billing%2Fplan-change_1.0~x");
  EXPECT_EQ(UrlEncode("a b&c=d"), "a%20b%26c%3Dd");
}

class ClientTest : public ::testing::Test {
 protected:
  void Start(HttpHandler handler, HttpLimits limits = {}) {
    HttpServerOptions options;
    options.limits = limits;
    options.handler_threads = 4;
    server_ = Must(HttpServer::Start(options, std::move(handler)));
  }

  std::unique_ptr<Client> MakeClient(std::string token = "tok",
                                     std::chrono::milliseconds response_timeout = 10s,
                                     size_t response_bytes_max = 1 << 20) {
    ClientOptions options;
    options.address =
        Must(ParseServerAddress("http://127.0.0.1:" + std::to_string(server_->port())));
    options.token = std::move(token);
    options.token_source = "$CAIRN_TOKEN";
    options.response_timeout = response_timeout;
    options.response_bytes_max = response_bytes_max;
    return Must(Client::Create(options));
  }

  std::unique_ptr<HttpServer> server_;
};

HttpResponse Echo(const HttpRequest& r) {
  return HttpResponse::Json(200, Json{{"method", r.method},
                                      {"target", r.target},
                                      {"body", r.body},
                                      {"type", r.Header("content-type")},
                                      {"host", r.Header("host")},
                                      {"auth", r.Header("authorization")}});
}

TEST_F(ClientTest, SendsTheTokenAndReusesOneConnection) {
  Start(Echo);
  auto client = MakeClient();
  const Json got = Must(client->Get("/v1/runs?status=waiting"));
  EXPECT_EQ(got["method"], "GET");
  EXPECT_EQ(got["target"], "/v1/runs?status=waiting");
  EXPECT_EQ(got["auth"], "Bearer tok");
  EXPECT_EQ(got["host"], "127.0.0.1:" + std::to_string(server_->port()));
  const Json posted = Must(client->Post("/v1/runs", Json{{"workflow", "demo/wait"}}));
  EXPECT_EQ(posted["body"], R"({"workflow":"demo/wait"})");
  EXPECT_EQ(posted["type"], "application/json");
  const Json yaml = Must(client->Call("POST", "/v1/workflows", "document: {}", "application/yaml"));
  EXPECT_EQ(yaml["type"], "application/yaml");
  EXPECT_EQ(server_->stats().requests, 3u);
  EXPECT_EQ(server_->stats().connections_accepted, 1u) << "one kept-alive connection";
}

TEST_F(ClientTest, NoTokenSendsNoAuthorization) {
  Start(Echo);
  EXPECT_EQ(Must(MakeClient("")->Get("/x"))["auth"], "");
  for (const char* token : {"tok en", "tok\r\nX-Evil: 1", "t\xc3\xa9"}) {
    ClientOptions options;
    options.token = token;
    EXPECT_TRUE(IsError(Client::Create(options).status(), StatusCode::kInvalidArgument,
                        {"printable ASCII"}))
        << token;
  }
}

TEST_F(ClientTest, AConnectionTheServerClosedIsReplacedForTheNextRequest) {
  HttpLimits limits;
  limits.idle_timeout = 50ms;
  Start(Echo, limits);
  auto client = MakeClient();
  Must(client->Get("/one"));
  // Wait for the server to drop the idle connection (a condition, not a fixed pause).
  for (int i = 0; i < 500 && server_->stats().connections_open != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(server_->stats().connections_open, 0u);
  EXPECT_EQ(Must(client->Post("/two", Json::object()))["target"], "/two");
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(ClientTest, ErrorAnswersBecomeStatusesWithTheServersCodeAndMessage) {
  Start([](const HttpRequest& r) {
    const int status = std::stoi(r.path.substr(1));
    if (status == 502) return HttpResponse::Text(502, "<html>bad gateway</html>\n", "text/html");
    static const std::map<int, std::string> codes = {
        {400, "bad_request"}, {401, "unauthenticated"}, {403, "forbidden"},
        {404, "not_found"},   {409, "conflict"},        {422, "invalid"},
        {503, "overloaded"},  {504, "timeout"},         {500, "internal"}};
    return HttpResponse::Error(status, codes.at(status), "what the server said");
  });
  auto client = MakeClient();
  const std::string url = "http://127.0.0.1:" + std::to_string(server_->port());
  struct Case {
    const char* path;
    StatusCode code;
    std::vector<std::string> parts;
  };
  const Case cases[] = {
      {"/400", StatusCode::kInvalidArgument, {"what the server said"}},
      {"/422", StatusCode::kInvalidArgument, {"what the server said"}},
      {"/401",
       StatusCode::kPermissionDenied,
       {"unauthenticated: what the server said", "the token from $CAIRN_TOKEN"}},
      {"/403", StatusCode::kPermissionDenied, {"forbidden: what the server said"}},
      {"/404", StatusCode::kNotFound, {"what the server said"}},
      {"/409", StatusCode::kFailedPrecondition, {"what the server said"}},
      {"/503", StatusCode::kUnavailable, {url, "overloaded", "what the server said"}},
      {"/504", StatusCode::kDeadlineExceeded, {"what the server said"}},
      {"/500", StatusCode::kInternal, {url, "500 internal", "what the server said"}},
      {"/502", StatusCode::kInternal, {url + " answered 502 Bad Gateway: <html>bad gateway"}},
  };
  for (const Case& c : cases) {
    Status got = client->Get(c.path).status();
    EXPECT_EQ(got.code(), c.code) << c.path << ": " << got.ToString();
    for (const std::string& part : c.parts) EXPECT_TRUE(HasSubstr(got.message(), part)) << c.path;
  }
  // The connection survives error answers.
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  EXPECT_TRUE(IsError(MakeClient("")->Get("/401").status(), StatusCode::kPermissionDenied,
                      {"(no token was given)"}));
}

// A port bound on 127.0.0.1 but not listening: connecting to it is refused, and no other
// process can take it while this holds it (a port merely freed after use can be taken by a
// concurrently running test's server, which would then answer).
class BoundPort {
 public:
  BoundPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot bind a port on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  ~BoundPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  BoundPort(const BoundPort&) = delete;
  BoundPort& operator=(const BoundPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST_F(ClientTest, AnUnreachableServerIsOneClearError) {
  const BoundPort bound;
  const uint16_t port = bound.port();
  ClientOptions options;
  options.address = Must(ParseServerAddress("http://127.0.0.1:" + std::to_string(port)));
  auto client = Must(Client::Create(options));
  const std::string expected =
      "cannot reach http://127.0.0.1:" + std::to_string(port) + ": connection refused";
  Status connected = client->Connect();
  EXPECT_EQ(connected.code(), StatusCode::kUnavailable);
  EXPECT_EQ(connected.message(), expected);
  EXPECT_EQ(client->Get("/v1/runs").status().message(), expected);
}

TEST_F(ClientTest, ASlowAnswerAndAnOversizedOneAreBounded) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  Start([&](const HttpRequest& r) {
    if (r.path == "/big") return HttpResponse::Json(200, Json{{"x", std::string(4096, 'x')}});
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return release; });
    return HttpResponse::Json(200, Json::object());
  });
  auto client = MakeClient("tok", 200ms, 1024);
  EXPECT_TRUE(IsError(client->Get("/slow").status(), StatusCode::kDeadlineExceeded,
                      {"did not answer GET /slow within 200ms"}));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(IsError(client->Get("/big").status(), StatusCode::kInvalidArgument,
                      {"larger than 1024 bytes"}));
}

TEST_F(ClientTest, AnEventStreamDeliversEventsInOrderAndEnds) {
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<EventStream> stream;
  Start([&](const HttpRequest& r) {
    if (r.path == "/missing") return HttpResponse::Error(404, "not_found", "run x not found");
    EXPECT_EQ(r.Header("accept"), "text/event-stream");
    EXPECT_EQ(r.Header("authorization"), "Bearer tok");
    HttpResponse response;
    response.open = [&](std::shared_ptr<EventStream> s) {
      s->Send("run_started", "0", R"({"seq":0})");
      std::lock_guard lock(mu);
      stream = std::move(s);
      cv.notify_all();
    };
    return response;
  });
  auto client = MakeClient();
  EXPECT_TRUE(
      IsError(client->OpenEvents("/missing").status(), StatusCode::kNotFound, {"run x not found"}));
  auto reader = Must(client->OpenEvents("/v1/runs/x/events?from=0"));
  std::optional<ServerSentEvent> first = Must(reader->Next(5s));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->event, "run_started");
  EXPECT_EQ(first->id, "0");
  EXPECT_EQ(first->data, R"({"seq":0})");
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return stream != nullptr; }));
  }
  // Nothing more yet: Next waits as long as asked and the stream stays open.
  EXPECT_FALSE(Must(reader->Next(50ms)).has_value());
  EXPECT_FALSE(reader->ended());
  stream->Comment("keep-alive");
  stream->Send("task_routed", "1", "a");
  stream->Send("run_stopped", "2", "b");
  stream->End();
  std::optional<ServerSentEvent> second = Must(reader->Next(5s));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->id, "1");
  std::optional<ServerSentEvent> third = Must(reader->Next(5s));
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->event, "run_stopped");
  EXPECT_EQ(third->data, "b");
  EXPECT_FALSE(Must(reader->Next(5s)).has_value());
  EXPECT_TRUE(reader->ended());
  // The request connection is unaffected by the stream's.
  EXPECT_EQ(client->Get("/missing").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cairn::serve
