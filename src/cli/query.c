/*
 * paddock get, cancel, list and download: one call each (download then
 * fetches the video), shown as text or, with --json, as the server said.
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FIELD_WIDTH 16 /* "scheduled_time" and two spaces */
#define FIELD_KEY   40 /* bytes of a field name shown */

static void task_path(char *out, size_t size, const char *task_id,
                      const char *tail)
{
    snprintf(out, size, HH_TASKS_PATH "%s%s", task_id, tail);
}

/* A JSON value as text: strings cleaned, numbers as numbers. */
static void put_value(FILE *f, json_t *v)
{
    if (json_is_string(v)) {
        cli_put_clean(f, json_string_value(v), CLI_SHOW_MAX);
    } else if (json_is_integer(v)) {
        fprintf(f, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(f, "%g", json_real_value(v));
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        cli_put_clean(f, s ? s : "?", CLI_SHOW_MAX);
        free(s);
    }
}

/* The name column's width: the longest name shown, and two spaces. */
static int field_width(json_t *obj, const char *prefix, int width)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t n = strlen(prefix) + strnlen(key, FIELD_KEY) + 2;
        if ((int)n > width)
            width = (int)n;
    }
    return width;
}

static void put_fields(json_t *obj, const char *prefix, int width)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        char name[FIELD_KEY + 16];
        snprintf(name, sizeof(name), "%s%.*s", prefix, FIELD_KEY, key);
        cli_put_clean(stdout, name, sizeof(name));
        fprintf(stdout, "%*s", width - (int)strlen(name), "");
        put_value(stdout, v);
        fputc('\n', stdout);
    }
}

int cli_cmd_get(struct cli *c)
{
    struct hh_answer a = { 0 };
    struct hh_task t;
    char path[HH_ID_MAX + 32];

    task_path(path, sizeof(path), c->o.task_id, "");
    int ret = cli_connect(c);
    if (ret != CLI_EXIT_OK ||
        (ret = cli_call(c, "GET", path, &a)) != CLI_EXIT_OK)
        goto out;
    json_t *output = a.output;
    hh_task_read(&a, &t);
    if (t.status == HH_NONE) {
        cli_print_json(c, &a);
        fprintf(stderr, "paddock: HTTP 200 but the answer has no "
                        "output.task_status\n");
        ret = CLI_EXIT_HTTP;
        goto out;
    }
    if (c->o.json) {
        cli_print_json(c, &a);
    } else {
        json_t *usage = json_object_get(a.json, "usage");
        if (!json_is_object(usage))
            usage = NULL;
        int width = field_width(output, "", FIELD_WIDTH);
        if (usage)
            width = field_width(usage, "usage.", width);
        put_fields(output, "", width);
        if (usage)
            put_fields(usage, "usage.", width);
    }
    if (t.status == HH_UNKNOWN && !c->o.json)
        cli_report_status(c->o.task_id, &t); /* say what it means */
    ret = t.status == HH_FAILED || t.status == HH_CANCELED ||
                  t.status == HH_UNKNOWN
              ? CLI_EXIT_TASK
              : CLI_EXIT_OK;
out:
    hh_answer_fini(&a);
    return ret;
}

int cli_cmd_cancel(struct cli *c)
{
    struct hh_answer a = { 0 };
    char path[HH_ID_MAX + 32];

    task_path(path, sizeof(path), c->o.task_id, "/cancel");
    int ret = cli_connect(c);
    if (ret == CLI_EXIT_OK)
        ret = cli_call(c, "POST", path, &a);
    if (ret == CLI_EXIT_OK) {
        if (c->o.json)
            cli_print_json(c, &a);
        else
            printf("canceled %s\n", c->o.task_id);
    }
    hh_answer_fini(&a);
    return ret;
}

/* ------------------------------------------------------------------ list */

/* "&name=value" (or "?..." first), the value percent-encoded. */
static void put_param(struct buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_printf(b, "%c%s=", strchr(b->data ? b->data : "", '?') ? '&' : '?',
               name);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            buf_putc(b, (char)*p);
        } else {
            buf_putc(b, '%');
            buf_putc(b, hex[*p >> 4]);
            buf_putc(b, hex[*p & 15]);
        }
    }
}

static int list_path(const struct cli_opts *o, struct buf *b,
                     struct errmsg *err)
{
    static const char *const states[] = { "PENDING", "RUNNING", "SUCCEEDED",
                                          "FAILED", "CANCELED" };
    char model[LIMIT_MODEL_NAME + 1];
    int64_t v;

    buf_puts(b, "/api/v1/tasks");
    if (o->status) {
        const char *st = NULL;
        for (size_t i = 0; i < ARRAY_LEN(states); i++)
            if (strcasecmp(o->status, states[i]) == 0)
                st = states[i];
        if (!st)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--status: '%.*s' is not PENDING, RUNNING, "
                              "SUCCEEDED, FAILED or CANCELED",
                              40, o->status);
        put_param(b, "status", st);
    }
    if (o->model) {
        if (cli_model(o->model, model, err) < 0)
            return err->code;
        put_param(b, "model_name", model);
    }
    if (o->page) {
        if (parse_i64(o->page, 1, 1000000, &v) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--page: '%.*s' is not an integer from 1 to "
                              "1000000",
                              40, o->page);
        put_param(b, "page_no", o->page);
    }
    if (o->page_size) {
        if (parse_i64(o->page_size, 1, 100, &v) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--page-size: '%.*s' is not an integer from 1 "
                              "to 100",
                              40, o->page_size);
        put_param(b, "page_size", o->page_size);
    }
    return 0;
}

