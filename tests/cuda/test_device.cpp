// The CUDA backend's host-side rules, run without a GPU (issue 41): which drivers
// CUDA's compatibility rules accept, and a failing backend method's pending copies
// dropped rather than delivered into memory the failure freed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/device.hpp"
#include "cuda/mailbox.hpp"

namespace cutoff {
namespace {

TEST(CudaDriver, FollowsCudasCompatibilityRules) {
  struct Case {
    int driver, runtime;
    bool ok;
    const char* why;  ///< part of the refusal
  };
  const Case cases[] = {
      {13000, 13000, true, ""},  // the same release
      {13000, 13020, true, ""},  // minor version compatibility: 13.2 runtime, 580 driver (13.0)
      {13010, 13000, true, ""},  // newer driver
      {14000, 13000, true, ""},  // a newer major runs older runtimes
      {12080, 13000, false, "CUDA 13.x needs driver 580 or newer"},
      {12090, 13020, false, "supports CUDA 12.9, older than the CUDA 13.2 runtime"},
      {11080, 12040, false, "CUDA 12.x needs driver 525 or newer"},
      {12000, 12090, true, ""},
      {10020, 11000, false, "CUDA 11.x needs driver 450 or newer"},
  };
  for (const Case& c : cases) {
    std::string why;
    EXPECT_EQ(cuda_driver_supports(c.driver, c.runtime, &why), c.ok) << c.driver << " / " << c.runtime;
    if (c.ok)
      EXPECT_TRUE(why.empty()) << why;
    else
      EXPECT_NE(why.find(c.why), std::string::npos) << why;
  }
  EXPECT_FALSE(cuda_driver_supports(12080, 13000, nullptr));  // no message asked for
}

/// Plain host memory, for the mailbox without a GPU.
struct HostMemory {
  static void allocate(void** p, std::size_t bytes) {
    *p = std::malloc(bytes);
    if (!*p) throw std::bad_alloc();
  }
  static void release(void* p) { std::free(p); }
};

TEST(CudaMailbox, DeliversAfterTheSync) {
  cuda::Mailbox<HostMemory> box;
  std::vector<int> dst(3, 0);
  int* slot = static_cast<int*>(box.slot(dst.data(), 3 * sizeof(int)));
  slot[0] = 7, slot[1] = 8, slot[2] = 9;  // what the device copy writes
  EXPECT_EQ(dst[0], 0);                   // nothing before the sync
  box.deliver();
  EXPECT_EQ(dst, (std::vector<int>{7, 8, 9}));
  EXPECT_EQ(box.pending(), 0u);
}

TEST(CudaMailbox, AFailingMethodLeavesNoPendingCopy) {
  cuda::Mailbox<HostMemory> box;
  int abandoned = 0;
  struct Abandon {
    cuda::Mailbox<HostMemory>* box;
    int* count;
    void operator()() const noexcept {
      box->drop();
      ++*count;
    }
  };
  std::vector<double> survivor(2, 0.0);
  EXPECT_THROW(
      {
        const cuda::OnFailure<Abandon> guard(Abandon{&box, &abandoned});
        std::vector<double> local(4, 0.0);  // a method's local, freed by the unwinding
        static_cast<double*>(box.slot(local.data(), 4 * sizeof(double)))[0] = 1.0;
        static_cast<double*>(box.slot(survivor.data(), 2 * sizeof(double)))[0] = 2.0;
        ASSERT_EQ(box.pending(), 2u);
        throw std::logic_error("clearing: more gathered items than its gather limit");
      },
      std::logic_error);
  EXPECT_EQ(abandoned, 1);
  EXPECT_EQ(box.pending(), 0u);
  box.deliver();  // the next method's sync: writes nowhere
  EXPECT_EQ(survivor[0], 0.0);
  {
    const cuda::OnFailure<Abandon> guard(Abandon{&box, &abandoned});  // a method that succeeds
    box.slot(survivor.data(), sizeof(double));
  }
  EXPECT_EQ(abandoned, 1);
  EXPECT_EQ(box.pending(), 1u);
}

}  // namespace
}  // namespace cutoff
