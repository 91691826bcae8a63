// retry_on: what is retried (exception types, error codes and conditions, predicates of each
// return type), a classifier that throws, and classifiers composed of several parts.

#include <boost/test/unit_test.hpp>

#include <common/core_support.hpp>

BOOST_AUTO_TEST_SUITE(classification)

BOOST_AUTO_TEST_CASE(exceptions_by_type_and_derived_type) {
  const auto on = stamina::on_exception<test::transient_error, std::out_of_range>();
  BOOST_TEST(on(failure(std::make_exception_ptr(test::transient_error("x")))).should_retry());
  BOOST_TEST(on(failure(std::make_exception_ptr(test::derived_transient_error("x")))).should_retry());
  BOOST_TEST(on(failure(std::make_exception_ptr(std::out_of_range("x")))).should_retry());
  BOOST_TEST(!on(failure(std::make_exception_ptr(test::fatal_error("x")))).should_retry());
  BOOST_TEST(!on(failure(std::make_exception_ptr(42))).should_retry());
  BOOST_TEST(!on(failure(make_error_code(boost::system::errc::timed_out))).should_retry());
}

BOOST_AUTO_TEST_CASE(error_codes_conditions_and_enums) {
  const auto on = stamina::on_error(boost::asio::error::connection_refused, boost::system::errc::timed_out,
                                    boost::system::error_code(boost::asio::error::host_not_found));
  BOOST_TEST(on(failure(boost::system::error_code(boost::asio::error::connection_refused))).should_retry());
  // errc::timed_out is a condition: it matches the system category's ETIMEDOUT.
  BOOST_TEST(on(failure(boost::system::error_code(ETIMEDOUT, boost::system::system_category()))).should_retry());
  BOOST_TEST(on(failure(boost::system::error_code(boost::asio::error::host_not_found))).should_retry());
  BOOST_TEST(!on(failure(boost::system::error_code(boost::asio::error::connection_reset))).should_retry());
  BOOST_TEST(!on(failure(std::make_exception_ptr(std::runtime_error("x")))).should_retry());
  // The exception form of the same code (what use_awaitable throws) matches too.
  const auto thrown =
      failure(std::make_exception_ptr(boost::system::system_error(boost::asio::error::connection_refused)));
  BOOST_TEST(on(thrown).should_retry());
}

BOOST_AUTO_TEST_CASE(predicates_of_each_return_type) {
  const stamina::retry_on by_bool = [](const failure& f) { return !f.is_exception(); };
  const stamina::retry_on by_decision = [](const failure&) { return stamina::decision::retry_after(2s); };
  const stamina::retry_on by_chrono = [](const failure&) { return std::chrono::milliseconds(250); };
  const stamina::retry_on refusing = [](const failure&) { return stamina::decision::no_retry(); };
  const failure code(make_error_code(boost::system::errc::io_error));
  BOOST_TEST(by_bool(code).should_retry());
  BOOST_TEST((by_decision(code).what() == stamina::decision::kind::retry_after));
  BOOST_TEST(by_decision(code).wait().count() == 2.0);
  BOOST_TEST((by_chrono(code).what() == stamina::decision::kind::retry_after));
  BOOST_TEST(by_chrono(code).wait().count() == 0.25);
  BOOST_TEST(!refusing(code).should_retry());
}

BOOST_AUTO_TEST_CASE(failure_accessors) {
  const failure e(std::make_exception_ptr(test::derived_transient_error("disk on fire")));
  BOOST_TEST(e.is_exception());
  BOOST_TEST(e.get<test::transient_error>() != nullptr);
  BOOST_TEST(e.get<test::fatal_error>() == nullptr);
  BOOST_TEST(contains(e.describe(), "derived_transient_error"));
  BOOST_TEST(contains(e.describe(), "disk on fire"));
  BOOST_TEST(!e.error());
  const failure c{boost::system::error_code(boost::asio::error::connection_refused)};
  BOOST_TEST(!c.is_exception());
  BOOST_TEST(c.get<std::exception>() == nullptr);
  BOOST_TEST(contains(c.type_name(), "system:"));
}

BOOST_AUTO_TEST_CASE(throwing_classifier_means_no_retry) {
  const retry_policy p = stamina::retry_on([](const failure&) -> bool { throw std::logic_error("bad classifier"); });
  backoff b(p, 1);
  const auto s = b.on_failure(transient(), 0s);
  BOOST_TEST(!s.retry);
  BOOST_TEST((s.reason == give_up_reason::not_retryable));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(composed_classifiers)

BOOST_AUTO_TEST_CASE(the_first_part_that_says_retry_decides) {
  const stamina::retry_on on = stamina::on_error(asio::error::connection_refused) ||
                               stamina::on_exception<test::transient_error>() ||
                               stamina::retry_on([](const stamina::failure& f) -> stamina::decision {
                                 if (f.error() == asio::error::timed_out) return stamina::decision::retry_after(3s);
                                 return false;
                               });
  BOOST_TEST(on(stamina::failure(error_code(asio::error::connection_refused))).should_retry());
  BOOST_TEST(on(stamina::failure(std::make_exception_ptr(test::transient_error("x")))).should_retry());
  const stamina::decision after = on(stamina::failure(error_code(asio::error::timed_out)));
  BOOST_TEST((after.what() == stamina::decision::kind::retry_after));
  BOOST_TEST(after.wait().count() == 3.0);
  BOOST_TEST(!on(stamina::failure(error_code(asio::error::connection_reset))).should_retry());
  BOOST_TEST(!on(stamina::failure(std::make_exception_ptr(test::fatal_error("x")))).should_retry());

  // An earlier part's wait wins over a later one's.
  const stamina::retry_on first_wins = stamina::retry_on([](const stamina::failure&) { return 1s; }) ||
                                       stamina::retry_on([](const stamina::failure&) { return 9s; });
  BOOST_TEST(first_wins(stamina::failure(error_code(asio::error::timed_out))).wait().count() == 1.0);
}

BOOST_AUTO_TEST_CASE(mixing_codes_and_exceptions_in_one_call) {
  int calls = 0;
  const auto policy =
      quick(stamina::on_error(asio::error::connection_refused) || stamina::on_exception<test::transient_error>());
  const int n = stamina::retry(policy, [&]() -> int {
    ++calls;
    if (calls == 1) throw boost::system::system_error(asio::error::connection_refused);
    if (calls == 2) throw test::transient_error("x");
    return calls;
  });
  BOOST_TEST(n == 3);
}

BOOST_AUTO_TEST_SUITE_END()
