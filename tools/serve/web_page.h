// The timeline page served at GET / (tools/serve/web/index.html, compiled in).
#pragma once

#include <string_view>

namespace cairn::serve {

std::string_view PageHtml();

}  // namespace cairn::serve
