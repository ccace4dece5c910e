// The errors the addon throws: the kinds and codes the TypeScript side throws, for direct calls.
#pragma once

#include <napi.h>

#include <string>

namespace tollgate {

// A TypeError with code TOLLGATE_INVALID_ARGUMENT.
Napi::Error type_error(napi_env env, const std::string& message);
// A RangeError with code TOLLGATE_OUT_OF_RANGE.
Napi::Error range_error(napi_env env, const std::string& message);
// An Error, or a TypeError, with `code`.
Napi::Error coded_error(napi_env env, const std::string& message, const char* code);
Napi::Error coded_type_error(napi_env env, const std::string& message, const char* code);

}  // namespace tollgate
