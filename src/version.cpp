#include <stamina/version.hpp>

namespace stamina {
const char* version() noexcept { return STAMINA_VERSION_STRING; }
}  // namespace stamina
