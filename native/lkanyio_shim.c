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
 *     wakeup fd under the same lock, so a wakeup is never lost;
 *   - bounds what the queue holds of media frames (see "Frame bounds" below);
 *   - passes requests, handle drops and dispose straight through.
 *
 * Wakeup protocol (coalescing): `signaled` is set by the first event queued after a drain and
 * cleared by the drain.  Only the event that flips it writes to the fd, after unlocking.  The
 * drain clears the fd and `signaled` atomically with taking the queue, so an event queued after
 * the drain always writes again and one queued before it is always in the batch taken.  A
 * drain between a flip and its write (a lone request spinning on the queue drains often) takes
 * that event and leaves the fd to become readable over an empty queue: the next pump finds
 * nothing.  Writing under the lock would close that window, but the spinning drain then waits
 * on the lock for the write (measured: round trip p50 30-47 -> 40-59 us).
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
static uint64_t q_frames;      /* media frame events queued (each holds a native buffer) */
static uint64_t q_frames_dropped; /* frame events the shim dropped and released */

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


/*
 * Frame bounds.  Every queued video frame event owns a native buffer (1.4 MB for a 720p I420
 * frame) until Python drops its handle, and Python drops it only when it drains (an audio frame
 * event mostly holds a copy of its samples instead: "Audio frames copied inline").  While
 * the loop does not drain, an unbounded queue held them all: 300 synchronous 720p captures on a
 * VideoStream(max_buffered=2) left 75-90 frame events queued and RSS grew 47 -> 143-161 MB.
 * So the shim applies the Python stream's own policy before Python sees the frames:
 *   - a bounded "drop_oldest" stream keeps its newest `bound` queued frame events: the oldest
 *     beyond that is unlinked, its buffer dropped and counted (Python would have dropped it
 *     the moment the newer ones arrived, so what the consumer sees does not change);
 *   - a bounded "fail" stream keeps its first `bound` (its max_buffered + 1, enough for Python
 *     to see the overflow and end the stream); later ones are dropped as they arrive (Python
 *     would never have routed them);
 *   - frames of any other stream (not yet bounded, or already released) share one global
 *     drop-oldest bound of OTHER_BOUND.
 * Only frame_received events are ever dropped: callbacks, end-of-stream and every other event
 * are always queued in order.  The buffer handle is dropped on the native thread calling us,
 * after q_lock is released (the core holds no lock of its own while it calls back: measured,
 * 435 drops from inside callbacks during 3,000 synchronous 720p captures, no hang, RSS flat).
 *
 * Wire format (protobuf field numbers from the wheel's descriptors; tests/test_shim_queue.py
 * checks them against ffi_pb2/video_frame_pb2/audio_frame_pb2 and drives this parser):
 * FfiEvent.video_stream_event = 3, .audio_stream_event = 4; {Video,Audio}StreamEvent
 * .stream_handle = 1 (varint), .frame_received = 2; VideoFrameReceived.buffer = 1,
 * AudioFrameReceived.frame = 1; Owned{Video,AudioFrame}Buffer.handle = 1; FfiOwnedHandle.id = 1.
 */
#define FFI_EVENT_VIDEO_STREAM_EVENT 3
#define FFI_EVENT_AUDIO_STREAM_EVENT 4
#define STREAM_EVENT_STREAM_HANDLE 1
#define STREAM_EVENT_FRAME_RECEIVED 2
#define FRAME_RECEIVED_BUFFER 1
#define OWNED_BUFFER_HANDLE 1
#define OWNED_HANDLE_ID 1
#define OTHER_BOUND 8

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* Finds field `num` in a message; for WIRE_LEN sets [*out, *out_end), for varints *value.
 * Returns 1 if found with the expected wire type, 0 if absent, -1 if malformed. */
static int find_field(const uint8_t *p, const uint8_t *end, uint64_t num, int wire,
                      const uint8_t **out, const uint8_t **out_end, uint64_t *value) {
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag) != 0) return -1;
        int wt = (int)(tag & 7);
        switch (wt) {
        case WIRE_VARINT:
            if (read_varint(&p, end, &v) != 0) return -1;
            if ((tag >> 3) == num && wire == WIRE_VARINT) {
                *value = v;
                return 1;
            }
            break;
        case WIRE_I64:
            if (end - p < 8) return -1;
            p += 8;
            break;
        case WIRE_I32:
            if (end - p < 4) return -1;
            p += 4;
            break;
        case WIRE_LEN:
            if (read_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p)) return -1;
            if ((tag >> 3) == num && wire == WIRE_LEN) {
                *out = p;
                *out_end = p + v;
                return 1;
            }
            p += v;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

