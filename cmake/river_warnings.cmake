# Options for River's own code only: tests, examples and benchmarks link `river_project_options`,
# and every source file of the compiled libraries gets the same flags as a source property, so the
# exported library targets carry no warning or sanitizer flags and consumers keep theirs.
set(river_warning_flags
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports false positives inside Boost.Asio's coroutine frames and std headers at -O2:
  # uninitialized members of moved-from coroutine state, and the frame's own operator delete.
  list(APPEND river_warning_flags -Wno-maybe-uninitialized -Wno-dangling-pointer -Wno-mismatched-new-delete)
endif()
if(RIVER_WARNINGS_AS_ERRORS)
  list(APPEND river_warning_flags -Werror)
endif()

set(river_sanitizer_flags "")
set(river_sanitizer_link_flags "")
# The fuzzers find memory errors and undefined behaviour only with the sanitizers on.
if(RIVER_SANITIZE OR RIVER_BUILD_FUZZERS)
  set(river_sanitizer_flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  set(river_sanitizer_link_flags -fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # Clang 14 cannot emit -fsanitize=function checks for split coroutine frames
    # ("Cannot represent a difference across sections").
    list(APPEND river_sanitizer_flags -fno-sanitize=function)
  endif()
endif()
if(RIVER_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "RIVER_BUILD_FUZZERS needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Coverage for libFuzzer in every River source; only the fuzz targets link libFuzzer itself.
  list(APPEND river_sanitizer_flags -fsanitize=fuzzer-no-link)
endif()

if(RIVER_SANITIZE_THREAD)
  if(RIVER_SANITIZE OR RIVER_BUILD_FUZZERS)
    message(FATAL_ERROR "RIVER_SANITIZE_THREAD cannot be combined with RIVER_SANITIZE or RIVER_BUILD_FUZZERS: use two build trees")
  endif()
  set(river_sanitizer_flags -fsanitize=thread -fno-omit-frame-pointer)
  set(river_sanitizer_link_flags -fsanitize=thread)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Asio's reference counts use std::atomic_thread_fence, which ThreadSanitizer does not model;
    # GCC 12 warns for each. River's own code uses no fences.
    list(APPEND river_sanitizer_flags -Wno-tsan)
  endif()
endif()

add_library(river_project_options INTERFACE)
target_compile_options(river_project_options INTERFACE ${river_warning_flags} ${river_sanitizer_flags})
target_link_options(river_project_options INTERFACE ${river_sanitizer_link_flags})

# River's sources in a library target: the project's warnings and sanitizers.
function(river_own_sources)
  set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS ${river_warning_flags} ${river_sanitizer_flags})
endfunction()

# Sources that are not River's (Boost compiled into a library): sanitizers only.
function(river_sanitized_sources)
  if(river_sanitizer_flags)
    set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS ${river_sanitizer_flags})
  endif()
endfunction()
