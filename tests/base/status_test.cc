#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

namespace cairn {
namespace {

TEST(StatusTest, DefaultIsOk) {
  const Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.ToString(), "ok");
  EXPECT_EQ(status, Status::Ok());
  EXPECT_FALSE(status.IsRetryable());
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  const std::pair<Status, StatusCode> cases[] = {
      {Status::InvalidArgument("m"), StatusCode::kInvalidArgument},
      {Status::FailedPrecondition("m"), StatusCode::kFailedPrecondition},
      {Status::NotFound("m"), StatusCode::kNotFound},
      {Status::AlreadyExists("m"), StatusCode::kAlreadyExists},
      {Status::Aborted("m"), StatusCode::kAborted},
      {Status::Unavailable("m"), StatusCode::kUnavailable},
      {Status::ResourceExhausted("m"), StatusCode::kResourceExhausted},
      {Status::DeadlineExceeded("m"), StatusCode::kDeadlineExceeded},
      {Status::DataLoss("m"), StatusCode::kDataLoss},
      {Status::Internal("m"), StatusCode::kInternal},
  };
  for (const auto& [status, code] : cases) {
    SCOPED_TRACE(std::string(StatusCodeName(code)));
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.code(), code);
    EXPECT_EQ(status.message(), "m");
    EXPECT_EQ(status.ToString(), std::string(StatusCodeName(code)) + ": m");
  }
}

TEST(StatusTest, CodeNamesAreStableSnakeCase) {
  EXPECT_EQ(StatusCodeName(StatusCode::kOk), "ok");
  EXPECT_EQ(StatusCodeName(StatusCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(StatusCodeName(StatusCode::kFailedPrecondition), "failed_precondition");
  EXPECT_EQ(StatusCodeName(StatusCode::kNotFound), "not_found");
  EXPECT_EQ(StatusCodeName(StatusCode::kAlreadyExists), "already_exists");
  EXPECT_EQ(StatusCodeName(StatusCode::kAborted), "aborted");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnavailable), "unavailable");
  EXPECT_EQ(StatusCodeName(StatusCode::kResourceExhausted), "resource_exhausted");
  EXPECT_EQ(StatusCodeName(StatusCode::kDeadlineExceeded), "deadline_exceeded");
  EXPECT_EQ(StatusCodeName(StatusCode::kDataLoss), "data_loss");
  EXPECT_EQ(StatusCodeName(StatusCode::kInternal), "internal");
}

TEST(StatusTest, OkCodeWithMessageIsOk) {
  const Status status(StatusCode::kOk, "ignored");
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.message(), "");
}

TEST(StatusTest, RetryableCodes) {
  EXPECT_TRUE(Status::Unavailable("x").IsRetryable());
  EXPECT_TRUE(Status::Aborted("x").IsRetryable());
  EXPECT_TRUE(Status::ResourceExhausted("x").IsRetryable());
  EXPECT_FALSE(Status::InvalidArgument("x").IsRetryable());
  EXPECT_FALSE(Status::FailedPrecondition("x").IsRetryable());
  EXPECT_FALSE(Status::NotFound("x").IsRetryable());
  EXPECT_FALSE(Status::DataLoss("x").IsRetryable());
  EXPECT_FALSE(Status::Internal("x").IsRetryable());
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  const Status status = Status::NotFound("run r1").WithContext("GetRun");
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "GetRun: run r1");
  EXPECT_EQ(status.WithContext("cli").message(), "cli: GetRun: run r1");
  EXPECT_TRUE(Status::Ok().WithContext("anything").ok());
}

TEST(StatusTest, WithContextDoesNotChangeTheOriginal) {
  const Status original = Status::DataLoss("bad");
  const Status copy = original;
  (void)original.WithContext("ctx");
  EXPECT_EQ(original.message(), "bad");
  EXPECT_EQ(copy, original);
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(Status::NotFound("a"), Status::NotFound("a"));
  EXPECT_NE(Status::NotFound("a"), Status::NotFound("b"));
  EXPECT_NE(Status::NotFound("a"), Status::DataLoss("a"));
  EXPECT_NE(Status::NotFound("a"), Status::Ok());
}

TEST(ResultTest, HoldsAValue) {
  Result<std::string> result(std::string("value"));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.status().ok());
  EXPECT_EQ(*result, "value");
  EXPECT_EQ(result.value(), "value");
  EXPECT_EQ(result->size(), 5u);
  EXPECT_EQ(result.value_or("other"), "value");
  std::string moved = std::move(result).value();
  EXPECT_EQ(moved, "value");
}

TEST(ResultTest, HoldsAnError) {
  const Result<int> result(Status::NotFound("no such run"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(result.status().message(), "no such run");
  EXPECT_EQ(result.value_or(7), 7);
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> result(std::make_unique<int>(3));
  ASSERT_TRUE(result.ok());
  std::unique_ptr<int> p = std::move(result).value();
  EXPECT_EQ(*p, 3);
}

TEST(ResultDeathTest, ValueOnErrorAborts) {
  const Result<int> result(Status::DataLoss("corrupt"));
  EXPECT_DEATH((void)result.value(), "corrupt");
}

TEST(ResultDeathTest, ConstructingFromOkStatusAborts) {
  EXPECT_DEATH((void)Result<int>{Status::Ok()}, "ok Status");
}

Status FailsWhen(bool fail) {
  if (fail) return Status::Unavailable("busy");
  return Status::Ok();
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Status ReturnIfError(bool fail, int* reached) {
  CAIRN_RETURN_IF_ERROR(FailsWhen(fail));
  *reached = 1;
  return Status::Ok();
}

Result<int> Quarter(int x) {
  CAIRN_ASSIGN_OR_RETURN(const int half, Half(x));
  CAIRN_ASSIGN_OR_RETURN(const int quarter, Half(half));
  return quarter;
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsEarly) {
  int reached = 0;
  EXPECT_EQ(ReturnIfError(true, &reached), Status::Unavailable("busy"));
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(ReturnIfError(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacrosTest, AssignOrReturn) {
  EXPECT_EQ(*Quarter(12), 3);
  EXPECT_EQ(Quarter(6).status(), Status::InvalidArgument("3 is odd"));
  EXPECT_EQ(Quarter(5).status(), Status::InvalidArgument("5 is odd"));
}

}  // namespace
}  // namespace cairn
