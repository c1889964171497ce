// HttpExecutor end to end against the loopback StubServer (tests/http/http_stub.h): every
// request goes to 127.0.0.1 on a port the kernel picked.
#include "engine/http/http_executor.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/http/encoding.h"
#include "tests/http/http_stub.h"
#include "tests/support/assertions.h"

namespace cairn::engine::http {
namespace {

using namespace std::chrono_literals;
using cairn::testing::HasSubstr;
using cairn::testing::Must;
using cairn::testing::RefusingPort;
using cairn::testing::StubRequest;
using cairn::testing::StubResponse;
using cairn::testing::StubServer;
using cairn::testing::StubServerOptions;

// A TCP port that accepts connections (the kernel completes the handshake) but whose
// owner never reads or answers: for handshakes and connects that hang.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Counts events from other threads; Wait returns once `n` have happened (or times out).
class Latch {
 public:
  void Arrive() {
    std::lock_guard lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t count_ = 0;
};

class HttpExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_.emplace(io_.get_executor());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    server_ = Must(StubServer::Start());
  }

  void TearDown() override {
    executors_.clear();  // Shutdown() each
    if (server_) server_->Stop();
    if (tls_server_) tls_server_->Stop();
    work_.reset();
    for (auto& thread : threads_) thread.join();
  }

  HttpExecutor& MakeExecutor(HttpOptions options = {}) {
    executors_.push_back(Must(HttpExecutor::Create(io_.get_executor(), std::move(options))));
    return *executors_.back();
  }

  StubServer& TlsServer(std::vector<std::string> host_names = {}) {
    StubServerOptions options;
    options.tls = true;
    options.tls_host_names = std::move(host_names);
    tls_server_ = Must(StubServer::Start(options));
    return *tls_server_;
  }

  static ToolRequest Request(Json with, std::chrono::milliseconds timeout = 10s,
                             std::string key = "") {
    ToolRequest request;
    request.tool = "http";
    request.arguments = std::move(with);
    request.idempotency_key = std::move(key);
    request.task_path = "/do/0/call";
    request.timeout = timeout;
    return request;
  }

  // Calls and waits for the answer; checks that it came on another thread.
  ToolResponse CallSync(HttpExecutor& executor, ToolRequest request) {
    auto promise = std::make_shared<std::promise<ToolResponse>>();
    auto future = promise->get_future();
    auto caller = std::this_thread::get_id();
    auto other_thread = std::make_shared<std::atomic<bool>>(false);
    executor.Call(std::move(request), [promise, caller, other_thread](ToolResponse response) {
      other_thread->store(std::this_thread::get_id() != caller);
      promise->set_value(std::move(response));
    });
    if (future.wait_for(30s) != std::future_status::ready) {
      ADD_FAILURE() << "no answer within 30 s";
      return ToolResponse::Failed("test", 0, "no answer", "");
    }
    ToolResponse response = future.get();
    EXPECT_TRUE(other_thread->load()) << "done ran on the calling thread";
    return response;
  }

  ToolResponse Get(const std::string& uri, Json extra = Json::object()) {
    Json with = {{"method", "get"}, {"endpoint", uri}};
    with.update(extra);
    return CallSync(executor(), Request(with));
  }

  HttpExecutor& executor() {
    if (executors_.empty()) MakeExecutor();
    return *executors_.front();
  }

  std::string Url(const std::string& path) const { return server_->BaseUrl() + path; }

  boost::asio::io_context io_{2};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::unique_ptr<StubServer> server_;
  std::unique_ptr<StubServer> tls_server_;
  std::vector<std::unique_ptr<HttpExecutor>> executors_;
};

void ExpectOk(const ToolResponse& response) {
  EXPECT_EQ(response.status, ToolResponse::Status::kOk)
      << response.error.status << " " << response.error.title << ": " << response.error.detail;
}

void ExpectFailed(const ToolResponse& response, const char* type, int status,
                  std::initializer_list<std::string_view> detail_parts) {
  EXPECT_EQ(response.status, ToolResponse::Status::kFailed) << response.output.dump();
  EXPECT_EQ(response.error.type, type);
  EXPECT_EQ(response.error.status, status) << response.error.title << ": " << response.error.detail;
  for (std::string_view part : detail_parts) EXPECT_TRUE(HasSubstr(response.error.detail, part));
}

TEST_F(HttpExecutorTest, GetJsonContent) {
  Json pet = {{"id", 1}, {"name", "milou"}, {"status", "pending"}};
  server_->Route("GET", "/v2/pet/1",
                 [&](const StubRequest&) { return StubResponse::Json(200, pet); });
  ToolResponse response = Get(Url("/v2/pet/1"));
  ExpectOk(response);
  EXPECT_EQ(response.output, pet);
  ASSERT_EQ(server_->RequestCount(), 1u);
  StubRequest seen = server_->Requests()[0];
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.target, "/v2/pet/1");
  EXPECT_EQ(seen.Header("host"), server_->Address());
  EXPECT_EQ(seen.Header("user-agent"), "cairn/0.1");
  EXPECT_EQ(seen.Header("connection"), "close");
  EXPECT_EQ(seen.Header("idempotency-key"), "");
  EXPECT_EQ(server_->Count("GET", "/v2/pet/1"), 1u);
}

