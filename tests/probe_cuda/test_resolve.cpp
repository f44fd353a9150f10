// The one resolver of the host and CUDA hooks (probe/src/resolve.h), against the real dynamic
// loader: objects loaded RTLD_LOCAL (invisible to RTLD_NEXT) and RTLD_GLOBAL, the library hint,
// and the lifetime contract: the resolver holds exactly ONE reference on the defining object, so
// the object stays mapped after the program's last dlclose, and one more dlclose (the test
// dropping the resolver's reference) unloads it. A resolver that closes its handle fails the
// first half, one that keeps a reference per resolved symbol the second.
//
// Each test uses its own objects (resolve_target.c, one copy per id): what one test loads and pins
// does not change what another sees.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "resolve.h"

namespace {

using Fn = int (*)();
using fpscope::probe::resolve_real;

std::string target(int id) {
  return std::string(FPSCOPE_RESOLVE_TARGET_DIR) + "/libprobe_resolve_target" + std::to_string(id) +
         ".so";
}

bool resident(const std::string& path) {
  void* h = dlopen(path.c_str(), RTLD_NOLOAD | RTLD_LAZY);
  if (h == nullptr) return false;
  dlclose(h);  // drops the reference this RTLD_NOLOAD check took
  return true;
}

TEST(Resolve, NeverLoadsAnObject) {
  ASSERT_FALSE(resident(target(5)));
  EXPECT_EQ(resolve_real("fpscope_rt_value_5"), nullptr);
  EXPECT_FALSE(resident(target(5)));
}

// The program's one reference is `h`; the resolver's is the only other one.
void expect_exactly_one_resolver_reference(void* h, const std::string& path) {
  ASSERT_EQ(dlclose(h), 0) << dlerror();  // the program's reference
  if (!resident(path)) {                  // `h` is gone with the object: no second dlclose
    ADD_FAILURE() << "unmapped under the resolved address: no resolver reference";
    return;
  }
  ASSERT_EQ(dlclose(h), 0) << dlerror();  // the test drops the resolver's reference...
  EXPECT_FALSE(resident(path)) << "...and the object stays: more than one resolver reference";
}

TEST(Resolve, FindsAnRtldLocalObjectAndHoldsOneReferenceOnIt) {
  const std::string path = target(1);
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  auto expected = reinterpret_cast<Fn>(dlsym(h, "fpscope_rt_value_1"));
  ASSERT_NE(expected, nullptr);
  ASSERT_EQ(dlsym(RTLD_NEXT, "fpscope_rt_value_1"), nullptr);  // only the scan can find it
  auto fn = reinterpret_cast<Fn>(resolve_real("fpscope_rt_value_1"));
  ASSERT_EQ(fn, expected);
  // Resolving it again, and another name of the same object, takes no further reference.
  EXPECT_EQ(reinterpret_cast<Fn>(resolve_real("fpscope_rt_value_1")), expected);
  auto other = reinterpret_cast<Fn>(resolve_real("fpscope_rt_other_1"));
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other(), -1);
  ASSERT_EQ(dlclose(h), 0);  // the program is done with the object; the resolved address is not
  // The program's reference again, for the count.
  h = dlopen(path.c_str(), RTLD_NOLOAD | RTLD_LAZY);
  ASSERT_NE(h, nullptr) << "unmapped under the resolved address";
  EXPECT_EQ(fn(), 1);
  expect_exactly_one_resolver_reference(h, path);
}

TEST(Resolve, FindsAnRtldGlobalObjectThroughRtldNextAndHoldsOneReferenceOnIt) {
  const std::string path = target(2);
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  ASSERT_NE(h, nullptr) << dlerror();
  ASSERT_NE(dlsym(RTLD_NEXT, "fpscope_rt_value_2"), nullptr);
  auto fn = reinterpret_cast<Fn>(resolve_real("fpscope_rt_value_2"));
  ASSERT_EQ(fn, reinterpret_cast<Fn>(dlsym(h, "fpscope_rt_value_2")));
  EXPECT_EQ(fn(), 2);
  EXPECT_NE(resolve_real("fpscope_rt_other_2"), nullptr);
  expect_exactly_one_resolver_reference(h, path);
}

TEST(Resolve, SearchesHintedObjectsFirstThenLoadOrder) {
  void* a = dlopen(target(3).c_str(), RTLD_NOW | RTLD_LOCAL);
  void* b = dlopen(target(4).c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(a, nullptr) << dlerror();
  ASSERT_NE(b, nullptr) << dlerror();
  auto first = reinterpret_cast<Fn>(resolve_real("fpscope_rt_dup"));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first(), 3);  // no hint: load order
  auto hinted = reinterpret_cast<Fn>(resolve_real("fpscope_rt_dup", "resolve_target4"));
  ASSERT_NE(hinted, nullptr);
  EXPECT_EQ(hinted(), 4);
  // A hint that matches no object falls back to every object.
  auto fallback = reinterpret_cast<Fn>(resolve_real("fpscope_rt_dup", "no_such_library"));
  ASSERT_NE(fallback, nullptr);
  EXPECT_EQ(fallback(), 3);
  EXPECT_EQ(dlclose(a), 0);
  EXPECT_EQ(dlclose(b), 0);
}

TEST(Resolve, TellsTheProbesOwnAddresses) {
  // Here the resolver is linked into the test program: the program is "the probe".
  EXPECT_TRUE(fpscope::probe::address_in_probe(reinterpret_cast<const void*>(&target)));
  void* h = dlopen(target(6).c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  EXPECT_FALSE(fpscope::probe::address_in_probe(dlsym(h, "fpscope_rt_value_6")));
  EXPECT_FALSE(fpscope::probe::address_in_probe(nullptr));
  dlclose(h);
}

}  // namespace
