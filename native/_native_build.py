"""cffi builder for ``lkanyio._native`` (out-of-line, API mode).

Run by setuptools through ``cffi_modules`` in ``setup.py``.  The module contains only the small C
shim in ``lkanyio_shim.c``; the LiveKit native library itself is opened by path at run time.
"""

from cffi import FFI

CDEF = """
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
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "lkanyio._native",
    '#include "lkanyio_shim.h"',
    # Relative to the project root, where setuptools (and `python native/_native_build.py`)
    # run: setuptools refuses absolute source paths.
    sources=["native/lkanyio_shim.c"],
    include_dirs=["native"],
    libraries=["dl", "pthread"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
