/*
 * libFuzzer target for media/'s readers: any bytes, as an image and as a
 * video, through the same functions the sandbox uses (media_probe is
 * exactly these opens). Whatever opens is checked against the API rules
 * (task_media_check),
 * fitted to a small size and, for a video, read for a few frames and a
 * frame's worth of audio. A crash, a leak, a sanitizer report or a hang
 * (-timeout) is a bug; every refusal is fine.
 */
#include "../src/media/media.h"

#include <libavutil/log.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        /* libav's complaints about hostile input are the expected case. */
        av_log_set_level(AV_LOG_QUIET);
        quiet = true;
    }
    struct media_src src = { .data = data, .size = size };
    struct errmsg err = { 0 };

    struct media_image *img = NULL;
    if (media_image_open(&src, "media[0]", &img, &err) == 0) {
        struct media_picture p;
        task_media_check(media_image_info(img), TASK_RULE_REFERENCE, "media[0]",
                         &err);
        if (media_image_fit(img, 34, 18, &p, &err) == 0)
            media_picture_fini(&p);
        media_image_free(img);
    }

    struct media_video *v = NULL;
    if (media_video_open(&src, "media[0]", &v, &err) == 0) {
        task_media_check(media_video_info(v), TASK_RULE_VIDEO, "media[0]",
                         &err);
        for (int i = 0; i < 4; i++) {
            struct media_frame f;
            if (media_video_frame_at(v, i * 6, 24, 34, 18, &f, &err) < 0)
                break;
        }
        int16_t pcm[2 * (MEDIA_AUDIO_RATE / MEDIA_FPS)];
        int got = 0;
        media_video_audio(v, pcm, MEDIA_AUDIO_RATE / MEDIA_FPS, &got, &err);
        media_video_free(v);
    }
    return 0;
}
