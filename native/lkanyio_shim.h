/* lkanyio native shim: the C surface Python sees (native/_ffi_build.py reads its cdef here). */
#ifndef LKANYIO_SHIM_H
#define LKANYIO_SHIM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One queued native event: a copy of the FfiEvent bytes. */
typedef struct lk_event {
    struct lk_event *next;
    struct lk_event *prev;       /* queue order backwards: a dropped frame is unlinked */
    struct lk_event *next_frame; /* the next queued frame event of the same stream */
    uint64_t stream;             /* media frame events: the stream handle; otherwise 0 */
    uint64_t buffer;             /* media frame events: the frame's owned buffer handle, 0 once the
                                    shim released it (an audio frame copied inline) */
    uint32_t sample_rate;        /* an audio frame copied inline: its format, and its samples */
    uint32_t num_channels;       /* (samples_len bytes) right after the event's len bytes */
    uint32_t samples_per_channel;
    size_t samples_len;          /* 0 for every other event */
    size_t len;
    uint8_t data[];
} lk_event;

int lk_shim_open(const char *path, char *err, size_t errlen);
void lk_shim_initialize(bool capture_logs, const char *sdk, const char *sdk_version);
int lk_shim_wakeup_fd(void);
/* Take the whole queue; *lost (if not NULL) gets how many events were lost so far
 * because malloc failed (never frames: those are dropped and released instead). */
lk_event *lk_shim_drain(uint64_t *lost);
void lk_shim_free_events(lk_event *head);
uint64_t lk_shim_request(const uint8_t *data, size_t len, const uint8_t **res, size_t *res_len);
bool lk_shim_drop_handle(uint64_t handle);
void lk_shim_dispose(void);
void lk_shim_stats(uint64_t *queued, uint64_t *total, uint64_t *lost, uint64_t *filtered);
void lk_shim_set_log_threshold(int level);
/* Media frame events queued (each holds a native buffer) and frame events the shim dropped. */
void lk_shim_frame_stats(uint64_t *queued_frames, uint64_t *dropped_frames);
/* Bound a media stream's queued frames: drop_oldest keeps the newest `bound`, otherwise the
 * first `bound` are kept and later ones dropped.  Returns -1 when out of memory. */
int lk_shim_bound_stream(uint64_t stream, uint32_t bound, bool drop_oldest);
/* Forget a stream's bound; returns the frames the shim dropped for it. */
uint64_t lk_shim_unbound_stream(uint64_t stream);
/* Frames the shim dropped for a bounded stream so far. */
uint64_t lk_shim_stream_dropped(uint64_t stream);
/* Frame events of a bounded stream queued now (0 for a stream that is not bounded). */
uint64_t lk_shim_stream_queued(uint64_t stream);
/* For tests: queue an event as if the native core had sent it (on the caller's thread). */
void lk_shim_inject(const uint8_t *data, size_t len);
/* The wire parser, for tests: 1 and (stream, buffer) for a media frame event, else 0. */
int lk_shim_parse_frame(const uint8_t *data, size_t len, uint64_t *stream, uint64_t *buffer);
/* The strict reader of an audio frame event, for tests: 1 and its fields when the shim would
 * copy it inline (if plausible), else 0. */
int lk_shim_parse_audio(const uint8_t *data, size_t len, uint64_t *stream, uint64_t *buffer,
                        uint64_t *data_ptr, uint32_t *num_channels, uint32_t *sample_rate,
                        uint32_t *samples_per_channel);
/* Whether this process is a child of fork() made after the shim was opened. */
bool lk_shim_forked(void);
#endif