TEST_F(HttpExecutorTest, PostJsonBody) {
  server_->Route("POST", "/v2/pet", [](const StubRequest& request) {
    return StubResponse::Json(201, {{"echo", Must(ParseJson(request.body, "body"))}});
  });
  ToolResponse response =
      CallSync(executor(), Request({{"method", "post"},
                                    {"endpoint", Url("/v2/pet")},
                                    {"body", {{"name", "milou"}, {"tags", {"dog", true}}}}}));
  ExpectOk(response);
  EXPECT_EQ(response.output["echo"]["name"], "milou");
  StubRequest seen = server_->Requests().at(0);
  EXPECT_EQ(seen.Header("content-type"), "application/json");
  EXPECT_EQ(seen.body, R"({"name":"milou","tags":["dog",true]})");
  EXPECT_EQ(seen.Header("content-length"), std::to_string(seen.body.size()));
}

TEST_F(HttpExecutorTest, StringBodyWithContentTypeIsSentAsIs) {
  server_->Route("PUT", "/text", [](const StubRequest&) { return StubResponse::Bare(204); });
  ToolResponse response = CallSync(executor(), Request({{"method", "PUT"},
                                                        {"endpoint", Url("/text")},
                                                        {"headers", {{"Content-Type", "text/csv"}}},
                                                        {"body", "a,b\n1,2\n"}}));
  ExpectOk(response);
  EXPECT_TRUE(response.output.is_null());
  StubRequest seen = server_->Requests().at(0);
  EXPECT_EQ(seen.Header("content-type"), "text/csv");
  EXPECT_EQ(seen.body, "a,b\n1,2\n");
}

TEST_F(HttpExecutorTest, QueryIsPercentEncoded) {
  server_->Route("GET", "/v2/pet/findByStatus", [](const StubRequest& request) {
    return StubResponse::Json(200, {{{"id", 7}, {"status", request.QueryParam("status")}}});
  });
  ToolResponse response = Get(Url("/v2/pet/findByStatus?limit=2"),
                              {{"query", {{"status", "sold out & gone/é"}, {"page", 3}}}});
  ExpectOk(response);
  EXPECT_EQ(response.output[0]["status"], "sold out & gone/é");
  StubRequest seen = server_->Requests().at(0);
  EXPECT_EQ(seen.target,
            "/v2/pet/findByStatus?limit=2&page=3&status=sold%20out%20%26%20gone%2F%C3%A9");
  EXPECT_EQ(seen.QueryParam("limit"), "2");
}

TEST_F(HttpExecutorTest, HeadersAreSent) {
  server_->Route("GET", "/h", [](const StubRequest&) { return StubResponse::Text(200, "ok"); });
  ExpectOk(Get(Url("/h"),
               {{"headers", {{"X-Trace", "abc"}, {"X-Count", 7}, {"Accept", "text/plain"}}}}));
  StubRequest seen = server_->Requests().at(0);
  EXPECT_EQ(seen.Header("x-trace"), "abc");
  EXPECT_EQ(seen.Header("X-COUNT"), "7");
  EXPECT_EQ(seen.Header("accept"), "text/plain");
}

