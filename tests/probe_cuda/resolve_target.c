/* Shared objects for probe_resolve_test (test_resolve.cpp): each copy is built with its own
   RESOLVE_TARGET_ID and defines fpscope_rt_value_<id>() returning that id and
   fpscope_rt_other_<id>() returning its negation; copies built with
   RESOLVE_TARGET_DUP also define fpscope_rt_dup(), returning the id, so that the test can tell
   which object a name was resolved in. */
#define FPSCOPE_RT_CAT2(a, b) a##b
#define FPSCOPE_RT_CAT(a, b) FPSCOPE_RT_CAT2(a, b)

__attribute__((visibility("default"))) int FPSCOPE_RT_CAT(fpscope_rt_value_,
                                                          RESOLVE_TARGET_ID)(void) {
  return RESOLVE_TARGET_ID;
}

__attribute__((visibility("default"))) int FPSCOPE_RT_CAT(fpscope_rt_other_,
                                                          RESOLVE_TARGET_ID)(void) {
  return -RESOLVE_TARGET_ID;
}

#ifdef RESOLVE_TARGET_DUP
__attribute__((visibility("default"))) int fpscope_rt_dup(void) {
  return RESOLVE_TARGET_ID;
}
#endif
