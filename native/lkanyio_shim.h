/* lkanyio native shim: the C surface Python sees (native/_native_build.py reads its cdef here). */
#ifndef LKANYIO_SHIM_H
#define LKANYIO_SHIM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One queued native event: a copy of the FfiEvent bytes. */
typedef struct lk_event {
    struct lk_event *next;
    size_t len;
    uint8_t data[];
} lk_event;

int lk_shim_open(const char *path, char *err, size_t errlen);
void lk_shim_initialize(bool capture_logs, const char *sdk, const char *sdk_version);
int lk_shim_wakeup_fd(void);
lk_event *lk_shim_drain(void);
void lk_shim_free_events(lk_event *head);
uint64_t lk_shim_request(const uint8_t *data, size_t len, const uint8_t **res, size_t *res_len);
bool lk_shim_drop_handle(uint64_t handle);
void lk_shim_dispose(void);
void lk_shim_stats(uint64_t *queued, uint64_t *total, uint64_t *lost, uint64_t *filtered);
void lk_shim_set_log_threshold(int level);
/* Whether this process is a child of fork() made after the shim was opened. */
bool lk_shim_forked(void);
#endif