// As the OWS conformance scenario "Call HTTP Using Basic Authentication" (httpbin).
TEST_F(HttpExecutorTest, BasicAuthentication) {
  server_->RoutePrefix("GET", "/basic-auth/", [](const StubRequest& request) {
    std::string credentials = request.path.substr(std::string("/basic-auth/").size());
    size_t slash = credentials.find('/');
    std::string user = credentials.substr(0, slash);
    std::string expected = "Basic " + Base64Encode(user + ":" + credentials.substr(slash + 1));
    if (request.Header("authorization") != expected) {
      return StubResponse::Bare(401).WithHeader("WWW-Authenticate", "Basic realm=\"Fake\"");
    }
    return StubResponse::Json(200, {{"authenticated", true}, {"user", user}});
  });
  auto call = [&](const std::string& password) {
    return Get("",
               {{"endpoint",
                 {{"uri", Url("/basic-auth/serverless-workflow/conformance-test")},
                  {"authentication",
                   {{"basic", {{"username", "serverless-workflow"}, {"password", password}}}}}}}});
  };
  ToolResponse ok = call("conformance-test");
  ExpectOk(ok);
  EXPECT_EQ(ok.output["authenticated"], true);
  ExpectFailed(call("wrong"), error_type::kCommunication, 401, {"returned 401"});
  EXPECT_EQ(server_->Count("GET", "/basic-auth/"), 2u);
}

TEST_F(HttpExecutorTest, BearerAuthentication) {
  server_->Route("GET", "/me", [](const StubRequest& request) {
    return StubResponse::Text(200, request.Header("authorization"));
  });
  ToolResponse response =
      Get("", {{"endpoint",
                {{"uri", Url("/me")}, {"authentication", {{"bearer", {{"token", "t0k3n"}}}}}}}});
  ExpectOk(response);
  EXPECT_EQ(response.output, "Bearer t0k3n");
}

TEST_F(HttpExecutorTest, IdempotencyKeyIsSent) {
  server_->Route("POST", "/pay", [](const StubRequest&) {
    return StubResponse::Json(200, {{"ok", true}});
  });
  ExpectOk(
      CallSync(executor(),
               Request({{"method", "POST"}, {"endpoint", Url("/pay")}, {"body", {{"cents", 100}}}},
                       10s, "run-42/do/1/pay#0")));
  ExpectOk(CallSync(executor(), Request({{"method", "POST"}, {"endpoint", Url("/pay")}}, 10s, "")));
  auto requests = server_->Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].Header("idempotency-key"), "run-42/do/1/pay#0");
  EXPECT_EQ(requests[1].headers.count("idempotency-key"), 0u);
}

TEST_F(HttpExecutorTest, ResponseOutput) {
  server_->Route("GET", "/v2/pet/1", [](const StubRequest&) {
    return StubResponse::Json(200, {{"id", 1}, {"name", "milou"}, {"status", "pending"}})
        .WithHeader("X-Rate", "5");
  });
  ToolResponse response =
      CallSync(executor(), Request({{"method", "get"},
                                    {"endpoint",
                                     {{"uri", Url("/v2/pet/1")},
                                      {"authentication", {{"bearer", {{"token", "s3cret"}}}}}}},
                                    {"output", "response"}},
                                   10s, "k1"));
  ExpectOk(response);
  const Json& out = response.output;
  EXPECT_EQ(out["statusCode"], 200);
  EXPECT_EQ(out["content"]["name"], "milou");
  EXPECT_EQ(out["headers"]["content-type"], "application/json");
  EXPECT_EQ(out["headers"]["x-rate"], "5");
  EXPECT_EQ(out["request"]["method"], "GET");
  EXPECT_EQ(out["request"]["uri"], Url("/v2/pet/1"));
  EXPECT_EQ(out["request"]["headers"]["idempotency-key"], "k1");
  EXPECT_EQ(out["request"]["headers"]["authorization"], "<redacted>");
  EXPECT_FALSE(HasSubstr(DumpJson(out), "s3cret"));
}

TEST_F(HttpExecutorTest, RawOutput) {
  std::string bytes("\x00\x01\xff\xfe binary", 11);
  server_->Route("GET", "/blob", [&](const StubRequest&) {
    return StubResponse::Text(200, bytes, "application/octet-stream");
  });
  ToolResponse response = Get(Url("/blob"), {{"output", "raw"}});
  ExpectOk(response);
  EXPECT_EQ(response.output, Base64Encode(bytes));
}

