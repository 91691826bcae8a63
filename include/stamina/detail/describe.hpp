#ifndef STAMINA_DETAIL_DESCRIBE_HPP
#define STAMINA_DETAIL_DESCRIBE_HPP

// What hooks and logs say of a successful result that `on_result` retried: the value when it is
// a number or a string, the status of an HTTP response (anything with `result_int()`, as a
// Beast response has), a short printable form of anything else that prints, else its type.

#include <stamina/detail/namespace.hpp>

#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

STAMINA_NAMESPACE_BEGIN

namespace detail {

// A type's readable name ("int", "boost::system::system_error").
std::string readable_type_name(const std::type_info& type);

template <class T>
concept has_result_int = requires(const T& v) {
  v.result_int();
};
template <class T>
concept printable = requires(std::ostream& out, const T& v) {
  out << v;
};

template <class T>
void describe_value(std::ostream& out, const T& v) {
  if constexpr (has_result_int<T>) {
    out << v.result_int();
  } else if constexpr (std::is_arithmetic_v<T> || std::is_convertible_v<const T&, std::string_view>) {
    out << v;
  } else if constexpr (printable<T>) {
    std::ostringstream text;
    text << v;
    const std::string s = text.str();
    constexpr std::size_t longest = 60;
    out << (s.size() <= longest ? s : s.substr(0, longest) + "...");
  } else {
    out << readable_type_name(typeid(T));
  }
}

template <class... V>
std::string describe_values_of(const V&... values) {
  std::ostringstream out;
  out << "result";
  ((out << ' ', describe_value(out, values)), ...);
  return out.str();
}

}  // namespace detail

STAMINA_NAMESPACE_END

#endif
