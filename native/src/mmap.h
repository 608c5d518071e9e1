// mapFile: the one operating-system facility the addon offers besides its kernels (mmap.cc).
#pragma once
#define NAPI_VERSION 8
#include <node_api.h>

namespace frugal {

/** mapFile(path or fd, offset?, length?): a Uint8Array over a copy-on-write mapping of those bytes of the file. */
napi_value MapFile(napi_env env, napi_callback_info info);

}  // namespace frugal