TEST_F(HttpExecutorTest, NonJsonContentIsAString) {
  server_->Route("GET", "/page", [](const StubRequest&) {
    return StubResponse::Text(200, "<p>{not json}</p>", "text/html");
  });
  server_->Route("GET", "/latin1", [](const StubRequest&) {
    return StubResponse::Text(200, "caf\xE9", "text/plain; charset=iso-8859-1");
  });
  EXPECT_EQ(Get(Url("/page")).output, "<p>{not json}</p>");
  EXPECT_EQ(Get(Url("/latin1")).output, "caf\xEF\xBF\xBD");  // invalid UTF-8 repaired
}

// As the OWS conformance scenario "Try Catch Error" (petstore getPetByName -> 404).
TEST_F(HttpExecutorTest, NotFoundIsACommunicationErrorWithTheStatus) {
  server_->RoutePrefix("GET", "/v2/pet/getPetByName/", [](const StubRequest&) {
    return StubResponse::Json(404, {{"code", 1}, {"message", "Pet not found"}});
  });
  ToolResponse response = Get(Url("/v2/pet/getPetByName/Milou"));
  ExpectFailed(response, error_type::kCommunication, 404,
               {"GET " + Url("/v2/pet/getPetByName/Milou"), "returned 404", "Pet not found"});
  EXPECT_EQ(response.error.title, "Not Found");
}

TEST_F(HttpExecutorTest, ServerErrorQuotesTheStartOfTheBody) {
  server_->Route("POST", "/boom", [](const StubRequest&) {
    return StubResponse::Text(500, "trace: " + std::string(4000, 'x'));
  });
  ToolResponse response =
      CallSync(executor(), Request({{"method", "POST"}, {"endpoint", Url("/boom")}}));
  ExpectFailed(response, error_type::kCommunication, 500, {"POST", "trace: xxx", "(4007 bytes)"});
  EXPECT_EQ(response.error.title, "Internal Server Error");
  EXPECT_LT(response.error.detail.size(), 800u);
}

TEST_F(HttpExecutorTest, RedirectIsAnErrorUnlessAllowed) {
  server_->Route("GET", "/old", [](const StubRequest&) {
    return StubResponse::Bare(302).WithHeader("Location", "/new?x=1");
  });
  server_->Route("GET", "/new", [](const StubRequest& request) {
    return StubResponse::Json(200, {{"x", request.QueryParam("x")}});
  });
  ExpectFailed(Get(Url("/old")), error_type::kCommunication, 302,
               {"Location: /new?x=1", "redirect: true"});
  EXPECT_EQ(server_->Count("GET", "/new"), 0u);

  ToolResponse followed = Get(Url("/old"), {{"redirect", true}, {"output", "response"}});
  ExpectOk(followed);
  EXPECT_EQ(followed.output["content"]["x"], "1");
  EXPECT_EQ(followed.output["request"]["uri"], Url("/new?x=1"));
  EXPECT_EQ(server_->Count("GET", "/old"), 2u);
  EXPECT_EQ(server_->Count("GET", "/new"), 1u);
}

TEST_F(HttpExecutorTest, RedirectMethodRules) {
  server_->Route("POST", "/see-other", [](const StubRequest&) {
    return StubResponse::Bare(303).WithHeader("Location", "/result");
  });
  server_->Route("POST", "/temporary", [](const StubRequest&) {
    return StubResponse::Bare(307).WithHeader("Location", "/result");
  });
  server_->Route("*", "/result", [](const StubRequest& request) {
    return StubResponse::Json(200, {{"method", request.method}, {"body", request.body}});
  });
  Json with = {{"method", "POST"}, {"body", {{"a", 1}}}, {"redirect", true}};
  with["endpoint"] = Url("/see-other");
  ToolResponse see_other = CallSync(executor(), Request(with));
  ExpectOk(see_other);
  EXPECT_EQ(see_other.output, Json({{"method", "GET"}, {"body", ""}}));
  with["endpoint"] = Url("/temporary");
  ToolResponse temporary = CallSync(executor(), Request(with));
  ExpectOk(temporary);
  EXPECT_EQ(temporary.output, Json({{"method", "POST"}, {"body", R"({"a":1})"}}));
}

TEST_F(HttpExecutorTest, RedirectLoopStopsAtTheLimit) {
  server_->Route("GET", "/loop", [](const StubRequest&) {
    return StubResponse::Bare(301).WithHeader("Location", "/loop");
  });
  ToolResponse response = Get(Url("/loop"), {{"redirect", true}});
  ExpectFailed(response, error_type::kCommunication, 502, {"after 10 redirects"});
  EXPECT_EQ(server_->Count("GET", "/loop"), limits::http_redirects_max + 1);
}

