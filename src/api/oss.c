/*
 * Local files from unmodified DashScope SDKs (docs/extensions.md): the
 * upload policy (GET /api/v1/uploads?action=getPolicy), the OSS
 * PostObject-style form an SDK posts to the policy's upload_host (paddock
 * itself), and the oss:// URLs a submit may then name.
 *
 * The form carries no API key: the signed policy is the credential. Its
 * fields come before the file, so they are checked when the file part
 * begins, before a byte of it is written; a refused form leaves nothing.
 */
#include "api_int.h"

#include "../log/log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* expire_in_seconds: how long a policy may be used, as DashScope's. */
#define OSS_POLICY_TTL_S 300
/* The upload host's path (under /happyhorse for the TTAPI dialect). */
#define OSS_UPLOAD_PATH "/api/v1/uploads/oss"
/* upload_dir is OSS_DIR_ROOT/<key id>/<uuid>: one per policy. */
#define OSS_DIR_ROOT "paddock-instant"
/* Fields a form may send before its file (the SDK sends eight). */
#define OSS_FIELDS_MAX 32
/* Bytes of a form besides its file: every field and part head at their
 * bounds, and the boundaries. */
#define OSS_FORM_OVERHEAD \
    (OSS_FIELDS_MAX * (HTTP_FORM_HEAD_MAX + HTTP_FORM_VALUE_MAX + 80))
/* A policy's expiration: "2026-01-01T12:00:00.000Z". */
#define OSS_TIME_LEN 24

/* ------------------------------------------------------------ policy */

/* The largest file a policy allows: the upload limit, at most a video. */
static int64_t max_file_bytes(const struct conf *conf)
{
    return conf->upload_limit < LIMIT_VIDEO_BYTES ? conf->upload_limit
                                                  : LIMIT_VIDEO_BYTES;
}

static void iso_time(int64_t ms, char out[OSS_TIME_LEN + 1])
{
    char t[24];
    clock_format(ms, 0, t); /* "YYYY-MM-DD HH:mm:ss.SSS", UTC */
    t[10] = 'T';
    snprintf(out, OSS_TIME_LEN + 1, "%sZ", t);
}

/* What iso_time wrote, back into epoch ms; false when not its shape. */
static bool parse_iso_time(const char *s, int64_t *ms)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    int v[7] = { 0 }, k = 0;
    if (!s || strlen(s) != OSS_TIME_LEN)
        return false;
    for (size_t i = 0; i < OSS_TIME_LEN; i++) {
        if (shape[i] != 'd') {
            if (s[i] != shape[i])
                return false;
            k++;
        } else if (s[i] < '0' || s[i] > '9') {
            return false;
        } else {
            v[k] = v[k] * 10 + (s[i] - '0');
        }
    }
    struct tm tm = { .tm_year = v[0] - 1900,
                     .tm_mon = v[1] - 1,
                     .tm_mday = v[2],
                     .tm_hour = v[3],
                     .tm_min = v[4],
                     .tm_sec = v[5] };
    *ms = (int64_t)timegm(&tm) * 1000 + v[6];
    return true;
}

/*
 * GET /api/v1/uploads?action=getPolicy&model=MODEL: a policy for this key
 * to post one or more files under a fresh upload_dir for the next
 * OSS_POLICY_TTL_S, as DashScope's answer is shaped.
 */
