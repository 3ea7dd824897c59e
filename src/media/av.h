/*
 * Private to src/media (not part of the module's interface): the libav
 * set-up shared by the writer and the readers.
 */
#ifndef PADDOCK_MEDIA_AV_H
#define PADDOCK_MEDIA_AV_H

/* Once per process, from any thread: route libav's log to log/ (warnings
 * and errors only) and cap libav's allocations at MEDIA_MAX_ALLOC. */
void media__av_init(void);

#endif