TEST_F(HttpExecutorTest, NotModifiedIsAResultWhenRedirectsAreAllowed) {
  server_->Route("GET", "/cached", [](const StubRequest&) { return StubResponse::Bare(304); });
  ExpectFailed(Get(Url("/cached")), error_type::kCommunication, 304, {"returned 304"});
  ToolResponse allowed = Get(Url("/cached"), {{"redirect", true}, {"output", "response"}});
  ExpectOk(allowed);
  EXPECT_EQ(allowed.output["statusCode"], 304);
}

TEST_F(HttpExecutorTest, ConnectionRefused) {
  RefusingPort closed;
  ASSERT_NE(closed.port(), 0);
  std::string uri = "http://127.0.0.1:" + std::to_string(closed.port()) + "/x";
  ToolResponse response = Get(uri);
  ExpectFailed(response, error_type::kCommunication, 503, {"cannot connect", "refused"});
  EXPECT_EQ(response.error.title, "Service unavailable");
}

TEST_F(HttpExecutorTest, ServerThatNeverAnswersTimesOut) {
  server_->Route("GET", "/hang", [](const StubRequest&) { return StubResponse::Hang(); });
  auto started = std::chrono::steady_clock::now();
  ToolResponse response =
      CallSync(executor(), Request({{"method", "GET"}, {"endpoint", Url("/hang")}}, 300ms));
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(response.status, ToolResponse::Status::kTimedOut);
  EXPECT_EQ(response.error.type, error_type::kTimeout);
  EXPECT_EQ(response.error.status, 408);
  EXPECT_TRUE(HasSubstr(response.error.detail, "within 300 ms"));
  EXPECT_TRUE(HasSubstr(response.error.detail, "reading the response"));
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 10s);
}

TEST_F(HttpExecutorTest, SlowServerWithinTheDeadlineIsFine) {
  server_->Route("GET", "/slow", [](const StubRequest&) {
    return StubResponse::Text(200, "late").WithDelay(100ms);
  });
  ToolResponse response =
      CallSync(executor(), Request({{"method", "GET"}, {"endpoint", Url("/slow")}}, 5s));
  ExpectOk(response);
  EXPECT_EQ(response.output, "late");
}

TEST_F(HttpExecutorTest, HandshakeThatHangsHitsTheConnectTimeout) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  HttpOptions options;
  options.connect_timeout = 200ms;
  HttpExecutor& executor = MakeExecutor(options);
  std::string uri = "https://127.0.0.1:" + std::to_string(silent.port()) + "/";
  ToolResponse response = CallSync(executor, Request({{"method", "GET"}, {"endpoint", uri}}, 10s));
  ExpectFailed(response, error_type::kCommunication, 503, {"within 200 ms", "TLS handshake"});
  // With a shorter call deadline, the deadline wins.
  ToolResponse timed_out =
      CallSync(executor, Request({{"method", "GET"}, {"endpoint", uri}}, 50ms));
  EXPECT_EQ(timed_out.status, ToolResponse::Status::kTimedOut);
  EXPECT_TRUE(HasSubstr(timed_out.error.detail, "TLS handshake"));
}

TEST_F(HttpExecutorTest, ServerClosesWithoutAnswering) {
  server_->Route("GET", "/close", [](const StubRequest&) { return StubResponse::Close(); });
  ExpectFailed(Get(Url("/close")), error_type::kCommunication, 502, {"without answering"});
}

TEST_F(HttpExecutorTest, ServerClosesMidResponse) {
  server_->Route("GET", "/truncated", [](const StubRequest&) {
    return StubResponse::Truncate(200, std::string(1000, 'a'), "text/plain");
  });
  ToolResponse response = Get(Url("/truncated"));
  ExpectFailed(response, error_type::kCommunication, 502, {"before the response was complete"});
  EXPECT_EQ(response.error.title, "Connection closed mid-response");
}

