# dm_library(NAME DIR SOURCES ... LINKS ...): the static library dm_NAME
# built from DIR's sources, whose headers are included as "NAME/x.h".
#
# Each library exposes only its own folder: the include root it publishes
# (build/include/NAME) holds one link, NAME -> DIR. A file sees a folder's
# headers only if its library links that folder's library, directly or
# through the layers it links, so an upward #include fails to compile.
function(dm_library name dir)
  cmake_parse_arguments(PARSE_ARGV 2 A "" "" "SOURCES;LINKS")
  set(root ${CMAKE_BINARY_DIR}/include/${name})
  file(MAKE_DIRECTORY ${root})
  if(NOT EXISTS ${root}/${name})
    file(CREATE_LINK ${dir} ${root}/${name} SYMBOLIC)
  endif()
  list(TRANSFORM A_SOURCES PREPEND ${dir}/)
  add_library(dm_${name} STATIC ${A_SOURCES})
  target_include_directories(dm_${name} PUBLIC ${root})
  target_link_libraries(dm_${name} PUBLIC ${A_LINKS})
endfunction()