int lk_shim_parse_frame(const uint8_t *data, size_t len, uint64_t *stream, uint64_t *buffer) {
    const uint8_t *end = data + len, *a, *b;
    uint64_t unused;
    int r = find_field(data, end, FFI_EVENT_VIDEO_STREAM_EVENT, WIRE_LEN, &a, &b, &unused);
    if (r != 1) r = find_field(data, end, FFI_EVENT_AUDIO_STREAM_EVENT, WIRE_LEN, &a, &b, &unused);
    if (r != 1) return 0;
    uint64_t handle = 0, id = 0;
    const uint8_t *f, *fe;
    if (find_field(a, b, STREAM_EVENT_STREAM_HANDLE, WIRE_VARINT, NULL, NULL, &handle) != 1 ||
        find_field(a, b, STREAM_EVENT_FRAME_RECEIVED, WIRE_LEN, &f, &fe, &unused) != 1 ||
        find_field(f, fe, FRAME_RECEIVED_BUFFER, WIRE_LEN, &a, &b, &unused) != 1 ||
        find_field(a, b, OWNED_BUFFER_HANDLE, WIRE_LEN, &f, &fe, &unused) != 1 ||
        find_field(f, fe, OWNED_HANDLE_ID, WIRE_VARINT, NULL, NULL, &id) != 1 || id == 0)
        return 0; /* not a frame (eos), or not parsed: queued like any other event */
    *stream = handle;
    *buffer = id;
    return 1;
}

/*
 * Audio frames copied inline.  An audio frame's samples are small (960 bytes for 10 ms of 48 kHz
 * mono), so the shim copies them right behind the event's bytes, here on the native thread, and
 * releases the native buffer at once: the event loop routes the frame without a parse and holds
 * no native memory for it.  Only an event the shim reads exactly as a whole protobuf parse would
 * is inlined: on the path from the envelope to the samples every message holds only the fields
 * named below, each exactly once with its wire type, tags and lengths at most 5 bytes long and
 * other varints at most 10 (as upb reads them), the uint32 ones in range (a repeated field
 * would be merged or replaced by protobuf, an unknown one could be a oneof member that wins);
 * and the frame must be plausible (a non-null pointer, at least one channel, sample and sample
 * per second, at most INLINE_MAX_BYTES of samples).  Every other frame event keeps its buffer
 * and takes the parsed path.
 * AudioStreamEvent.eos = 3; OwnedAudioFrameBuffer.info = 2; AudioFrameBufferInfo.data_ptr = 1,
 * .num_channels = 2, .sample_rate = 3, .samples_per_channel = 4 (varints).
 */
#define AUDIO_STREAM_EVENT_EOS 3
#define OWNED_BUFFER_INFO 2
#define INFO_DATA_PTR 1
#define INFO_NUM_CHANNELS 2
#define INFO_SAMPLE_RATE 3
#define INFO_SAMPLES_PER_CHANNEL 4
#define INLINE_MAX_BYTES ((uint64_t)1 << 20)

typedef struct lk_field {
    uint64_t num;
    int wire;
    int count;           /* occurrences so far: read_exactly wants exactly one */
    const uint8_t *p;    /* WIRE_LEN: the field's bytes */
    const uint8_t *end;
    uint64_t value;      /* WIRE_VARINT */
} lk_field;

/* A varint of at most 10 bytes whose 10th byte holds only bit 63, as protobuf requires. */
static int read_varint_strict(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    const uint8_t *start = *p;
    if (read_varint(p, end, out) != 0) return -1;
    if (*p - start == 10 && start[9] > 1) return -1;
    return 0;
}

/* A tag or a length: protobuf (upb) reads those as 32-bit varints, at most 5 bytes long. */
static int read_varint32(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    const uint8_t *start = *p;
    if (read_varint(p, end, out) != 0 || *p - start > 5 || *out > UINT32_MAX) return -1;
    return 0;
}

/* Reads every field of a message into `want`.  Returns 0 when each wanted field occurs exactly
 * once with its wire type and nothing else occurs; -1 otherwise (absent, repeated, unknown,
 * wrong wire type, malformed). */