TEST_F(HttpExecutorTest, OversizedBodyAndHeaderAreRefused) {
  HttpOptions options;
  options.response_body_bytes_max = 1000;
  options.response_header_bytes_max = 1024;
  HttpExecutor& small = MakeExecutor(options);
  server_->Route("GET", "/big", [](const StubRequest&) {
    return StubResponse::Text(200, std::string(5000, 'b'));
  });
  server_->Route("GET", "/fits", [](const StubRequest&) {
    return StubResponse::Text(200, std::string(1000, 'f'));
  });
  server_->Route("GET", "/big-header", [](const StubRequest&) {
    return StubResponse::Text(200, "x").WithHeader("X-Huge", std::string(4000, 'h'));
  });
  ToolResponse big = CallSync(small, Request({{"method", "GET"}, {"endpoint", Url("/big")}}));
  ExpectFailed(big, error_type::kCommunication, 502, {"larger than 1000 bytes"});
  EXPECT_EQ(big.error.title, "HTTP response too large");
  ExpectOk(CallSync(small, Request({{"method", "GET"}, {"endpoint", Url("/fits")}})));
  server_->Route("GET", "/big-chunked", [](const StubRequest&) {
    return StubResponse::Text(200, std::string(5000, 'c')).Chunked();
  });
  server_->Route("GET", "/fits-chunked", [](const StubRequest&) {
    return StubResponse::Text(200, std::string(1000, 'c')).Chunked();
  });
  ExpectFailed(CallSync(small, Request({{"method", "GET"}, {"endpoint", Url("/big-chunked")}})),
               error_type::kCommunication, 502, {"larger than 1000 bytes"});
  ToolResponse chunked =
      CallSync(small, Request({{"method", "GET"}, {"endpoint", Url("/fits-chunked")}}));
  ExpectOk(chunked);
  EXPECT_EQ(chunked.output, std::string(1000, 'c'));
  ToolResponse header =
      CallSync(small, Request({{"method", "GET"}, {"endpoint", Url("/big-header")}}));
  ExpectFailed(header, error_type::kCommunication, 502, {"header is larger than 1024 bytes"});
}

TEST_F(HttpExecutorTest, InvalidJsonWithJsonContentType) {
  server_->Route("GET", "/bad-json", [](const StubRequest&) {
    return StubResponse::Text(200, "{\"id\": 1,", "application/json");
  });
  ToolResponse response = Get(Url("/bad-json"));
  ExpectFailed(response, error_type::kCommunication, 502,
               {"application/json", "invalid JSON", "{\"id\": 1,"});
  EXPECT_EQ(response.error.title, "Invalid JSON in HTTP response");
  // raw does not parse.
  ExpectOk(Get(Url("/bad-json"), {{"output", "raw"}}));
}

TEST_F(HttpExecutorTest, InvalidArgumentsAreConfigurationErrors) {
  ToolResponse response = CallSync(
      executor(),
      Request({{"method", "GET"},
               {"endpoint",
                {{"uri", Url("/x")}, {"authentication", {{"oauth2", {{"authority", "x"}}}}}}}}));
  ExpectFailed(response, error_type::kConfiguration, 400, {"oauth2", "not supported"});
  ExpectFailed(CallSync(executor(), Request({{"endpoint", Url("/x")}})), error_type::kConfiguration,
               400, {"with.method"});
  EXPECT_EQ(server_->RequestCount(), 0u);
}

TEST_F(HttpExecutorTest, HeadHasNoBody) {
  server_->Route("HEAD", "/h", [](const StubRequest&) {
    StubResponse response = StubResponse::Text(200, "");
    return response.WithHeader("X-Size", "12");
  });
  ToolResponse response = Get(Url("/h"), {{"method", "head"}, {"output", "response"}});
  ExpectOk(response);
  EXPECT_EQ(response.output["headers"]["x-size"], "12");
  EXPECT_TRUE(response.output["content"].is_null());
}

TEST_F(HttpExecutorTest, HttpsWithTrustedStub) {
  StubServer& tls = TlsServer();
  tls.Route("GET", "/v2/pet/1", [](const StubRequest& request) {
    return StubResponse::Json(200, {{"id", 1}, {"tls", request.tls}});
  });
  HttpOptions options;
  options.extra_ca_pem = tls.CertificatePem();
  options.use_system_ca_store = false;
  HttpExecutor& executor = MakeExecutor(options);
  ToolResponse by_ip =
      CallSync(executor, Request({{"method", "GET"}, {"endpoint", tls.BaseUrl() + "/v2/pet/1"}}));
  ExpectOk(by_ip);
  EXPECT_EQ(by_ip.output, Json({{"id", 1}, {"tls", true}}));
  // By name: SNI and host name verification against "localhost".
  std::string by_name_uri = "https://localhost:" + std::to_string(tls.port()) + "/v2/pet/1";
  HttpOptions named = options;
  named.connect_overrides["localhost:" + std::to_string(tls.port())] = tls.Address();
  ExpectOk(CallSync(MakeExecutor(named), Request({{"method", "GET"}, {"endpoint", by_name_uri}})));
  EXPECT_EQ(tls.Requests().back().Header("host"), "localhost:" + std::to_string(tls.port()));
}

