/*
 * lkanyio native shim.
 *
 * Sits between Python and liblivekit_ffi.so:
 *   - opens the native library by path (dlopen) and resolves its four entry points;
 *   - registers a C event callback with livekit_ffi_initialize.  The native core calls it on
 *     its own tokio / audio threads, several at once.  The callback copies the event bytes
 *     (the pointer is only valid during the call), appends them to a queue under a mutex and
 *     signals a wakeup fd, once per batch.  It never touches Python: no GIL, no blocking
 *     beyond the short mutex section;
 *   - lets Python take the whole queue in one call (lk_shim_drain), which also resets the
 *     wakeup fd under the same lock, so a wakeup is never lost or doubled;
 *   - passes requests, handle drops and dispose straight through.
 *
 * Wakeup protocol (coalescing): `signaled` is set by the first event queued after a drain and
 * cleared by the drain.  Only the event that flips it writes to the fd.  The drain clears the
 * fd and `signaled` atomically with taking the queue, so an event queued after the drain
 * always writes again and one queued before it is always in the batch taken.
 *
 * fork(): the native core's threads do not exist in a child, so nothing there may call into it,
 * and the child shares the wakeup fd (and, with an inherited event loop, even the epoll set) with
 * its parent.  A pthread_atfork handler holds q_lock across fork() (so no native thread holds it
 * at that instant), releases it in the parent and re-creates it in the child, and marks the child:
 * there drain returns nothing and never reads the fd (it would swallow the parent's wakeups),
 * requests fail (handle 0) and drops and dispose do nothing.  The child's copy of the queue is
 * freed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include "lkanyio_shim.h"

typedef void (*lk_native_cb)(const uint8_t *data, size_t len);

static uint64_t (*p_request)(const uint8_t *, size_t, const uint8_t **, size_t *);
static bool (*p_drop_handle)(uint64_t);
static void (*p_initialize)(lk_native_cb, bool, const char *, const char *);
static void (*p_dispose)(void);

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static lk_event *q_head;
static lk_event *q_tail;
static int q_signaled;
static uint64_t q_queued;      /* events currently queued */
static uint64_t q_total;       /* events received since open */
static uint64_t q_lost;        /* events lost because malloc failed */

static int forked_child;       /* set in a child of fork(): the native core is not there */

static int wake_rfd = -1;      /* Python waits on this one */
static int wake_wfd = -1;      /* the callback writes here (same fd for eventfd) */

static void wake(void) {
    /* eventfd: add 1; pipe: one byte.  EAGAIN means it is already readable: fine. */
    if (wake_rfd == wake_wfd) {
        uint64_t one = 1;
        ssize_t r = write(wake_wfd, &one, sizeof one);
        (void)r;
    } else {
        char b = 1;
        ssize_t r = write(wake_wfd, &b, 1);
        (void)r;
    }
}

static void clear_wakeup(void) {
    /* Called with q_lock held.  Non-blocking: empties the counter / pipe. */
    if (wake_rfd == wake_wfd) {
        uint64_t v;
        ssize_t r = read(wake_rfd, &v, sizeof v);
        (void)r;
    } else {
        char buf[64];
        while (read(wake_rfd, buf, sizeof buf) > 0) {
        }
    }
}

/*
 * Log filtering.  With capture_logs on, the native core forwards every log record at every level
 * (thousands per second while a room is joined, mostly libwebrtc debug output) and ignores
 * RUST_LOG for them.  Waking Python for each would dominate idle CPU, so the shim drops log
 * batches in which no record is at or above the threshold before they are queued.
 *
 * Wire format (protobuf): FfiEvent.logs is field 18, length-delimited (tag bytes 0x92 0x01);
 * LogBatch.records is field 1 (tag 0x0a); LogRecord.level is field 1, a varint (tag 0x08), with
 * LOG_ERROR = 0 ... LOG_TRACE = 4.  Anything unexpected keeps the event: this filter may only
 * ever drop log records, never another event.
 */
static volatile int log_threshold = 1; /* forward records with level <= this (WARN) */
static uint64_t q_filtered;            /* log batches dropped by the filter */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Returns 1 if the event must be queued, 0 if it is a log batch with nothing to forward. */
static int keep_event(const uint8_t *data, size_t len) {
    if (len < 2 || data[0] != 0x92 || data[1] != 0x01) return 1; /* not a log batch */
    const uint8_t *p = data + 2, *end = data + len;
    uint64_t batch_len;
    if (read_varint(&p, end, &batch_len) != 0 || batch_len > (uint64_t)(end - p)) return 1;
    end = p + batch_len;
    int threshold = log_threshold;
    while (p < end) {
        uint64_t rec_len;
        if (*p++ != 0x0a || read_varint(&p, end, &rec_len) != 0 || rec_len > (uint64_t)(end - p))
            return 1;
        const uint8_t *r = p;
        uint64_t level = 0; /* proto2 default: LOG_ERROR */
        if (rec_len >= 2 && r[0] == 0x08) {
            const uint8_t *q = r + 1;
            if (read_varint(&q, p + rec_len, &level) != 0) return 1;
        }
        if ((int64_t)level <= threshold) return 1;
        p += rec_len;
    }
    return 0;
}

