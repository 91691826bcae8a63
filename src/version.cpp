#include <stamina/detail/namespace.hpp>
#include <stamina/version.hpp>

STAMINA_NAMESPACE_BEGIN
const char* version() noexcept { return STAMINA_VERSION_STRING; }
STAMINA_NAMESPACE_END
