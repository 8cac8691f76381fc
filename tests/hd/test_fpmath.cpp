// The model's own exp/log/sincos: accurate to a few ulp and exact where IEEE says so.
#include <gtest/gtest.h>

#include <cmath>

#include "core/hd/fpmath.hpp"

namespace cutoff {
namespace {

double rel(double a, double b) { return std::fabs(a - b) / std::fmax(std::fabs(b), 1e-300); }

TEST(FpMath, ExpMatchesLibmWithinTwoUlp) {
  for (double x = -700; x < 700; x += 0.01371) EXPECT_LT(rel(fp::exp(x), std::exp(x)), 4.5e-16) << x;
  EXPECT_EQ(fp::exp(0.0), 1.0);
  EXPECT_EQ(fp::exp(-1000.0), 0.0);
  EXPECT_TRUE(std::isinf(fp::exp(1000.0)));
  EXPECT_TRUE(std::isnan(fp::exp(NAN)));
  EXPECT_LT(rel(fp::exp(-740.0), std::exp(-740.0)), 1e-3);  // subnormal result
}

TEST(FpMath, LogMatchesLibmWithinTwoUlp) {
  for (double x = 1e-300; x < 1e300; x *= 1.0371) EXPECT_LT(rel(fp::log(x), std::log(x)), 4.5e-16) << x;
  EXPECT_EQ(fp::log(1.0), 0.0);
  EXPECT_TRUE(std::isinf(fp::log(0.0)));
  EXPECT_TRUE(std::isnan(fp::log(-1.0)));
  EXPECT_LT(rel(fp::log(4.9e-320), std::log(4.9e-320)), 1e-15);  // subnormal input
  for (double x = 0.5; x < 2.0; x += 0.000317) EXPECT_LT(std::fabs(fp::log(x) - std::log(x)), 3e-16) << x;
}

TEST(FpMath, PowAndSinCos) {
  EXPECT_LT(rel(fp::pow(2.3, 1.0 / 12.0), std::pow(2.3, 1.0 / 12.0)), 1e-15);
  EXPECT_LT(rel(fp::pow(1e4, -1.0 / 1.1), std::pow(1e4, -1.0 / 1.1)), 1e-14);
  EXPECT_EQ(fp::pow(0.0, 2.0), 0.0);
  for (double t = 0; t < 1; t += 0.000613) {
    double s, c;
    fp::sincos_turns(t, &s, &c);
    EXPECT_NEAR(s, std::sin(2 * M_PI * t), 1e-15);
    EXPECT_NEAR(c, std::cos(2 * M_PI * t), 1e-15);
  }
}

}  // namespace
}  // namespace cutoff
