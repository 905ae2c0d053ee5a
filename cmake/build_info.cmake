# Writes build_info.h with the current commit (and "-dirty" for uncommitted
# changes). Run at every build by the vrec_build_info target; configure_file
# rewrites the header only when its content changes, so an unchanged commit
# rebuilds nothing. Inputs: SRC (source dir), IN, OUT, PROJECT_VERSION,
# CMAKE_BUILD_TYPE.
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE VREC_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT VREC_GIT_COMMIT)
  set(VREC_GIT_COMMIT "unknown")
else()
  execute_process(COMMAND git diff --quiet HEAD -- src include proto benchmarks
                  WORKING_DIRECTORY ${SRC} RESULT_VARIABLE dirty ERROR_QUIET)
  if(dirty EQUAL 1)
    set(VREC_GIT_COMMIT "${VREC_GIT_COMMIT}-dirty")
  endif()
endif()
configure_file(${IN} ${OUT} @ONLY)
