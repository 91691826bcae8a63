// One program, both flavours of stamina: each half in its own translation unit, compiled
// against its own Asio; the linker must find no duplicate and no half may call the other's code.
#include <iostream>
#include <string>

std::string run_boost_flavour();
std::string run_standalone_flavour();

int main() {
  const std::string boost = run_boost_flavour();
  const std::string standalone = run_standalone_flavour();
  std::cout << "both flavours in one program: Boost.Asio " << boost << ", standalone Asio " << standalone << '\n';
  return boost.rfind("ok", 0) == 0 && standalone.rfind("ok", 0) == 0 ? 0 : 1;
}
