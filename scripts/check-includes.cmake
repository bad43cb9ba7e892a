# Refuses an #include that goes the wrong way between moesim's parts (run by the build, see
# moesim_part in the top-level CMakeLists.txt). Every `#include "..."` of FILES must start with one
# of the ALLOWED prefixes ("sim/network/", "proto/", or a whole header path); on the first that
# does not, the build stops with the file, the line and what the part may include.
#
#   cmake -DPART=sim/network -DFILES="a.cc|b.h" -DALLOWED="sim/network/|proto/" -DSTAMP=out -P ...
string(REPLACE "|" ";" files "${FILES}")
string(REPLACE "|" ";" allowed "${ALLOWED}")
foreach(file IN LISTS files)
  file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*" "\\1" header "${line}")
    set(ok FALSE)
    foreach(prefix IN LISTS allowed)
      string(FIND "${header}" "${prefix}" at)
      if(at EQUAL 0)
        set(ok TRUE)
        break()
      endif()
    endforeach()
    if(NOT ok)
      string(REPLACE ";" ", " allowed_text "${allowed}")
      message(FATAL_ERROR "${file}: includes \"${header}\", which ${PART} may not use.\n"
                          "${PART} may include: ${allowed_text}")
    endif()
  endforeach()
endforeach()
file(WRITE "${STAMP}" "")
