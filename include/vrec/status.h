// Status handling shared by every vrec module.
//
// vrec uses absl::Status / absl::StatusOr<T> across module boundaries with the
// canonical codes: kInvalidArgument for bad input (say what and where),
// kDataLoss for corrupt files, kNotFound for missing files or keys,
// kUnavailable for a peer that may come back (retry the call), kAborted for a
// conflict to retry higher up, kInternal for broken invariants.
//
// Debian's Abseil (20220623) has no RETURN_IF_ERROR macros; these are ours.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vrec {

using Status = absl::Status;
template <typename T>
using StatusOr = absl::StatusOr<T>;

}  // namespace vrec

#define VREC_STATUS_CONCAT_INNER_(a, b) a##b
#define VREC_STATUS_CONCAT_(a, b) VREC_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the calling function if
// it is not OK.
#define VREC_RETURN_IF_ERROR(expr)                         \
  do {                                                     \
    ::absl::Status vrec_status_ = (expr);                  \
    if (!vrec_status_.ok()) return vrec_status_;           \
  } while (0)

// `VREC_ASSIGN_OR_RETURN(auto x, Foo());` evaluates Foo() (an absl::StatusOr);
// returns its status if not OK, else moves the value into the declaration.
#define VREC_ASSIGN_OR_RETURN(lhs, expr)                                     \
  VREC_ASSIGN_OR_RETURN_IMPL_(VREC_STATUS_CONCAT_(vrec_statusor_, __LINE__), \
                              lhs, expr)
#define VREC_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                \
  if (!var.ok()) return std::move(var).status();    \
  lhs = std::move(var).value()
