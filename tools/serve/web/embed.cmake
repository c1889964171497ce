# Writes OUT, a C++ source defining cairn::serve::PageHtml() from the text of IN (the
# timeline page), so that the page ships inside the binary (no files to install, no CDN).
file(READ "${IN}" content)
string(FIND "${content}" ")cairnpage\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw string delimiter )cairnpage\"")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by tools/serve/web/embed.cmake; do not edit.\n#include \"tools/serve/web_page.h\"\n\nnamespace cairn::serve {\n\nstd::string_view PageHtml() {\n  static constexpr char kPage[] = R\"cairnpage(${content})cairnpage\";\n  return {kPage, sizeof kPage - 1};\n}\n\n}  // namespace cairn::serve\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
