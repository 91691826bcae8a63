#ifndef STAMINA_DETAIL_NAMESPACE_HPP
#define STAMINA_DETAIL_NAMESPACE_HPP

// Each flavour of the library lives in an inline namespace of its own inside `stamina`:
// `stamina::boost_asio` (Boost.Asio, boost::system::error_code) and `stamina::standalone_asio`
// (standalone Asio, std::error_code). Users spell every name `stamina::...`; the linker sees two
// sets of symbols, so one program may link both flavours (directly, or through two libraries
// built on different Asios) without duplicate definitions or one flavour's code called with the
// other's types. Process-wide state (switches, hooks, default throttles) is per flavour.

#if defined(STAMINA_STANDALONE_ASIO)
#define STAMINA_NAMESPACE_BEGIN \
  namespace stamina {           \
  inline namespace standalone_asio {
#else
#define STAMINA_NAMESPACE_BEGIN \
  namespace stamina {           \
  inline namespace boost_asio {
#endif
#define STAMINA_NAMESPACE_END \
  }                           \
  }

#endif
