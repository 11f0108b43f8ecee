# Options for River's own targets (tests, examples, benchmarks) only: the exported library targets
# carry no warning or sanitizer flags, so consumers keep theirs.
add_library(river_project_options INTERFACE)
target_compile_options(river_project_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports false positives inside Boost.Asio's coroutine frames and std headers at -O2:
  # uninitialized members of moved-from coroutine state, and the frame's own operator delete.
  target_compile_options(river_project_options INTERFACE
    -Wno-maybe-uninitialized -Wno-dangling-pointer -Wno-mismatched-new-delete)
endif()
if(RIVER_WARNINGS_AS_ERRORS)
  target_compile_options(river_project_options INTERFACE -Werror)
endif()
if(RIVER_SANITIZE)
  target_compile_options(river_project_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(river_project_options INTERFACE -fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # Clang 14 cannot emit -fsanitize=function checks for split coroutine frames
    # ("Cannot represent a difference across sections").
    target_compile_options(river_project_options INTERFACE -fno-sanitize=function)
  endif()
endif()