static int read_exactly(const uint8_t *p, const uint8_t *end, lk_field *want, int n) {
    while (p < end) {
        uint64_t tag, v = 0;
        const uint8_t *start = NULL;
        if (read_varint32(&p, end, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
            return -1;
        int wt = (int)(tag & 7);
        if (wt == WIRE_VARINT) {
            if (read_varint_strict(&p, end, &v) != 0) return -1;
        } else if (wt == WIRE_LEN) {
            if (read_varint32(&p, end, &v) != 0 || v > (uint64_t)(end - p)) return -1;
            start = p;
            p += v;
        } else {
            return -1; /* none of the fields read here has another wire type */
        }
        int i = 0;
        while (i < n && want[i].num != (tag >> 3)) i++;
        if (i == n || want[i].wire != wt || want[i].count++ > 0) return -1;
        want[i].value = v;
        want[i].p = start;
        want[i].end = start ? p : NULL;
    }
    for (int i = 0; i < n; i++)
        if (want[i].count != 1) return -1;
    return 0;
}

int lk_shim_parse_audio(const uint8_t *data, size_t len, uint64_t *stream, uint64_t *buffer,
                        uint64_t *data_ptr, uint32_t *num_channels, uint32_t *sample_rate,
                        uint32_t *samples_per_channel) {
    lk_field envelope[] = {{FFI_EVENT_AUDIO_STREAM_EVENT, WIRE_LEN, 0, NULL, NULL, 0}};
    if (read_exactly(data, data + len, envelope, 1) != 0) return 0;
    lk_field event[] = {{STREAM_EVENT_STREAM_HANDLE, WIRE_VARINT, 0, NULL, NULL, 0},
                        {STREAM_EVENT_FRAME_RECEIVED, WIRE_LEN, 0, NULL, NULL, 0}};
    if (read_exactly(envelope[0].p, envelope[0].end, event, 2) != 0) return 0;
    lk_field received[] = {{FRAME_RECEIVED_BUFFER, WIRE_LEN, 0, NULL, NULL, 0}};
    if (read_exactly(event[1].p, event[1].end, received, 1) != 0) return 0;
    lk_field owned[] = {{OWNED_BUFFER_HANDLE, WIRE_LEN, 0, NULL, NULL, 0},
                        {OWNED_BUFFER_INFO, WIRE_LEN, 0, NULL, NULL, 0}};
    if (read_exactly(received[0].p, received[0].end, owned, 2) != 0) return 0;
    lk_field handle[] = {{OWNED_HANDLE_ID, WIRE_VARINT, 0, NULL, NULL, 0}};
    if (read_exactly(owned[0].p, owned[0].end, handle, 1) != 0) return 0;
    lk_field info[] = {{INFO_DATA_PTR, WIRE_VARINT, 0, NULL, NULL, 0},
                       {INFO_NUM_CHANNELS, WIRE_VARINT, 0, NULL, NULL, 0},
                       {INFO_SAMPLE_RATE, WIRE_VARINT, 0, NULL, NULL, 0},
                       {INFO_SAMPLES_PER_CHANNEL, WIRE_VARINT, 0, NULL, NULL, 0}};
    if (read_exactly(owned[1].p, owned[1].end, info, 4) != 0) return 0;
    for (int i = 1; i < 4; i++)
        if (info[i].value > UINT32_MAX) return 0; /* protobuf would truncate it */
    *stream = event[0].value;
    *buffer = handle[0].value;
    *data_ptr = info[0].value;
    *num_channels = (uint32_t)info[1].value;
    *sample_rate = (uint32_t)info[2].value;
    *samples_per_channel = (uint32_t)info[3].value;
    return 1;
}

typedef struct lk_audio_fmt {
    uint32_t sample_rate, num_channels, samples_per_channel;
} lk_audio_fmt;

/* The bytes of samples to copy inline for this event, with its stream, buffer and format; or 0
 * (nothing set) to leave it to lk_shim_parse_frame and the parsed path.  Tried first: an event
 * that is not an audio stream event is refused at its first field. */
static size_t inline_audio(const uint8_t *data, size_t len, uint64_t *stream, uint64_t *buffer,
                           lk_audio_fmt *fmt, uint64_t *data_ptr) {
    uint64_t s, b, ptr;
    uint32_t channels, rate, samples;
    if (lk_shim_parse_audio(data, len, &s, &b, &ptr, &channels, &rate, &samples) != 1 ||
        ptr == 0 || channels == 0 || rate == 0 || samples == 0)
        return 0;
    if (channels > INLINE_MAX_BYTES || samples > INLINE_MAX_BYTES) return 0;
    uint64_t bytes = (uint64_t)channels * samples * 2; /* both <= 2^20: no overflow */
    if (bytes > INLINE_MAX_BYTES) return 0;
    fmt->sample_rate = rate;
    fmt->num_channels = channels;
    fmt->samples_per_channel = samples;
    *data_ptr = ptr;
    *stream = s;
    *buffer = b;
    return (size_t)bytes;
}

typedef struct lk_stream {
    uint64_t handle;
    uint32_t bound;
    bool drop_oldest;
    uint32_t queued;             /* its frame events in the queue now */
    lk_event *first, *last;      /* those events, oldest first (next_frame) */
    uint64_t dropped;
} lk_stream;

static lk_stream *streams;     /* bounded streams (few: one per open Audio/VideoStream) */
static size_t n_streams, cap_streams;
static lk_stream other_streams = {0, OTHER_BOUND, true, 0, NULL, NULL, 0};

static lk_stream *find_stream(uint64_t handle) {
    for (size_t i = 0; i < n_streams; i++)
        if (streams[i].handle == handle) return &streams[i];
    return NULL;
}

int lk_shim_bound_stream(uint64_t handle, uint32_t bound, bool drop_oldest) {
    int rc = 0;
    pthread_mutex_lock(&q_lock);
    lk_stream *st = find_stream(handle);
    if (st == NULL && n_streams == cap_streams) {
        size_t cap = cap_streams ? 2 * cap_streams : 8;
        lk_stream *grown = (lk_stream *)realloc(streams, cap * sizeof *grown);
        if (grown == NULL) rc = -1; else { streams = grown; cap_streams = cap; }
    }
    if (rc == 0 && st == NULL) {
        st = &streams[n_streams++];
        memset(st, 0, sizeof *st);
        st->handle = handle;
    }
    if (rc == 0) {
        /* Frames queued before the bound stay in the shared chain: they are few (OTHER_BOUND). */
        st->bound = bound ? bound : 1;
        st->drop_oldest = drop_oldest;
    }
    pthread_mutex_unlock(&q_lock);
    return rc;
}

/* Called with q_lock held: the stream's frames queued now move to the shared chain. */
static void move_to_others(lk_stream *st) {
    lk_event *next;
    for (lk_event *ev = st->first; ev; ev = next) {
        next = ev->next_frame;
        ev->next_frame = NULL;
        if (other_streams.last) other_streams.last->next_frame = ev; else other_streams.first = ev;
        other_streams.last = ev;
        other_streams.queued++;
    }
}

uint64_t lk_shim_unbound_stream(uint64_t handle) {
    uint64_t dropped = 0;
    pthread_mutex_lock(&q_lock);
    lk_stream *st = find_stream(handle);
    if (st) {
        dropped = st->dropped;
        /* Its queued frames are unrouted from now on: appended to the shared chain (its order
         * then only approximates queue order, which only decides which unrouted frame is
         * released first: Python releases every one of them anyway). */
        move_to_others(st);
        *st = streams[--n_streams];
    }
    pthread_mutex_unlock(&q_lock);
    return dropped;
}

uint64_t lk_shim_stream_dropped(uint64_t handle) {
    pthread_mutex_lock(&q_lock);
    lk_stream *st = find_stream(handle);
    uint64_t dropped = st ? st->dropped : 0;
    pthread_mutex_unlock(&q_lock);
    return dropped;
}

uint64_t lk_shim_stream_queued(uint64_t handle) {
    pthread_mutex_lock(&q_lock);
    lk_stream *st = find_stream(handle);
    uint64_t queued = st ? st->queued : 0;
    pthread_mutex_unlock(&q_lock);
    return queued;
}

/* Called with q_lock held: unlink the oldest queued frame event of `st` from the queue. */
static void unlink_oldest(lk_stream *st) {
    lk_event *ev = st->first;
    st->first = ev->next_frame;
    if (st->first == NULL) st->last = NULL;
    st->queued--;
    if (ev->prev) ev->prev->next = ev->next; else q_head = ev->next;
    if (ev->next) ev->next->prev = ev->prev; else q_tail = ev->prev;
    q_queued--;
    q_frames--;
}

/* The callback the native core calls on its threads.  Copy, queue, signal, return. */
static void on_native_event(const uint8_t *data, size_t len) {
    if (!keep_event(data, len)) {
        pthread_mutex_lock(&q_lock);
        q_filtered++;
        pthread_mutex_unlock(&q_lock);
        return;
    }
    uint64_t stream = 0, buffer = 0, samples_ptr = 0;
    lk_audio_fmt fmt = {0, 0, 0};
    size_t samples = inline_audio(data, len, &stream, &buffer, &fmt, &samples_ptr);
    int frame = samples ? 1 : lk_shim_parse_frame(data, len, &stream, &buffer);
    lk_event *ev = (lk_event *)malloc(sizeof(lk_event) + len + samples + 1);
    if (ev == NULL) {
        int lost_wake = 0;
        pthread_mutex_lock(&q_lock);
        if (frame) {
            /* A frame may be dropped (as its stream's policy would): release it, count it. */
            lk_stream *st = find_stream(stream);
            if (st) st->dropped++;
            q_frames_dropped++;
        } else {
            /* Python fails every pending request loudly when this grows; wake it as an event
             * would, or it would not drain (nor learn of the loss) until the next event. */
            q_lost++;
            lost_wake = !q_signaled;
            q_signaled = 1;
        }
        pthread_mutex_unlock(&q_lock);
        if (frame) p_drop_handle(buffer);
        if (lost_wake) wake();
        return;
    }
    ev->next = ev->prev = ev->next_frame = NULL;
    ev->stream = frame ? stream : 0;
    ev->buffer = frame ? buffer : 0;
    ev->sample_rate = fmt.sample_rate;
    ev->num_channels = fmt.num_channels;
    ev->samples_per_channel = fmt.samples_per_channel;
    ev->samples_len = samples;
    ev->len = len;
    if (len) memcpy(ev->data, data, len);
    if (samples) {
        /* The buffer is valid until its handle is dropped: copy, then release it (below). */
        memcpy(ev->data + len, (const void *)(uintptr_t)samples_ptr, samples);
        ev->buffer = 0;
    }

    int need_wake = 0;
    lk_event *victim = NULL; /* a frame event dropped to make room: freed after unlocking */
    pthread_mutex_lock(&q_lock);
    if (frame) {
        lk_stream *st = find_stream(stream);
        if (st == NULL) st = &other_streams;
        if (st->queued >= st->bound) {
            if (st != &other_streams) st->dropped++;
            q_frames_dropped++;
            if (st->drop_oldest) {
                victim = st->first;
                unlink_oldest(st);
            } else {
                victim = ev; /* a "fail" stream keeps the frames that show its overflow */
            }
        }
        if (victim != ev) {
            if (st->last) st->last->next_frame = ev; else st->first = ev;
            st->last = ev;
            st->queued++;
            q_frames++;
        }
    }
    if (victim != ev) {
        ev->prev = q_tail;
        if (q_tail) q_tail->next = ev; else q_head = ev;
        q_tail = ev;
        q_queued++;
        need_wake = !q_signaled;
        q_signaled = 1;
    }
    q_total++;
    pthread_mutex_unlock(&q_lock);
    if (samples) p_drop_handle(buffer); /* its samples are in the event now */
    if (victim) {
        if (victim->buffer) p_drop_handle(victim->buffer); /* 0: inline audio, released */
        free(victim);
    }
    if (need_wake) wake();
}

/* Called with q_lock held when the queue is emptied: no frame event is queued any more. */
static void reset_frames(void) {
    for (size_t i = 0; i < n_streams; i++) {
        streams[i].queued = 0;
        streams[i].first = streams[i].last = NULL;
    }
    other_streams.queued = 0;
    other_streams.first = other_streams.last = NULL;
    q_frames = 0;
}

void lk_shim_inject(const uint8_t *data, size_t len) {
    if (!forked_child) on_native_event(data, len);
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
    reset_frames();
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

lk_event *lk_shim_drain(uint64_t *lost) {
    if (forked_child) return NULL; /* the fd and its wakeups belong to the parent */
    pthread_mutex_lock(&q_lock);
    /* Read under the same lock, so Python learns of a loss on the drain that follows it (a
     * separate locked call for it measured 0.17 us per drain, a third of an empty drain's 0.48). */
    if (lost) *lost = q_lost;
    lk_event *head = q_head;
    q_head = q_tail = NULL;
    q_queued = 0;
    reset_frames();
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

void lk_shim_frame_stats(uint64_t *queued_frames, uint64_t *dropped_frames) {
    pthread_mutex_lock(&q_lock);
    *queued_frames = q_frames;
    *dropped_frames = q_frames_dropped;
    pthread_mutex_unlock(&q_lock);
}
