// mapFile(file, offset?, length?): memory-maps bytes [offset, offset + length) of a file (a path
// or an open file descriptor; default: all of it) and returns them as a Uint8Array over an external ArrayBuffer, so model weights live
// in the OS page cache and are paged in when first touched (and can be evicted again) instead of
// being copied into the process. The addon is otherwise kernels only; this is the one
// operating-system facility it offers, because Node has no mmap of its own.
//
// The mapping starts at the page boundary at or below `offset` (mmap's rule); the returned view
// starts at `offset` itself. Node 20 caps an ArrayBuffer made by N-API at 4 GiB, so callers map
// larger files in segments (src/formats/gguf.ts).
//
// The mapping is MAP_PRIVATE with PROT_READ | PROT_WRITE: a write through a view (no code is
// meant to write into weights) copies that page (copy-on-write) instead of crashing or
// modifying the file. MAP_NORESERVE keeps the kernel from charging the whole writable mapping
// against the commit limit, which would refuse to map a file larger than RAM + swap under the
// default overcommit heuristic. The mapping is not reported to V8 as external memory: it is
// file-backed page cache, not heap, and counting it would only trigger needless collections.
// The ArrayBuffer's finalizer unmaps, so the mapping lives exactly as long as some view of it.
//
// As with any mmap, a file that shrinks while mapped makes reads of the lost pages raise
// SIGBUS; this project replaces files by rename (src/formats/atomic-write.ts), which is safe.
#include "mmap.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace frugal {
namespace {

void Unmap(napi_env, void* data, void* hint) {
  munmap(data, static_cast<size_t>(reinterpret_cast<uintptr_t>(hint)));
}

napi_value Fail(napi_env env, const std::string& what, const std::string& path, int error) {
  std::string message = "mapFile: cannot " + what + " '" + path + "': " + std::strerror(error);
  napi_throw_error(env, nullptr, message.c_str());
  return nullptr;
}

/** A non-negative integer argument, or `fallback` when it is absent or undefined; -1 when invalid. */
int64_t OptionalSize(napi_env env, napi_value value, int64_t fallback) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type == napi_undefined) return fallback;
  double v = -1;
  if (type != napi_number || napi_get_value_double(env, value, &v) != napi_ok) return -1;
  if (!(v >= 0) || v > 9007199254740991.0 || std::floor(v) != v) return -1;
  return static_cast<int64_t>(v);
}

napi_value Bytes(napi_env env, napi_value buffer, size_t offset, size_t length) {
  napi_value view;
  napi_create_typedarray(env, napi_uint8_array, length, buffer, offset, &view);
  return view;
}

}  // namespace

napi_value MapFile(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  // The file: a path, or an open file descriptor (which stays open), so that a caller that has
  // already parsed the file maps that very file even if its path was replaced in between.
  napi_valuetype firstType = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &firstType);
  std::string path;
  int fd = -1;
  bool ownFd = firstType == napi_string;
  if (ownFd) {
    size_t pathLength = 0;
    napi_get_value_string_utf8(env, argv[0], nullptr, 0, &pathLength);
    path.assign(pathLength, '\0');
    napi_get_value_string_utf8(env, argv[0], path.data(), pathLength + 1, &pathLength);
  } else if (firstType == napi_number) {
    napi_get_value_int32(env, argv[0], &fd);
    path = "fd " + std::to_string(fd);
  } else {
    napi_throw_type_error(env, nullptr, "frugal native: mapFile expects a path string or a file descriptor");
    return nullptr;
  }
  int64_t offset = argc > 1 ? OptionalSize(env, argv[1], 0) : 0;
  if (offset < 0) {
    napi_throw_type_error(env, nullptr, "frugal native: mapFile offset must be a non-negative integer");
    return nullptr;
  }
  if (ownFd) {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(env, "open", path, errno);
  }
  auto done = [&] {
    if (ownFd) close(fd);
  };
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int error = errno;
    done();
    return Fail(env, "stat", path, error);
  }
  if (!S_ISREG(st.st_mode)) {
    done();
    return Fail(env, "map", path, EINVAL);
  }
  int64_t fileSize = static_cast<int64_t>(st.st_size);
  int64_t length = argc > 2 ? OptionalSize(env, argv[2], fileSize - offset) : fileSize - offset;
  if (length < 0 || offset > fileSize || length > fileSize - offset) {
    done();
    std::string message = "mapFile: bytes [" + std::to_string(offset) + ", +" + std::to_string(length) + ") lie outside '" + path +
                          "' (" + std::to_string(fileSize) + " bytes)";
    napi_throw_range_error(env, nullptr, message.c_str());
    return nullptr;
  }
  napi_value buffer;
  if (length == 0) {  // mmap rejects length 0
    done();
    napi_create_arraybuffer(env, 0, nullptr, &buffer);
    return Bytes(env, buffer, 0, 0);
  }
  int64_t page = sysconf(_SC_PAGESIZE);
  int64_t start = offset - offset % page;
  size_t size = static_cast<size_t>(offset + length - start);
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, static_cast<off_t>(start));
  int error = errno;
  done();  // the mapping keeps its own reference to the file
  if (data == MAP_FAILED) return Fail(env, "map", path, error);
  if (napi_create_external_arraybuffer(env, data, size, Unmap, reinterpret_cast<void*>(static_cast<uintptr_t>(size)), &buffer) != napi_ok) {
    // Not unmapped here: Node 20 runs the finalizer itself when it refuses the buffer (over
    // 4 GiB), and unmapping twice could hit a mapping made in between by another thread.
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, ("mapFile: cannot wrap the mapping of '" + path + "' in an ArrayBuffer").c_str());
    return nullptr;
  }
  return Bytes(env, buffer, static_cast<size_t>(offset - start), static_cast<size_t>(length));
}

}  // namespace frugal