void api_oss_policy(struct call *c)
{
    struct api *a = c->api;
    const struct conf *conf = a->d.conf;
    const char *action = http_req_query(c->req, "action");
    const char *model = http_req_query(c->req, "model");
    char msg[300], dir_id[UUID_STR_LEN + 1], expires[OSS_TIME_LEN + 1];
    struct buf doc = BUF_INIT, policy = BUF_INIT, sig = BUF_INIT, b = BUF_INIT;

    if (!action || strcmp(action, "getPolicy") != 0) {
        snprintf(msg, sizeof(msg),
                 "query parameter action must be getPolicy (got %s%.40s%s); "
                 "to upload a file as it is, POST it to /api/v1/uploads",
                 action ? "\"" : "", action ? action : "none",
                 action ? "\"" : "");
        api_reply_error(c, ERR_INVALID_PARAMETER, msg);
        return;
    }
    if (!model || !model[0]) {
        api_reply_error(c, ERR_INVALID_PARAMETER,
                        "query parameter model is required: the model the "
                        "file is for");
        return;
    }
    const struct route *r = route_find(a->d.routes, model);
    if (!r) {
        snprintf(msg, sizeof(msg),
                 "model %.64s is not served here; GET /api/v1/models lists "
                 "the names this server takes",
                 model);
        api_reply_error(c, ERR_MODEL_NOT_FOUND, msg);
        return;
    }
    if (!route_accepts_uploads(r)) {
        snprintf(msg, sizeof(msg),
                 "%s is served by engine %s (%s), which passes URLs on and "
                 "cannot read an uploaded file; send an http(s) URL",
                 r->name, route_engine_name(r->engine),
                 route_engine_backend(r->engine));
        api_reply_error(c, ERR_INVALID_PARAMETER, msg);
        return;
    }

    int64_t max = max_file_bytes(conf);
    id_uuid4(dir_id);
    iso_time(clock_now_ms() + OSS_POLICY_TTL_S * 1000, expires);
    buf_printf(&doc,
               "{\"expiration\":\"%s\",\"conditions\":[[\"content-length-"
               "range\",1,%lld],[\"starts-with\",\"$key\",\"" OSS_DIR_ROOT
               "/%s/%s/\"]]}",
               expires, (long long)max, c->key_id, dir_id);
    base64_encode(&policy, doc.data, doc.len);
    blob_oss_sign(a->d.blob, c->key_id, policy.data, &sig);

    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"data\":{\"policy\":");
    buf_json_str(&b, policy.data);
    buf_puts(&b, ",\"signature\":");
    buf_json_str(&b, sig.data);
    buf_printf(&b, ",\"upload_dir\":\"" OSS_DIR_ROOT "/%s/%s\"", c->key_id,
               dir_id);
    buf_puts(&b, ",\"upload_host\":\"");
    char base[API_URL_BASE_MAX];
    buf_puts(&b, api_url_base(c, base));
    buf_puts(&b, c->dialect == D_TTAPI ? TTAPI_PREFIX OSS_UPLOAD_PATH "\""
                                       : OSS_UPLOAD_PATH "\"");
    buf_printf(&b,
               ",\"expire_in_seconds\":%d,\"max_file_size_mb\":%lld,"
               "\"capacity_limit_mb\":%lld,\"oss_access_key_id\":",
               OSS_POLICY_TTL_S, (long long)((max + (1 << 20) - 1) >> 20),
               (long long)(LIMIT_UPLOAD_BYTES_PER_KEY >> 20));
    buf_json_str(&b, c->key_id);
    buf_puts(&b, ",\"x_oss_object_acl\":\"private\","
                 "\"x_oss_forbid_overwrite\":\"true\"}}");
    api_reply_json(c, 200, &b);
    buf_fini(&doc);
    buf_fini(&policy);
    buf_fini(&sig);
}

/* -------------------------------------------------------------- form */

/* The fields paddock reads; the rest are skipped. */
enum field {
    F_ACCESS_KEY,
    F_SIGNATURE,
    F_POLICY,
    F_KEY,
    F_ACL,
    F_FORBID,
    F_STATUS,
    F_TYPE,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "OSSAccessKeyId",
    "Signature",
    "policy",
    "key",
    "x-oss-object-acl",
    "x-oss-forbid-overwrite",
    "success_action_status",
    "x-oss-content-type",
};

/* One form on its way in: what its fields said, the file being written,
 * and the first refusal. Made by admit, freed by the sink's end. */
struct oss_post {
    struct api *api;
    struct http_form form;
    char *field[F_COUNT]; /* owned; NULL when not sent */
    size_t n_fields;
    char key_id[TASK_KEY_ID_MAX + 1];
    int64_t declared; /* the form's Content-Length, or 0 */
    int64_t fed;      /* body bytes given to the parser so far */
    int64_t min, max; /* the file's size range, from the policy */
    struct blob_upload *upload;
    bool file_seen, file_done;
    int64_t file_bytes;
    struct errmsg refused; /* code 0: none yet */
    int64_t retry_s;
};

