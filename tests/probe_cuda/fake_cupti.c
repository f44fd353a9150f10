/* A stand-in libcupti.so.13 for tests (never shipped): the CUPTI callback-API entry points the
   probe and a profiler use, with the documented one-subscriber rule enforced. CUPTI's reference
   for cuptiSubscribe: "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED if there is already a CUPTI
   subscriber", and CUpti_SubscriberParams::oldSubscriberName: "In case of
   CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED return code, the name of the incompatible tool or
   the existing CUPTI subscriber will be written to this location" (docs.nvidia.com/cupti/api,
   cuptiSubscribe / structCUpti__SubscriberParams). Exported under libcupti's own version node
   (fake_cupti.map), as the real library does (objdump -T libcupti.so.13). */
#include <cupti_callbacks.h>
#include <cupti_result.h>
#include <stdio.h>
#include <string.h>

static int g_held = 0;
static char g_holder[128] = "";
static int g_token; /* the one subscriber handle's target */

static CUptiResult subscribe(CUpti_SubscriberHandle* s, const char* name, char* old,
                             size_t old_size) {
  if (s == NULL) return CUPTI_ERROR_INVALID_PARAMETER;
  if (g_held) {
    if (old != NULL && old_size > 0) snprintf(old, old_size, "CUPTI for %s", g_holder);
    return CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  }
  g_held = 1;
  snprintf(g_holder, sizeof g_holder, "%s", name != NULL ? name : "<not provided>");
  *s = (CUpti_SubscriberHandle)&g_token;
  return CUPTI_SUCCESS;
}

CUptiResult cuptiSubscribe(CUpti_SubscriberHandle* s, CUpti_CallbackFunc f, void* u) {
  (void)f;
  (void)u;
  return subscribe(s, NULL, NULL, 0);
}

CUptiResult cuptiSubscribe_v2(CUpti_SubscriberHandle* s, CUpti_CallbackFunc f, void* u,
                              CUpti_SubscriberParams* p) {
  (void)f;
  (void)u;
  return subscribe(s, p != NULL ? p->subscriberName : NULL, p != NULL ? p->oldSubscriberName : NULL,
                   p != NULL ? p->oldSubscriberSize : 0);
}

CUptiResult cuptiUnsubscribe(CUpti_SubscriberHandle s) {
  if (!g_held || s != (CUpti_SubscriberHandle)&g_token) return CUPTI_ERROR_INVALID_PARAMETER;
  g_held = 0;
  g_holder[0] = '\0';
  return CUPTI_SUCCESS;
}

CUptiResult cuptiEnableCallback(uint32_t enable, CUpti_SubscriberHandle s, CUpti_CallbackDomain d,
                                CUpti_CallbackId id) {
  (void)enable;
  (void)d;
  (void)id;
  return g_held && s == (CUpti_SubscriberHandle)&g_token ? CUPTI_SUCCESS
                                                         : CUPTI_ERROR_INVALID_PARAMETER;
}

CUptiResult cuptiGetResultString(CUptiResult r, const char** str) {
  if (str == NULL) return CUPTI_ERROR_INVALID_PARAMETER;
  *str = r == CUPTI_SUCCESS ? "CUPTI_SUCCESS"
         : r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED
             ? "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED"
             : "CUPTI_ERROR_OTHER";
  return CUPTI_SUCCESS;
}

/* Test-only: who holds the subscriber slot ("" when free). */
const char* fake_cupti_holder(void) {
  return g_holder;
}