void lk_shim_set_log_threshold(int level) { log_threshold = level; }

/* The callback the native core calls on its threads.  Copy, queue, signal, return. */
static void on_native_event(const uint8_t *data, size_t len) {
    if (!keep_event(data, len)) {
        pthread_mutex_lock(&q_lock);
        q_filtered++;
        pthread_mutex_unlock(&q_lock);
        return;
    }
    lk_event *ev = (lk_event *)malloc(sizeof(lk_event) + (len ? len : 1));
    if (ev == NULL) {
        pthread_mutex_lock(&q_lock);
        q_lost++;
        pthread_mutex_unlock(&q_lock);
        return;
    }
    ev->next = NULL;
    ev->len = len;
    if (len) memcpy(ev->data, data, len);

    int need_wake;
    pthread_mutex_lock(&q_lock);
    if (q_tail) q_tail->next = ev; else q_head = ev;
    q_tail = ev;
    q_queued++;
    q_total++;
    need_wake = !q_signaled;
    q_signaled = 1;
    pthread_mutex_unlock(&q_lock);
    if (need_wake) wake();
}

static void before_fork(void) { pthread_mutex_lock(&q_lock); }

static void after_fork_parent(void) { pthread_mutex_unlock(&q_lock); }

static void after_fork_child(void) {
    /* Only this thread exists now; the lock was held by it across fork(): make a fresh one. */
    pthread_mutex_init(&q_lock, NULL);
    forked_child = 1;
    lk_event *head = q_head;
    q_head = q_tail = NULL;
    q_queued = 0;
    q_signaled = 1; /* never signal: nothing in this process waits for the parent's events */
    while (head) {
        lk_event *next = head->next;
        free(head);
        head = next;
    }
}

static int set_flags(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -1;
    return 0;
}

int lk_shim_open(const char *path, char *err, size_t errlen) {
    if (p_request) return 0; /* already open: one native library per process */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "dlopen failed: %s", dlerror());
        return -1;
    }
    p_request = (uint64_t(*)(const uint8_t *, size_t, const uint8_t **, size_t *))dlsym(h, "livekit_ffi_request");
    p_drop_handle = (bool (*)(uint64_t))dlsym(h, "livekit_ffi_drop_handle");
    p_initialize = (void (*)(lk_native_cb, bool, const char *, const char *))dlsym(h, "livekit_ffi_initialize");
    p_dispose = (void (*)(void))dlsym(h, "livekit_ffi_dispose");
    if (!p_request || !p_drop_handle || !p_initialize || !p_dispose) {
        snprintf(err, errlen, "%s does not export the livekit_ffi_* entry points", path);
        p_request = NULL;
        return -1;
    }
#ifdef __linux__
    wake_rfd = wake_wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_rfd < 0) {
        snprintf(err, errlen, "eventfd failed: %s", strerror(errno));
        p_request = NULL;
        return -1;
    }
#else
    int fds[2];
    if (pipe(fds) != 0 || set_flags(fds[0]) != 0 || set_flags(fds[1]) != 0) {
        snprintf(err, errlen, "pipe failed: %s", strerror(errno));
        p_request = NULL;
        return -1;
    }
    wake_rfd = fds[0];
    wake_wfd = fds[1];
#endif
    (void)set_flags;
    if (pthread_atfork(before_fork, after_fork_parent, after_fork_child) != 0) {
        snprintf(err, errlen, "pthread_atfork failed");
        p_request = NULL;
        return -1;
    }
    return 0;
}

void lk_shim_initialize(bool capture_logs, const char *sdk, const char *sdk_version) {
    p_initialize(on_native_event, capture_logs, sdk, sdk_version);
}

int lk_shim_wakeup_fd(void) { return wake_rfd; }

lk_event *lk_shim_drain(void) {
    if (forked_child) return NULL; /* the fd and its wakeups belong to the parent */
    pthread_mutex_lock(&q_lock);
    lk_event *head = q_head;
    q_head = q_tail = NULL;
    q_queued = 0;
    q_signaled = 0;
    clear_wakeup();
    pthread_mutex_unlock(&q_lock);
    return head;
}

void lk_shim_free_events(lk_event *head) {
    while (head) {
        lk_event *next = head->next;
        free(head);
        head = next;
    }
}

uint64_t lk_shim_request(const uint8_t *data, size_t len, const uint8_t **res, size_t *res_len) {
    if (forked_child) return 0; /* no native threads here: a request would never be served */
    return p_request(data, len, res, res_len);
}

bool lk_shim_drop_handle(uint64_t handle) { return forked_child ? false : p_drop_handle(handle); }

void lk_shim_dispose(void) {
    if (!forked_child) p_dispose();
}

bool lk_shim_forked(void) { return forked_child != 0; }

void lk_shim_stats(uint64_t *queued, uint64_t *total, uint64_t *lost, uint64_t *filtered) {
    pthread_mutex_lock(&q_lock);
    *queued = q_queued;
    *total = q_total;
    *lost = q_lost;
    *filtered = q_filtered;
    pthread_mutex_unlock(&q_lock);
}