static int refuse(struct oss_post *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct oss_post *p, int code, const char *fmt, ...)
{
    if (!p->refused.code) {
        va_list ap;
        va_start(ap, fmt);
        p->refused.code = code;
        vsnprintf(p->refused.text, sizeof(p->refused.text), fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "paddock-instant/<key_id>/<uuid>/": the prefix a policy issued to key_id
 * may name. */
static bool prefix_of_key(const char *prefix, const char *key_id)
{
    size_t r = sizeof(OSS_DIR_ROOT) - 1, k = strlen(key_id);
    return strncmp(prefix, OSS_DIR_ROOT "/", r + 1) == 0 &&
           strncmp(prefix + r + 1, key_id, k) == 0 &&
           prefix[r + 1 + k] == '/' &&
           strlen(prefix) == r + 1 + k + 1 + UUID_STR_LEN + 1 &&
           prefix[strlen(prefix) - 1] == '/';
}

/* The policy's expiry and conditions into p (and *prefix, borrowed from
 * root): 0, or -1 when refused. */
static int read_policy(struct oss_post *p, json_t **root, const char **prefix)
{
    const char *b64 = p->field[F_POLICY];
    size_t n = 0;
    unsigned char *doc = NULL;
    int64_t expires = 0;
    if (base64_problem(b64, strlen(b64), &n) || n > HTTP_FORM_VALUE_MAX)
        return refuse(p, ERR_OSS_INVALID_POLICY,
                      "the policy is not base64 of a policy document");
    doc = xmalloc(n + 1);
    n = base64_decode(b64, strlen(b64), doc, n);
    *root = json_loadb((const char *)doc, n, 0, NULL);
    free(doc);
    json_t *exp = json_object_get(*root, "expiration");
    json_t *conds = json_object_get(*root, "conditions");
    if (!json_is_object(*root) ||
        !parse_iso_time(json_string_value(exp), &expires) ||
        !json_is_array(conds))
        return refuse(p, ERR_OSS_INVALID_POLICY,
                      "the policy has no expiration and conditions");
    size_t i;
    json_t *cond;
    json_array_foreach(conds, i, cond)
    {
        const char *op = json_string_value(json_array_get(cond, 0));
        const char *field = json_string_value(json_array_get(cond, 1));
        if (op && strcmp(op, "starts-with") == 0 &&
            json_array_size(cond) == 3 && field && strcmp(field, "$key") == 0) {
            *prefix = json_string_value(json_array_get(cond, 2));
        } else if (op && strcmp(op, "content-length-range") == 0 &&
                   json_array_size(cond) == 3) {
            p->min = json_integer_value(json_array_get(cond, 1));
            p->max = json_integer_value(json_array_get(cond, 2));
        }
    }
    if (!*prefix || !prefix_of_key(*prefix, p->key_id) || p->max <= 0)
        return refuse(p, ERR_OSS_INVALID_POLICY,
                      "the policy lacks paddock's conditions");
    if (expires <= clock_now_ms())
        return refuse(p, ERR_ACCESS_DENIED,
                      "Invalid according to Policy: Policy expired.");
    return 0;
}

/* An object key a file may be stored under: 1 to TASK_OSS_KEY_MAX bytes
 * of UTF-8 without control bytes or backslashes, segments neither empty
 * nor "." nor "..". */
static bool object_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > TASK_OSS_KEY_MAX || !utf8_valid(key, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f || key[i] == '\\')
            return false;
    for (const char *s = key;;) {
        size_t seg = strcspn(s, "/");
        if (seg == 0 || (seg == 1 && s[0] == '.') ||
            (seg == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!s[seg])
            return true;
        s += seg + 1;
    }
}

static const char *const acls[] = { "private", "public-read",
                                    "public-read-write", "default" };

/*
 * The file part begins: every field it needs came before it. Check the
 * signature, the policy, the key and the caps, then open the file. 0, or
 * -1 when refused (nothing written).
 */
static int begin_file(struct oss_post *p)
{
    struct api *a = p->api;
    json_t *root = NULL;
    const char *prefix = NULL;
    char name[BLOB_UPLOAD_NAME_MAX];
    struct errmsg e = { 0 };
    int ret = -1;

    for (int f = F_ACCESS_KEY; f <= F_KEY; f++)
        if (!p->field[f])
            return refuse(p, ERR_OSS_INVALID_ARGUMENT,
                          "the form has no %s field before its file (the "
                          "policy fields come first, file last)",
                          field_names[f]);
    const char *key = p->field[F_KEY];
    snprintf(p->key_id, sizeof(p->key_id), "%s", p->field[F_ACCESS_KEY]);
    if (strlen(p->field[F_ACCESS_KEY]) > TASK_KEY_ID_MAX ||
        blob_oss_verify(a->d.blob, p->key_id, p->field[F_POLICY],
                        p->field[F_SIGNATURE]) < 0) {
        refuse(p, ERR_OSS_SIGNATURE,
               "The request signature we calculated does not match the "
               "signature you provided: sign the policy you were given with "
               "its own OSSAccessKeyId.");
        goto out;
    }
    if (read_policy(p, &root, &prefix) < 0)
        goto out;
    if (!object_key_ok(key)) {
        refuse(p, ERR_OSS_OBJECT_NAME,
               "key %.200s is not an object key: 1 to %d bytes of UTF-8, "
               "no control characters or backslashes, no empty, \".\" or "
               "\"..\" segments",
               key, TASK_OSS_KEY_MAX);
        goto out;
    }
    if (strncmp(key, prefix, strlen(prefix)) != 0 || !key[strlen(prefix)]) {
        refuse(p, ERR_ACCESS_DENIED,
               "Invalid according to Policy: Policy Condition failed: "
               "[\"starts-with\", \"$key\", \"%s\"] (the key is upload_dir, "
               "a slash and the file name)",
               prefix);
        goto out;
    }
    const char *acl = p->field[F_ACL];
    bool acl_ok = !acl;
    for (size_t i = 0; !acl_ok && i < ARRAY_LEN(acls); i++)
        acl_ok = strcmp(acl, acls[i]) == 0;
    if (!acl_ok) {
        refuse(p, ERR_OSS_INVALID_ARGUMENT,
               "x-oss-object-acl must be private, public-read, "
               "public-read-write or default (paddock keeps every file "
               "private)");
        goto out;
    }
    if (p->max > max_file_bytes(a->d.conf))
        p->max = max_file_bytes(a->d.conf); /* the limit fell since */
    if (api_upload_quota(a, p->key_id, p->declared, &p->retry_s, &e) < 0) {
        refuse(p, e.code, "%s", errmsg_text(&e));
        goto out;
    }
    blob_oss_name(key, name);
    if (blob_upload_begin(a->d.blob, p->key_id, name, &p->upload) < 0) {
        refuse(p, ERR_IO, "the upload could not be stored; retry");
        goto out;
    }
    ret = 0;
out:
    json_decref(root);
    return ret;
}

static int form_part(void *arg, const struct http_form_part *part)
{
    struct oss_post *p = arg;
    if (p->file_seen) /* OSS ignores what follows the file */
        return HTTP_FORM_SKIP;
    if (strcmp(part->name, "file") == 0) {
        p->file_seen = true;
        return begin_file(p) < 0 ? -1 : HTTP_FORM_STREAM;
    }
    if (++p->n_fields > OSS_FIELDS_MAX)
        return refuse(p, ERR_OSS_INVALID_ARGUMENT,
                      "the form has more than %d fields before its file",
                      OSS_FIELDS_MAX);
    for (int f = 0; f < F_COUNT; f++) {
        if (strcasecmp(part->name, field_names[f]) != 0)
            continue;
        if (p->field[f])
            return refuse(p, ERR_OSS_INVALID_ARGUMENT,
                          "the form sends %s twice", field_names[f]);
        return HTTP_FORM_COLLECT;
    }
    return HTTP_FORM_SKIP;
}

static int form_data(void *arg, const void *d, size_t n)
{
    struct oss_post *p = arg;
    p->file_bytes += (int64_t)n;
    if (p->file_bytes > p->max)
        return refuse(p, ERR_OSS_TOO_LARGE,
                      "Your proposed upload exceeds the maximum allowed "
                      "size: the policy allows %lld bytes "
                      "(max_file_size_mb)",
                      (long long)p->max);
    if (blob_upload_write(p->upload, d, n) < 0)
        return refuse(p, ERR_IO, "the upload could not be stored; retry");
    return 0;
}

static int form_end(void *arg, const struct http_form_part *part,
                    const char *value, size_t n)
{
    struct oss_post *p = arg;
    if (!value) {
        p->file_done = p->file_done || strcmp(part->name, "file") == 0;
        return 0;
    }
    if (strlen(value) != n)
        return refuse(p, ERR_OSS_INVALID_ARGUMENT,
                      "form field %.64s holds a NUL byte", part->name);
    for (int f = 0; f < F_COUNT; f++)
        if (strcasecmp(part->name, field_names[f]) == 0)
            p->field[f] = xstrndup(value, n);
    return 0;
}

static const struct http_form_ops form_ops = { form_part, form_data, form_end };

static int sink_write(void *arg, const void *data, size_t len)
{
    struct oss_post *p = arg;
    /* Before the file no credential has been checked: what may come
     * before it is bounded, whatever its parts are. */
    p->fed += (int64_t)len;
    if (!p->file_seen && p->fed - (int64_t)len > OSS_FORM_OVERHEAD) {
        refuse(p, ERR_OSS_INVALID_ARGUMENT,
               "the form sends over %d bytes before its file",
               OSS_FORM_OVERHEAD);
        return -1;
    }
    int rc = http_form_feed(&p->form, data, len);
    if (rc == ERR_TOO_LARGE)
        refuse(p, ERR_OSS_INVALID_ARGUMENT, "the form is refused: %s",
               http_form_why(&p->form));
    else if (rc == ERR_INVALID_PARAMETER)
        refuse(p, ERR_OSS_MALFORMED_POST,
               "The body of your POST request is not well-formed "
               "multipart/form-data: %s.",
               http_form_why(&p->form));
    return rc == 0 ? 0 : -1;
}

static void sink_end(void *arg)
{
    struct oss_post *p = arg;
    blob_upload_free(p->upload); /* removes the file unless committed */
    for (int f = 0; f < F_COUNT; f++)
        free(p->field[f]);
    free(p);
}

/* Before the body: a form, within the largest file and its fields. */
bool api_oss_admit(struct call *c, struct admitted *ad)
{
    int64_t max = max_file_bytes(c->api->d.conf) + OSS_FORM_OVERHEAD;
    int64_t declared = http_req_content_length(c->req);
    char msg[200];
    struct oss_post *p = xcalloc(1, sizeof(*p));
    p->api = c->api;
    if (http_form_init(&p->form, http_req_header(c->req, "Content-Type"),
                       &form_ops, p) < 0) {
        snprintf(msg, sizeof(msg),
                 "The body of your POST request is not well-formed "
                 "multipart/form-data: %s.",
                 http_form_why(&p->form));
        api_reply_error(c, ERR_OSS_MALFORMED_POST, msg);
        free(p);
        return false;
    }
    if (declared > max) {
        snprintf(msg, sizeof(msg),
                 "Your proposed upload exceeds the maximum allowed size: "
                 "the form is %lld bytes, a file may be %lld",
                 (long long)declared,
                 (long long)max_file_bytes(c->api->d.conf));
        api_reply_error(c, ERR_OSS_TOO_LARGE, msg);
        free(p);
        return false;
    }
    p->declared = declared > 0 ? declared : 0;
    ad->oss = p;
    http_req_set_body_limit(c->req, max);
    http_req_set_sink(
        c->req,
        &(struct http_sink){ .write = sink_write, .end = sink_end, .arg = p });
    return true;
}

/* The status success_action_status asks for: 200 (also when absent or
 * another value, as OSS ignores those), 201 or 204. */
static int success_status(const char *asked)
{
    if (asked && strcmp(asked, "201") == 0)
        return 201;
    if (asked && strcmp(asked, "204") == 0)
        return 204;
    return 200;
}

/*
 * POST /api/v1/uploads/oss (the upload_host of a policy): the form is
 * read; the file, if nothing refused it, is in its temporary file. Put it
 * in place under its object key and answer as asked.
 */
void api_oss_upload(struct call *c)
{
    struct admitted *ad = http_req_user(c->req);
    struct oss_post *p = ad->oss;
    const struct conf *conf = c->api->d.conf;
    char when[24];
    int64_t mtime = 0;
    struct buf b = BUF_INIT;

    memcpy(c->key_id, p->key_id, sizeof(c->key_id)); /* for the log */
    if (!p->refused.code && http_req_fault(c->req))
        refuse(p, ERR_IO, "the upload could not be stored; retry");
    if (!p->refused.code && http_form_finish(&p->form) < 0)
        refuse(p, ERR_OSS_MALFORMED_POST,
               "The body of your POST request is not well-formed "
               "multipart/form-data: %s.",
               http_form_why(&p->form));
    if (!p->refused.code && !p->file_done)
        refuse(p, ERR_OSS_INVALID_ARGUMENT,
               "the form has no file part (the file field comes last)");
    if (!p->refused.code && p->file_bytes < p->min)
        refuse(p, ERR_OSS_TOO_SMALL,
               "Your proposed upload is smaller than the minimum allowed "
               "size: the policy asks at least %lld bytes",
               (long long)p->min);
    if (!p->refused.code) {
        const char *forbid = p->field[F_FORBID];
        bool fresh = forbid && strcasecmp(forbid, "true") == 0;
        int rc = fresh ? blob_upload_commit_new(p->upload, &mtime)
                       : blob_upload_commit(p->upload, &mtime);
        if (rc == ERR_CONFLICT)
            refuse(p, ERR_OSS_EXISTS,
                   "The object you specified already exists and can not be "
                   "overwritten (x-oss-forbid-overwrite is true): %.200s",
                   p->field[F_KEY]);
        else if (rc < 0)
            refuse(p, ERR_IO, "the upload could not be stored; retry");
    }
    if (p->refused.code) {
        api_reply_quota(c, &p->refused, p->retry_s);
        return;
    }
    log_info("oss upload stored", "key_id=%s bytes=%lld request_id=%s",
             p->key_id, (long long)p->file_bytes, http_req_id(c->req));
    int status = success_status(p->field[F_STATUS]);
    if (status == 204) {
        c->rep->status = 204;
        return;
    }
    clock_format(mtime + BLOB_OSS_KEEP_MS, conf->utc_offset_min, when);
    buf_puts(&b, "{\"request_id\":");
    buf_json_str(&b, http_req_id(c->req));
    buf_puts(&b, ",\"output\":{\"key\":");
    buf_json_str(&b, p->field[F_KEY]);
    char *url = xasprintf(TASK_OSS_SCHEME "%s", p->field[F_KEY]);
    buf_puts(&b, ",\"url\":");
    buf_json_str(&b, url);
    free(url);
    buf_printf(&b, ",\"size\":%lld,\"expires_time\":\"%s\"}}",
               (long long)p->file_bytes, when);
    api_reply_json(c, status, &b);
}

/* ----------------------------------------------------------- submits */

bool api_oss_usable(struct call *c, const struct route *route,
                    const struct job *job, struct errmsg *e)
{
    const struct api_deps *d = &c->api->d;
    const char *h = http_req_header(c->req, "X-DashScope-OssResourceResolve");
    bool resolve = h && strcasecmp(h, "enable") == 0;
    int64_t now = clock_now_ms();
    char name[BLOB_UPLOAD_NAME_MAX], kept[24];

    for (size_t i = 0; i < job->n_media; i++) {
        const struct job_media *m = &job->media[i];
        const char *key = task_oss_key(m->url);
        int64_t size = 0, mtime = 0;
        if (!key)
            continue;
        if (!resolve) {
            errmsg_set(e, ERR_INVALID_URL,
                       "%s: an oss:// URL is resolved only with the header "
                       "X-DashScope-OssResourceResolve: enable (DashScope "
                       "SDKs send it with the files they upload)",
                       m->field);
            return false;
        }
        if (!route_accepts_uploads(route)) {
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: %s is served by engine %s (%s), which passes "
                       "URLs on and cannot read an uploaded file; send an "
                       "http(s) URL",
                       m->field, job->model, route_engine_name(route->engine),
                       route_engine_backend(route->engine));
            return false;
        }
        blob_oss_name(key, name);
        if (blob_upload_stat(d->blob, c->key_id, name, &size, &mtime) < 0 ||
            mtime + BLOB_OSS_KEEP_MS <= now) {
            clock_format_duration(BLOB_OSS_KEEP_MS, kept);
            errmsg_set(e, ERR_INVALID_URL,
                       "%s: no file %.200s was uploaded with this API key's "
                       "upload policies (oss:// files are kept %s after they "
                       "are uploaded)",
                       m->field, m->url, kept);
            return false;
        }
        bool video = m->type == JOB_MEDIA_VIDEO;
        int64_t cap = video ? LIMIT_VIDEO_BYTES : LIMIT_IMAGE_BYTES;
        if (size > cap) {
            errmsg_set(e, ERR_INVALID_PARAMETER,
                       "%s: %.200s is %lld bytes; %s input may be at most "
                       "%lld MB",
                       m->field, m->url, (long long)size,
                       video ? "a video" : "an image", (long long)(cap >> 20));
            return false;
        }
    }
    return true;
}
