/*
 * What the API and the deliverer share about webhooks, all pure: event
 * names, secrets, signatures, the retry schedule and the rule that turns
 * an attempt into the delivery's next state.
 */
#include "hook.h"

#include "../sign/sign.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    unsigned bit;
    const char *name;
} event_names[] = {
    { STORE_EV_RUNNING, "task.running" },
    { STORE_EV_SUCCEEDED, "task.succeeded" },
    { STORE_EV_FAILED, "task.failed" },
    { STORE_EV_CANCELED, "task.canceled" },
};

unsigned hook_event_bit(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(event_names); i++)
        if (strcmp(event_names[i].name, name) == 0)
            return event_names[i].bit;
    return 0;
}

const char *hook_event_name(unsigned bit)
{
    for (size_t i = 0; i < ARRAY_LEN(event_names); i++)
        if (event_names[i].bit == bit)
            return event_names[i].name;
    return "";
}

/* Why url is not one a webhook may have, or NULL. */
static const char *url_problem(const char *url, size_t n)
{
    size_t skip;
    if (n > LIMIT_WEBHOOK_URL)
        return "at most 2048 bytes";
    if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else
        return "an http:// or https:// URL";
    if (n == skip || url[skip] == '/' || url[skip] == '?' || url[skip] == '#')
        return "a URL with a host";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return "a URL without spaces or control characters";
    return NULL;
}

int hook_request_parse(const char *body, size_t len,
                       char url[LIMIT_WEBHOOK_URL + 1], unsigned *events,
                       struct errmsg *err)
{
    json_error_t jerr;
    json_t *root =
        json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    const char *why;
    if (!json_is_object(root)) {
        rc = errmsg_set(err, ERR_INVALID_PARAMETER,
                        "the body must be a JSON object like "
                        "{\"url\":\"https://...\",\"events\":[...]}");
        goto out;
    }
    json_t *u = json_object_get(root, "url");
    if (!json_is_string(u)) {
        rc = errmsg_set(err, ERR_INVALID_PARAMETER,
                        "url is required: a string, an http:// or https:// "
                        "URL");
        goto out;
    }
    if ((why = url_problem(json_string_value(u), json_string_length(u)))) {
        rc = errmsg_set(err, ERR_INVALID_PARAMETER, "url must be %s", why);
        goto out;
    }
    snprintf(url, LIMIT_WEBHOOK_URL + 1, "%s", json_string_value(u));
    json_t *ev = json_object_get(root, "events");
    *events = STORE_EV_ALL;
    if (!ev)
        goto out;
    if (!json_is_array(ev) || json_array_size(ev) == 0 ||
        json_array_size(ev) > ARRAY_LEN(event_names)) {
        rc = errmsg_set(err, ERR_INVALID_PARAMETER,
                        "events must be a non-empty array of task.running, "
                        "task.succeeded, task.failed, task.canceled");
        goto out;
    }
    *events = 0;
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *one = json_array_get(ev, i);
        unsigned bit =
            json_is_string(one) ? hook_event_bit(json_string_value(one)) : 0;
        if (!bit || (*events & bit)) {
            rc = errmsg_set(err, ERR_INVALID_PARAMETER,
                            "events[%zu] must be one of task.running, "
                            "task.succeeded, task.failed, task.canceled, "
                            "each once",
                            i);
            goto out;
        }
        *events |= bit;
    }
out:
    json_decref(root);
    return rc;
}

#define SECRET_PREFIX "whsec_"
#define SECRET_BYTES  32

int hook_secret_new(char out[LIMIT_WEBHOOK_SECRET + 1])
{
    unsigned char key[SECRET_BYTES];
    struct buf b = BUF_INIT;
    if (id_random(key, sizeof(key)) < 0)
        return ERR_INTERNAL;
    buf_puts(&b, SECRET_PREFIX);
    base64_encode(&b, key, sizeof(key));
    snprintf(out, LIMIT_WEBHOOK_SECRET + 1, "%s", b.data);
    buf_fini(&b);
    return 0;
}

int hook_sign(const char *secret, const char *id, int64_t ts, const char *body,
              size_t len, char out[HOOK_SIGNATURE_MAX + 1])
{
    unsigned char key[LIMIT_WEBHOOK_SECRET], mac[32];
    size_t n = 0, plen = strlen(SECRET_PREFIX);
    if (strncmp(secret, SECRET_PREFIX, plen) != 0)
        return ERR_INVALID_PARAMETER;
    secret += plen;
    size_t slen = strlen(secret);
    if (base64_problem(secret, slen, &n) || n == 0 || n > sizeof(key))
        return ERR_INVALID_PARAMETER;
    n = base64_decode(secret, slen, key, sizeof(key));
    struct buf msg = BUF_INIT, sig = BUF_INIT;
    buf_printf(&msg, "%s.%lld.", id, (long long)ts);
    buf_append(&msg, body, len);
    sign_hmac(key, n, msg.data, msg.len, mac);
    buf_puts(&sig, "v1,");
    base64_encode(&sig, mac, sizeof(mac));
    snprintf(out, HOOK_SIGNATURE_MAX + 1, "%s", sig.data);
    buf_fini(&msg);
    buf_fini(&sig);
    return 0;
}

/* The shortest and longest delay of a schedule entry. */
#define DELAY_MIN_MS 100
#define DELAY_MAX_MS (24 * 3600 * 1000LL)

int hook_schedule_parse(const char *s, struct hook_schedule *out,
                        struct errmsg *err)
{
    struct hook_schedule sch = { .n = 0 };
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char one[32];
        int64_t ms = 0;
        if (sch.n == LIMIT_WEBHOOK_RETRIES)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--webhook-schedule: at most %d retries",
                              LIMIT_WEBHOOK_RETRIES);
        if (len == 0 || len >= sizeof(one))
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--webhook-schedule: entry %zu is not a "
                              "duration like 5s or 200ms",
                              sch.n + 1);
        memcpy(one, p, len);
        one[len] = '\0';
        if (clock_parse_duration(one, DELAY_MIN_MS, DELAY_MAX_MS, &ms) < 0)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--webhook-schedule: '%s' is not a duration "
                              "from 100ms to 1d",
                              one);
        sch.delay_ms[sch.n++] = ms;
        p += len;
        if (*p == ',')
            p++;
        if (end && !*p)
            return errmsg_set(err, ERR_INVALID_PARAMETER,
                              "--webhook-schedule: it ends with a comma");
    }
    *out = sch;
    return 0;
}

bool hook_outcome(struct store_delivery *d, const struct hook_schedule *sch,
                  bool ok, int status, int64_t now_ms)
{
    d->updated_ms = now_ms;
    d->next_ms = now_ms;
    d->code = status;
    if (ok) {
        d->state = STORE_DLV_DELIVERED;
        d->error[0] = '\0';
        return false;
    }
    if (status == 410) {
        d->state = STORE_DLV_DEAD;
        snprintf(d->error, sizeof(d->error),
                 "HTTP 410: the endpoint is gone and now disabled");
        return true;
    }
    /* The k-th failure waits the k-th delay; past the last, dead. A manual
     * retry of a dead delivery is one more attempt past them. */
    size_t k = d->attempts > 0 ? (size_t)d->attempts : 1;
    if (k <= sch->n) {
        d->state = STORE_DLV_PENDING;
        d->next_ms = now_ms + sch->delay_ms[k - 1];
    } else {
        d->state = STORE_DLV_DEAD;
    }
    return false;
}