TEST_F(HttpExecutorTest, HttpsWithUntrustedCertificateFails) {
  StubServer& tls = TlsServer();
  tls.Route("GET", "/x", [](const StubRequest&) { return StubResponse::Text(200, "secret"); });
  HttpOptions options;
  options.use_system_ca_store = false;
  ToolResponse response = CallSync(
      MakeExecutor(options), Request({{"method", "GET"}, {"endpoint", tls.BaseUrl() + "/x"}}));
  ExpectFailed(response, error_type::kCommunication, 503,
               {"TLS handshake", "certificate verify failed"});
  EXPECT_EQ(tls.RequestCount(), 0u);
  // Trusting another stub's certificate does not help.
  StubServerOptions other_options;
  other_options.tls = true;
  auto other = Must(StubServer::Start(other_options));
  options.extra_ca_pem = other->CertificatePem();
  ExpectFailed(CallSync(MakeExecutor(options),
                        Request({{"method", "GET"}, {"endpoint", tls.BaseUrl() + "/x"}})),
               error_type::kCommunication, 503, {"certificate verify failed"});
  // Verification off (tests only) connects.
  HttpOptions unverified;
  unverified.verify_peer = false;
  ExpectOk(CallSync(MakeExecutor(unverified),
                    Request({{"method", "GET"}, {"endpoint", tls.BaseUrl() + "/x"}})));
}

TEST_F(HttpExecutorTest, HttpsWithWrongHostNameFails) {
  StubServer& tls = TlsServer();
  tls.Route("GET", "/x", [](const StubRequest&) { return StubResponse::Text(200, "x"); });
  HttpOptions options;
  options.use_system_ca_store = false;
  options.extra_ca_pem = tls.CertificatePem();
  // 127.0.0.2 is not in the certificate; the override keeps the connection on the stub
  // (and would only reach the loopback if it were ignored).
  options.connect_overrides["127.0.0.2:443"] = tls.Address();
  ToolResponse response = CallSync(
      MakeExecutor(options), Request({{"method", "GET"}, {"endpoint", "https://127.0.0.2/x"}}));
  ExpectFailed(response, error_type::kCommunication, 503,
               {"certificate verify failed", "mismatch"});
}

TEST_F(HttpExecutorTest, ConcurrentCalls) {
  server_->RoutePrefix("GET", "/item/", [](const StubRequest& request) {
    return StubResponse::Json(200, {{"path", request.path}}).WithDelay(5ms);
  });
  constexpr int kCalls = 200;
  std::mutex mu;
  std::vector<ToolResponse> responses(kCalls);
  Latch done;
  for (int i = 0; i < kCalls; ++i) {
    executor().Call(Request({{"method", "GET"}, {"endpoint", Url("/item/" + std::to_string(i))}}),
                    [&, i](ToolResponse response) {
                      {
                        std::lock_guard lock(mu);
                        responses[i] = std::move(response);
                      }
                      done.Arrive();
                    });
  }
  ASSERT_TRUE(done.WaitFor(kCalls, 60s));
  std::lock_guard lock(mu);
  for (int i = 0; i < kCalls; ++i) {
    ExpectOk(responses[i]);
    EXPECT_EQ(responses[i].output["path"], "/item/" + std::to_string(i));
  }
  EXPECT_EQ(server_->Count("GET", "/item/"), static_cast<size_t>(kCalls));
  executor().Shutdown();  // waits for the last `done` to return
  EXPECT_EQ(executor().InFlight(), 0u);
}

