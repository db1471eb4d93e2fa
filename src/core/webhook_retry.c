/* webhook_retry.c - the retry schedule of webhook deliveries (see webhook_retry.h). */
#include "core/webhook_retry.h"

int webhook_acknowledged(long status) {
  return status >= 200 && status <= 299;
}

int64_t webhook_retry_at(int tries, int64_t now, int64_t base_ms) {
  if (tries < 1 || tries > WEBHOOK_RETRIES || base_ms < 1)
    return -1;
  return now + base_ms * ((int64_t)1 << (tries - 1));
}
