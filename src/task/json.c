/*
 * The JSON of every answer that shows a task, written straight into a
 * buffer: no tree is built on the query path (bench/README.md, "Design
 * measurements": a jansson build + dump would cost 40 % of a query's time).
 */
#include "task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void task_fini(struct task *t)
{
    if (!t)
        return;
    free(t->spec);
    free(t->prompt);
    free(t->message);
    free(t->result);
    free(t->ref);
    memset(t, 0, sizeof(*t));
}

bool task_expired(const struct task *t, int64_t now_ms)
{
    return task_status_terminal(t->status) && t->expire_ms <= now_ms;
}

static void put_time(struct buf *b, const char *name, int64_t ms,
                     int offset_min)
{
    char ts[24];
    clock_format(ms, offset_min, ts);
    buf_printf(b, ",\"%s\":\"%s\"", name, ts);
}

/* ,"code":…,"message":… of a FAILED task (query and list alike). */
static void put_failure(struct buf *b, const struct task *t)
{
    buf_puts(b, ",\"code\":");
    buf_json_str(b, t->code[0] ? t->code : "InternalError");
    buf_puts(b, ",\"message\":");
    buf_json_str(b, t->message ? t->message : "");
}

/* usage (docs/api.md s.5): integers for t2v/i2v/r2v, two decimals for edit,
 * ratio for t2v and r2v only. */
static void put_usage(struct buf *b, const struct task *t)
{
    const struct task_model *m = task_model_find(t->model);
    enum task_kind kind = m ? m->kind : TASK_T2V;
    const struct task_usage *u = &t->usage;
    if (kind == TASK_EDIT) {
        buf_printf(b,
                   ",\"usage\":{\"duration\":%.2f,"
                   "\"input_video_duration\":%.2f,"
                   "\"output_video_duration\":%.2f",
                   u->input_s + u->output_s, u->input_s, u->output_s);
    } else {
        long long out_s = llround(u->output_s);
        buf_printf(b,
                   ",\"usage\":{\"duration\":%lld,"
                   "\"input_video_duration\":0,"
                   "\"output_video_duration\":%lld",
                   out_s, out_s);
    }
    buf_printf(b, ",\"video_count\":1,\"SR\":%d", u->sr);
    if ((kind == TASK_T2V || kind == TASK_R2V) && u->ratio[0]) {
        buf_puts(b, ",\"ratio\":");
        buf_json_str(b, u->ratio);
    }
    buf_putc(b, '}');
}

void task_json_query(struct buf *b, const char *request_id, const char *task_id,
                     const struct task *t, const struct task_view *view)
{
    buf_puts(b, "{\"request_id\":");
    buf_json_str(b, request_id);
    buf_puts(b, ",\"output\":{\"task_id\":");
    buf_json_str(b, t ? t->task_id : task_id);
    buf_puts(b, ",\"task_status\":\"");
    buf_puts(b, task_status_name(t ? t->status : TASK_UNKNOWN));
    buf_putc(b, '"');
    if (!t || t->status == TASK_UNKNOWN) {
        buf_puts(b, "}}");
        return;
    }
    int off = view->utc_offset_min;
    put_time(b, "submit_time", t->submit_ms, off);
    if (t->scheduled_ms && t->status != TASK_PENDING)
        put_time(b, "scheduled_time", t->scheduled_ms, off);
    if (task_status_terminal(t->status) && t->end_ms)
        put_time(b, "end_time", t->end_ms, off);
    if (t->status == TASK_PENDING && view->queue_position > 0) /* extension */
        buf_printf(b, ",\"queue_position\":%lld",
                   (long long)view->queue_position);
    if (t->status == TASK_RUNNING) /* extension: the engine's last report */
        buf_printf(b, ",\"progress\":%d", t->progress);
    if (t->prompt) {
        buf_puts(b, ",\"orig_prompt\":");
        buf_json_str(b, t->prompt);
    }
    if (t->status == TASK_SUCCEEDED && view->video_url) {
        buf_puts(b, ",\"video_url\":");
        buf_json_str(b, view->video_url);
    }
    if (t->status == TASK_FAILED)
        put_failure(b, t);
    buf_putc(b, '}');
    if (t->status == TASK_SUCCEEDED)
        put_usage(b, t);
    buf_putc(b, '}');
}

void task_json_list(struct buf *b, const char *request_id,
                    const struct task *tasks, size_t n, int64_t total,
                    int64_t page_no, int64_t page_size)
{
    buf_puts(b, "{\"request_id\":");
    buf_json_str(b, request_id);
    buf_printf(b,
               ",\"total\":%lld,\"total_page\":%lld,\"page_no\":%lld,"
               "\"page_size\":%lld,\"data\":[",
               (long long)total,
               (long long)((total + page_size - 1) / page_size),
               (long long)page_no, (long long)page_size);
    for (size_t i = 0; i < n; i++) {
        const struct task *t = &tasks[i];
        buf_puts(b, i ? ",{\"task_id\":" : "{\"task_id\":");
        buf_json_str(b, t->task_id);
        buf_printf(b, ",\"status\":\"%s\",\"model_name\":",
                   task_status_name(t->status));
        buf_json_str(b, t->model);
        buf_printf(b, ",\"gmt_create\":%lld", (long long)t->submit_ms);
        if (t->scheduled_ms)
            buf_printf(b, ",\"start_time\":%lld", (long long)t->scheduled_ms);
        if (task_status_terminal(t->status) && t->end_ms)
            buf_printf(b, ",\"end_time\":%lld", (long long)t->end_ms);
        if (t->status == TASK_FAILED)
            put_failure(b, t);
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
}

void task_json_submitted(struct buf *b, const char *request_id,
                         const char *task_id, enum task_status status)
{
    buf_puts(b, "{\"request_id\":");
    buf_json_str(b, request_id);
    buf_puts(b, ",\"output\":{\"task_id\":");
    buf_json_str(b, task_id);
    buf_printf(b, ",\"task_status\":\"%s\"}}", task_status_name(status));
}

void task_json_error(struct buf *b, const char *request_id, const char *code,
                     const char *message)
{
    buf_puts(b, "{\"request_id\":");
    buf_json_str(b, request_id);
    buf_puts(b, ",\"code\":");
    buf_json_str(b, code);
    buf_puts(b, ",\"message\":");
    buf_json_str(b, message);
    buf_putc(b, '}');
}