TEST_F(HttpExecutorTest, ShutdownEndsCallsInFlight) {
  Latch arrived;
  server_->Route("GET", "/hang", [&](const StubRequest&) {
    arrived.Arrive();
    return StubResponse::Hang();
  });
  HttpExecutor& executor = MakeExecutor();
  constexpr int kCalls = 20;
  std::atomic<int> answered{0};
  std::atomic<int> shutting_down{0};
  for (int i = 0; i < kCalls; ++i) {
    executor.Call(
        Request({{"method", "GET"}, {"endpoint", Url("/hang")}}, 60s), [&](ToolResponse response) {
          if (response.status == ToolResponse::Status::kFailed && response.error.status == 503 &&
              HasSubstr(response.error.title, "shutting down")) {
            ++shutting_down;
          }
          ++answered;
        });
  }
  ASSERT_TRUE(arrived.WaitFor(kCalls));
  EXPECT_EQ(executor.InFlight(), static_cast<size_t>(kCalls));
  executor.Shutdown();
  // Shutdown returned only after every `done` did.
  EXPECT_EQ(answered.load(), kCalls);
  EXPECT_EQ(shutting_down.load(), kCalls);
  EXPECT_EQ(executor.InFlight(), 0u);
  executor.Shutdown();  // idempotent

  ToolResponse after = CallSync(executor, Request({{"method", "GET"}, {"endpoint", Url("/hang")}}));
  ExpectFailed(after, error_type::kCommunication, 503, {"shutting down"});
}

TEST_F(HttpExecutorTest, CreateRefusesBadCaPem) {
  HttpOptions options;
  options.extra_ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  EXPECT_TRUE(cairn::testing::IsError(HttpExecutor::Create(io_.get_executor(), options).status(),
                                      StatusCode::kInvalidArgument, {"extra_ca_pem"}));
}

// The stub's own routing rules, seen through the executor.
TEST_F(HttpExecutorTest, StubRoutingAndRecording) {
  server_->RoutePrefix("*", "/a/",
                       [](const StubRequest&) { return StubResponse::Text(200, "prefix"); });
  server_->RoutePrefix("GET", "/a/b/",
                       [](const StubRequest&) { return StubResponse::Text(200, "longer"); });
  server_->Route("GET", "/a/b/c",
                 [](const StubRequest&) { return StubResponse::Text(200, "exact"); });
  EXPECT_EQ(Get(Url("/a/b/c")).output, "exact");
  EXPECT_EQ(Get(Url("/a/b/d?q=1")).output, "longer");
  EXPECT_EQ(Get(Url("/a/x")).output, "prefix");
  ExpectFailed(Get(Url("/nowhere")), error_type::kCommunication, 404,
               {"no route for GET /nowhere"});
  EXPECT_EQ(server_->Count("GET", "/a/b/c"), 1u);
  EXPECT_EQ(server_->Count("GET", "/a/b/"), 1u);
  EXPECT_EQ(server_->Count("*", "/a/"), 1u);
  EXPECT_EQ(server_->RequestCount(), 4u);
  EXPECT_EQ(server_->Requests()[1].query, "q=1");
  server_->ClearRequests();
  EXPECT_EQ(server_->RequestCount(), 0u);
  EXPECT_EQ(server_->Count("GET", "/a/b/c"), 0u);
}

// The stub keeps HTTP/1.1 connections open between requests unless told to close.
TEST_F(HttpExecutorTest, StubKeepsConnectionsAlive) {
  server_->Route("GET", "/k", [](const StubRequest& request) {
    return StubResponse::Text(200, "n=" + request.QueryParam("n"));
  });
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  timeval receive_timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof(receive_timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(server_->port());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  auto exchange = [&](const std::string& request, const std::string& expected_tail) {
    EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string received;
    char chunk[512];
    while (received.size() < expected_tail.size() ||
           received.compare(received.size() - expected_tail.size(), expected_tail.size(),
                            expected_tail) != 0) {
      ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0) break;
      received.append(chunk, static_cast<size_t>(n));
    }
    return received;
  };
  EXPECT_TRUE(HasSubstr(exchange("GET /k?n=1 HTTP/1.1\r\nHost: x\r\n\r\n", "n=1"), "200 OK"));
  EXPECT_TRUE(
      HasSubstr(exchange("GET /k?n=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "n=2"),
                "Connection: close"));
  char byte;
  EXPECT_EQ(::read(fd, &byte, 1), 0);  // closed after the second answer
  ::close(fd);
  EXPECT_EQ(server_->ConnectionCount(), 1u);
  EXPECT_EQ(server_->Count("GET", "/k"), 2u);
}

}  // namespace
}  // namespace cairn::engine::http
