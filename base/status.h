// Status and Result<T>: errors as values.
//
// Every fallible function in cairn returns a Status or a Result<T>. Exceptions never
// cross a module boundary: library errors (rocksdb::Status, kj::Exception, Asio error
// codes, JSON and jq errors) are converted at the seam where they appear.
//
// The codes are few on purpose; each one tells the caller what to do:
//   kInvalidArgument     the request is wrong: never retry it unchanged.
//   kFailedPrecondition  the system is not in a state where the request can run
//                        (e.g. the store failed and must be reopened): do not retry.
//   kNotFound            the named thing does not exist.
//   kAlreadyExists       the thing was created before (dedupe): use the existing one.
//   kAborted             a concurrency conflict: re-read and retry higher up.
//   kUnavailable         a transient failure: retry the same call, with backoff.
//   kResourceExhausted   a bound was hit (queue full, budget spent): back off or stop.
//   kDeadlineExceeded    the operation took longer than allowed.
//   kDataLoss            stored bytes are corrupt or missing: stop and report.
//   kInternal            a bug in cairn.
//   kPermissionDenied    the caller may not do this (not an approver, a tool not offered):
//                        never retry as is.
//
// Status is cheap to copy when ok (no allocation). Thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace cairn {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,
  kFailedPrecondition,
  kNotFound,
  kAlreadyExists,
  kAborted,
  kUnavailable,
  kResourceExhausted,
  kDeadlineExceeded,
  kDataLoss,
  kInternal,
  kPermissionDenied,
};

// Returns a stable lower-case name for the code ("invalid_argument", ...).
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) { return {StatusCode::kFailedPrecondition, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status Aborted(std::string msg) { return {StatusCode::kAborted, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status ResourceExhausted(std::string msg) { return {StatusCode::kResourceExhausted, std::move(msg)}; }
  static Status DeadlineExceeded(std::string msg) { return {StatusCode::kDeadlineExceeded, std::move(msg)}; }
  static Status DataLoss(std::string msg) { return {StatusCode::kDataLoss, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {StatusCode::kPermissionDenied, std::move(msg)};
  }

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  // Empty when ok.
  const std::string& message() const;

  // True for codes where retrying the same call later may succeed.
  bool IsRetryable() const {
    return code() == StatusCode::kUnavailable || code() == StatusCode::kAborted ||
           code() == StatusCode::kResourceExhausted;
  }

  // Returns a copy whose message is "<context>: <message>"; ok stays ok.
  Status WithContext(std::string_view context) const;

  // "ok" or "<code name>: <message>".
  std::string ToString() const;

  // Explicitly drops a status the caller decided it does not need.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const State> state_;
};

// Result<T> holds either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::in_place_index<0>, std::move(status)) {  // NOLINT
    CAIRN_ASSERT(!std::get<0>(data_).ok(), "Result constructed from an ok Status without a value");
  }

  bool ok() const { return data_.index() == 1; }
  Status status() const { return ok() ? Status::Ok() : std::get<0>(data_); }

  const T& value() const& { CheckOk(); return std::get<1>(data_); }
  T& value() & { CheckOk(); return std::get<1>(data_); }
  T&& value() && { CheckOk(); return std::get<1>(std::move(data_)); }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  T value_or(T fallback) const& { return ok() ? std::get<1>(data_) : std::move(fallback); }

 private:
  void CheckOk() const {
    CAIRN_ASSERT(ok(), "Result::value() on error: " + std::get<0>(data_).ToString());
  }
  std::variant<Status, T> data_;
};

}  // namespace cairn

#define CAIRN_STATUS_CONCAT_INNER_(a, b) a##b
#define CAIRN_STATUS_CONCAT_(a, b) CAIRN_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not ok.
#define CAIRN_RETURN_IF_ERROR(expr)                      \
  do {                                                   \
    ::cairn::Status cairn_status_ = (expr);              \
    if (!cairn_status_.ok()) return cairn_status_;       \
  } while (0)

// `CAIRN_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its error.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL_(CAIRN_STATUS_CONCAT_(cairn_result_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
