/*
 * The process-wide libav settings media/ relies on, made once on first
 * use: where libav's messages go and how much one allocation may take.
 */
#include "av.h"
#include "media.h"

#include "../log/log.h"

#include <libavutil/log.h>
#include <libavutil/mem.h>

#include <pthread.h>

/* libav logs to stderr by default, line fragments included; send warnings
 * and errors through log/ as whole lines instead, and drop the chatter
 * (libx264's per-run statistics are printed at INFO). */
static void av_log_to_log(void *avcl, int level, const char *fmt, va_list vl)
{
    /* av_log_set_level still silences libav (the fuzzer does). */
    if (level > AV_LOG_WARNING || level > av_log_get_level())
        return;
    char line[LIMIT_ERRMSG];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &prefix);
    for (char *p = line; *p; p++)
        if (*p == '"' || *p == '\n' || *p == '\r')
            *p = *p == '"' ? '\'' : ' ';
    log_write(level <= AV_LOG_ERROR ? LOG_ERROR : LOG_WARN, "libav",
              "detail=\"%s\"", line);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void setup(void)
{
    av_log_set_callback(av_log_to_log);
    /* A hostile file can make a demuxer or decoder ask for gigabytes (an
     * index with a billion entries); refuse any one request over the cap
     * rather than let the process be killed. */
    av_max_alloc(MEDIA_MAX_ALLOC);
}

void media__av_init(void)
{
    pthread_once(&once, setup);
}