/* An epoch-milliseconds time in local time, or a string as given. */
static void put_time(json_t *v, int width)
{
    char s[32] = "-";
    if (json_is_integer(v)) {
        time_t t = (time_t)(json_integer_value(v) / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
    } else if (json_is_string(v)) {
        snprintf(s, sizeof(s), "%.19s", json_string_value(v));
    }
    cli_put_clean(stdout, s, sizeof(s));
    fprintf(stdout, "%*s",
            (int)(strlen(s) < (size_t)width ? (size_t)width - strlen(s) : 0),
            "");
}

static void put_cell(const char *s, int width)
{
    s = s ? s : "-";
    cli_put_clean(stdout, s, (size_t)width);
    size_t n = strlen(s) < (size_t)width ? strlen(s) : (size_t)width;
    fprintf(stdout, "%*s", (int)((size_t)width - n), "");
}

static void put_table(json_t *root)
{
    json_t *data = json_object_get(root, "data"), *t;
    size_t i;
    printf("%-36s  %-9s  %-26s  %-19s  %-19s  %s\n", "TASK_ID", "STATUS",
           "MODEL", "CREATED", "ENDED", "CODE");
    json_array_foreach(data, i, t)
    {
        if (!json_is_object(t))
            continue;
        put_cell(hh_jstr(t, "task_id"), 36);
        fputs("  ", stdout);
        put_cell(hh_jstr(t, "status"), 9);
        fputs("  ", stdout);
        put_cell(hh_jstr(t, "model_name"), 26);
        fputs("  ", stdout);
        put_time(json_object_get(t, "gmt_create"), 19);
        fputs("  ", stdout);
        put_time(json_object_get(t, "end_time"), 19);
        fputs("  ", stdout);
        const char *code = hh_jstr(t, "code");
        cli_put_clean(stdout, code ? code : "", 64);
        fputc('\n', stdout);
    }
    json_t *total = json_object_get(root, "total");
    json_t *pages = json_object_get(root, "total_page");
    json_t *page = json_object_get(root, "page_no");
    if (json_is_integer(total))
        printf("page %lld of %lld, %lld tasks in all\n",
               (long long)json_integer_value(page),
               (long long)json_integer_value(pages),
               (long long)json_integer_value(total));
}

int cli_cmd_list(struct cli *c)
{
    struct hh_answer a = { 0 };
    struct buf path = BUF_INIT;
    struct errmsg err = { 0 };
    int ret;

    if (list_path(&c->o, &path, &err) < 0) {
        ret = cli_usage_error(c, &err);
        goto out;
    }
    if ((ret = cli_connect(c)) != CLI_EXIT_OK ||
        (ret = cli_call(c, "GET", path.data, &a)) != CLI_EXIT_OK)
        goto out;
    if (!json_is_array(json_object_get(a.json, "data"))) {
        cli_print_json(c, &a);
        fprintf(stderr, "paddock: HTTP 200 but the answer has no data[]\n");
        ret = CLI_EXIT_HTTP;
        goto out;
    }
    if (c->o.json)
        cli_print_json(c, &a);
    else
        put_table(a.json);
out:
    hh_answer_fini(&a);
    buf_fini(&path);
    return ret;
}

/* -------------------------------------------------------------- download */

int cli_cmd_download(struct cli *c)
{
    struct hh_answer a = { 0 };
    struct hh_task t;
    struct errmsg err = { 0 };
    char path[HH_ID_MAX + 32];
    char *out =
        c->o.output ? xstrdup(c->o.output) : xasprintf("%s.mp4", c->o.task_id);
    char *url = NULL;
    int ret;

    if (cli_check_output(out, &err) < 0) {
        ret = cli_usage_error(c, &err);
        goto out;
    }
    task_path(path, sizeof(path), c->o.task_id, "");
    if ((ret = cli_connect(c)) != CLI_EXIT_OK ||
        (ret = cli_call(c, "GET", path, &a)) != CLI_EXIT_OK)
        goto out;
    cli_print_json(c, &a);
    hh_task_read(&a, &t);
    ret = cli_report_status(c->o.task_id, &t);
    if (ret == CLI_EXIT_UNFINISHED)
        fprintf(stderr, "paddock: wait for it with: paddock wait %s -o %s\n",
                c->o.task_id, out);
    if (ret != CLI_EXIT_OK)
        goto out;
    const char *u = cli_video_url(c->o.task_id, &t);
    if (!u) {
        ret = CLI_EXIT_HTTP;
        goto out;
    }
    url = xstrdup(u);
    hh_answer_fini(&a); /* before a long download */
    ret = cli_download_url(c, url, out);
out:
    hh_answer_fini(&a);
    free(url);
    free(out);
    return ret;
}
