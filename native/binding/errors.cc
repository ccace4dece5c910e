// The errors the addon throws (see errors.h).
#include "errors.h"

namespace tollgate {
namespace {

Napi::Error with_code(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  return error;
}

}  // namespace

Napi::Error type_error(napi_env env, const std::string& message) {
  return with_code(Napi::TypeError::New(env, message), "TOLLGATE_INVALID_ARGUMENT");
}

Napi::Error range_error(napi_env env, const std::string& message) {
  return with_code(Napi::RangeError::New(env, message), "TOLLGATE_OUT_OF_RANGE");
}

Napi::Error coded_error(napi_env env, const std::string& message, const char* code) {
  return with_code(Napi::Error::New(env, message), code);
}

Napi::Error coded_type_error(napi_env env, const std::string& message, const char* code) {
  return with_code(Napi::TypeError::New(env, message), code);
}

}  // namespace tollgate
