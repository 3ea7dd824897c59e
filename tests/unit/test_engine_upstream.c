/*
 * Unit tests of src/engine's upstream engine (upstream.c, upstream_relay.c):
 * its spec words, a relayed job in both dialects, a resumed task, submit
 * retries, refusals, an unreachable upstream, the health check and a stop.
 */
#define ENGINE_FIXTURE_DIR "/tmp/paddock-engine-up-XXXXXX"
#include "../../src/http/http.h"
#include "../../src/net/net.h"
#include "engine_fixture.h"
#include "unit.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The upstream engine against a fake upstream in this process (paddock's
 * own http/ on 127.0.0.1): scripted answers for submits and polls, the
 * requests it saw recorded, and a real MP4 (a sandbox render) behind its
 * video link.
 */
#define FAKE_KEY    "fake-upstream-key-0123"
#define FAKE_SCRIPT 16
#define FAKE_SUBMIT "/api/v1/services/aigc/video-generation/video-synthesis"

struct fake_answer {
    int status;
    const char *body;
    const char *retry_after;
};

static struct fake {
    pthread_mutex_t lock; /* the handler runs on the fake's loop thread */
    struct fake_answer submit[FAKE_SCRIPT], poll[FAKE_SCRIPT];
    int n_submit, n_poll;
    int submits, polls, videos, checks, refused; /* requests seen */
    bool tt_path;    /* the last submit went to /happyhorse/... */
    char body[8192]; /* the last submit's body */
    char auth[128], tt_key[128], async[32], idem[128];
    char poll_path[256];
    int video_status; /* 0: 200 with the video */
    unsigned char *video;
    size_t video_len;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct http_server *fake_server;
static char fake_base[64];   /* "http://127.0.0.1:PORT" */
static char fake_done[1024]; /* the SUCCEEDED answer */
static const char fake_running[] =
    "{\"output\":{\"task_id\":\"up-1\",\"task_status\":\"RUNNING\","
    "\"progress\":40}}";

static void fake_reset(void)
{
    pthread_mutex_lock(&fake.lock);
    fake.n_submit = fake.n_poll = 0;
    fake.submits = fake.polls = fake.videos = fake.checks = fake.refused = 0;
    fake.tt_path = false;
    fake.body[0] = fake.auth[0] = fake.tt_key[0] = fake.async[0] = '\0';
    fake.idem[0] = fake.poll_path[0] = '\0';
    fake.video_status = 0;
    pthread_mutex_unlock(&fake.lock);
}

static void copy_header(struct http_req *req, const char *name, char *out,
                        size_t size)
{
    const char *v = http_req_header(req, name);
    snprintf(out, size, "%s", v ? v : "");
}

static void fake_reply(struct http_reply *rep, int status, const char *body,
                       const char *retry_after)
{
    struct buf b = { 0 };
    buf_append(&b, body, strlen(body));
    if (retry_after)
        http_reply_header(rep, "Retry-After", retry_after);
    http_reply_take_body(rep, status, "application/json", &b);
    buf_fini(&b);
}

static void fake_request(void *arg, struct http_req *req,
                         struct http_reply *rep)
{
    (void)arg;
    const char *url = http_req_path(req), *method = http_req_method(req);
    size_t body_len = 0;
    const char *upload = http_req_body(req, &body_len);
    char auth[128], tt_key[128];
    copy_header(req, "Authorization", auth, sizeof(auth));
    copy_header(req, "TT-API-KEY", tt_key, sizeof(tt_key));
    bool tt = strncmp(url, "/happyhorse/", 12) == 0;
    const char *path = tt ? url + 11 : url;
    struct fake_answer a = { 200, "{}", NULL };
    char body[1024];

    pthread_mutex_lock(&fake.lock);
    if (strcmp(path, "/video.mp4") == 0) {
        fake.videos++;
        int st = fake.video_status ? fake.video_status : 200;
        pthread_mutex_unlock(&fake.lock);
        struct buf b = { 0 };
        if (st == 200)
            buf_append(&b, fake.video, fake.video_len);
        http_reply_take_body(rep, st, "video/mp4", &b);
        buf_fini(&b);
        return;
    }
    if (strcmp(auth, "Bearer " FAKE_KEY) != 0 &&
        strcmp(tt_key, FAKE_KEY) != 0) {
        fake.refused++;
        a = (struct fake_answer){ 401,
                                  "{\"code\":\"InvalidApiKey\",\"message\":"
                                  "\"Invalid API-key provided.\"}",
                                  NULL };
    } else if (strcmp(method, "POST") == 0 && strcmp(path, FAKE_SUBMIT) == 0) {
        fake.submits++;
        fake.tt_path = tt;
        snprintf(fake.body, sizeof(fake.body), "%.*s", (int)body_len, upload);
        snprintf(fake.auth, sizeof(fake.auth), "%s", auth);
        snprintf(fake.tt_key, sizeof(fake.tt_key), "%s", tt_key);
        copy_header(req, "X-DashScope-Async", fake.async, sizeof(fake.async));
        copy_header(req, "Idempotency-Key", fake.idem, sizeof(fake.idem));
        if (fake.submits <= fake.n_submit)
            a = fake.submit[fake.submits - 1];
        else
            a.body = "{\"request_id\":\"r\",\"output\":{\"task_id\":\"up-1\","
                     "\"task_status\":\"PENDING\"}}";
    } else if (strcmp(method, "GET") == 0 &&
               strcmp(path, "/api/v1/tasks/"
                            "00000000-0000-0000-0000-000000000000") == 0) {
        fake.checks++;
        a.body = "{\"output\":{\"task_id\":\"00000000-0000-0000-0000-"
                 "000000000000\",\"task_status\":\"UNKNOWN\"}}";
    } else if (strcmp(method, "GET") == 0 &&
               strncmp(path, "/api/v1/tasks/", 14) == 0) {
        fake.polls++;
        snprintf(fake.poll_path, sizeof(fake.poll_path), "%s", url);
        if (fake.polls <= fake.n_poll)
            a = fake.poll[fake.polls - 1];
        else
            a.body = fake_done;
    } else {
        a = (struct fake_answer){ 404, "{\"code\":\"NotFound\"}", NULL };
    }
    snprintf(body, sizeof(body), "%s", a.body);
    pthread_mutex_unlock(&fake.lock);
    fake_reply(rep, a.status, body, a.retry_after);
}

static bool fake_start(void)
{
    struct http_opts o = { .host = "127.0.0.1",
                           .port = 0,
                           .threads = 1,
                           .body_limit = 1 << 20,
                           .conn_timeout_s = 30 };
    struct errmsg err = { 0 };
    if (http_listen(&o, &fake_server, &err) < 0 ||
        http_serve(fake_server, NULL, fake_request, NULL, &err) < 0) {
        fprintf(stderr, "  fake upstream: %s\n", errmsg_text(&err));
        return false;
    }
    snprintf(fake_base, sizeof(fake_base), "http://127.0.0.1:%d",
             http_port(fake_server));
    snprintf(fake_done, sizeof(fake_done),
             "{\"request_id\":\"r\",\"output\":{\"task_id\":\"up-1\","
             "\"task_status\":\"SUCCEEDED\",\"video_url\":\"%s/video.mp4?"
             "Signature=SECRET\"},\"usage\":{\"duration\":7,"
             "\"input_video_duration\":0,\"output_video_duration\":7,"
             "\"video_count\":1,\"SR\":720,\"ratio\":\"1:1\"}}",
             fake_base);
    /* The upstream's video: a real render. */
    struct job job;
    struct job_result res;
    job_t2v(&job, 480, "16:9", 3, 5, "the upstream's render");
    if (render(&job, path_of("upstream.mp4"), &res, &err) < 0)
        return false;
    FILE *f = fopen(path_of("upstream.mp4"), "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    fake.video_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    fake.video = xmalloc(fake.video_len);
    bool ok = fread(fake.video, 1, fake.video_len, f) == fake.video_len;
    fclose(f);
    return ok;
}

static void fake_stop(void)
{
    if (fake_server)
        http_stop(fake_server);
    free(fake.video);
}

/* An upstream engine on the fake with quick polls and `more` options. */
static struct engine *relay(const char *dialect, const char *base,
                            const char *more)
{
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    char spec[512];
    snprintf(spec, sizeof(spec),
             "upstream:%s %s poll=10ms poll-max=30ms rate=1000 %s", dialect,
             base, more);
    if (engine_new(spec, &e, &err) < 0)
        fprintf(stderr, "  relay: %s\n", errmsg_text(&err));
    CHECK(e != NULL);
    return e;
}

/* What a run told its caller through ctl. */
struct relay_log {
    atomic_bool stop;
    int progress_calls, last_pct, stop_at_pct;
    int saves, save_rc;
    char saved[TASK_REF_MAX];
    /* The job's end (ctl.done), from the relay's threads. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rc;
    struct job_result res;
    struct errmsg err;
};

static void relay_progress(void *arg, int pct)
{
    struct relay_log *l = arg;
    l->progress_calls++;
    l->last_pct = pct;
    if (l->stop_at_pct && pct >= l->stop_at_pct)
        atomic_store(&l->stop, true);
}

static int relay_save(void *arg, const char *ref)
{
    struct relay_log *l = arg;
    l->saves++;
    snprintf(l->saved, sizeof(l->saved), "%s", ref);
    return l->save_rc;
}

static void relay_done(void *arg, int rc, const struct job_result *res,
                       const struct errmsg *err)
{
    struct relay_log *l = arg;
    pthread_mutex_lock(&l->lock);
    l->rc = rc;
    l->res = *res;
    l->err = *err;
    l->done = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* One relayed job to its end: started, then waited for (the upstream
 * engine is asynchronous: it ends the job through ctl.done). */
static int relay_run(struct engine *e, const struct job *job, const char *ref,
                     struct relay_log *l, struct job_result *res,
                     struct errmsg *err)
{
    struct job_ctl ctl = { .task_id = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000",
                           .stop = &l->stop,
                           .progress = relay_progress,
                           .ref = ref,
                           .save_ref = relay_save,
                           .done = relay_done,
                           .arg = l };
    unlink(path_of("relayed.mp4"));
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->done = false;
    int rc = engine_start(e, job, NULL, path_of("relayed.mp4"), &ctl, err);
    if (rc == 0) {
        pthread_mutex_lock(&l->lock);
        while (!l->done)
            pthread_cond_wait(&l->cond, &l->lock);
        pthread_mutex_unlock(&l->lock);
        rc = l->rc;
        *res = l->res;
        *err = l->err;
    }
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    return rc;
}

static void fake_script(struct fake_answer *to, int *n,
                        const struct fake_answer *from, int count)
{
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < count; i++)
        to[i] = from[i];
    *n = count;
    pthread_mutex_unlock(&fake.lock);
}

static bool same_bytes_as_upstream(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char *got = xmalloc(fake.video_len + 1);
    size_t n = fread(got, 1, fake.video_len + 1, f);
    fclose(f);
    bool same = n == fake.video_len && memcmp(got, fake.video, n) == 0;
    free(got);
    return same;
}

static void upstream_spec_words(void)
{
    static const struct {
        const char *spec, *says;
    } bad[] = {
        { "upstream:", "DIALECT BASE_URL" },
        { "upstream:dashscope", "DIALECT BASE_URL" },
        { "upstream:openai http://h key=k", "dashscope or ttapi" },
        { "upstream:dashscope ftp://h key=k", "http(s)://host" },
        { "upstream:dashscope http:// key=k", "http(s)://host" },
        { "upstream:dashscope http://h/?a=b key=k", "http(s)://host" },
        { "upstream:dashscope http://h", "key=KEY or key-env=VAR" },
        { "upstream:dashscope http://h key=", "key:" },
        { "upstream:dashscope http://h key=a key-env=HOME", "once" },
        { "upstream:dashscope http://h key-env=PADDOCK_TEST_UNSET_VAR",
          "PADDOCK_TEST_UNSET_VAR" },
        { "upstream:dashscope http://h key=k rate=0", "rate=N" },
        { "upstream:dashscope http://h key=k rate=fast", "rate=N" },
        { "upstream:dashscope http://h key=k poll=soon", "poll=DURATION" },
        { "upstream:dashscope http://h key=k poll=1ms", "poll=DURATION" },
        { "upstream:dashscope http://h key=k poll=61m", "poll=DURATION" },
        { "upstream:dashscope http://h key=k poll=2s poll-max=1s",
          "poll-max=DURATION" },
        { "upstream:dashscope http://h key=k timeout=5h", "timeout=DURATION" },
        { "upstream:dashscope http://h key=k kye=SECRET-VALUE", "'kye'" },
        { "upstream:dashscope http://h key=k SECRET-VALUE", "OPTION=VALUE" },
    };
    struct engine *e = NULL;
    struct errmsg err = { 0 };
    unsetenv("PADDOCK_TEST_UNSET_VAR");
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        e = (struct engine *)1;
        CHECK_INT(engine_new(bad[i].spec, &e, &err), ERR_INVALID_PARAMETER);
        CHECK(e == NULL);
        if (!strstr(err.text, bad[i].says) || strstr(err.text, "SECRET")) {
            fprintf(stderr, "  '%s': %s\n", bad[i].spec, err.text);
            CHECK(false);
        }
    }
    CHECK_INT(engine_new("upstream:dashscope http://127.0.0.1:9/ key=k "
                         "rate=0.5 poll=500ms poll-max=1m timeout=2s",
                         &e, &err),
              0);
    if (e) {
        CHECK_STR(engine_name(e), "upstream");
        CHECK(!engine_local_media(e));
    }
    engine_free(e);
    /* The help says "from 10ms to 1h": both ends are taken, in any form of
     * the one duration syntax (1h was refused before it was shared). */
    static const char *const polls[] = { "poll=1h", "poll=10ms poll-max=1h",
                                         "poll=60m", "poll=1m30s",
                                         "poll=3600" };
    for (size_t i = 0; i < ARRAY_LEN(polls); i++) {
        char spec[128];
        snprintf(spec, sizeof(spec), "upstream:dashscope http://h key=k %s",
                 polls[i]);
        e = NULL;
        CHECK_INT(engine_new(spec, &e, &err), 0);
        if (!e)
            fprintf(stderr, "  '%s': %s\n", spec, err.text);
        engine_free(e);
    }
    setenv("PADDOCK_TEST_KEY_VAR", "from-the-environment", 1);
    CHECK_INT(engine_new("upstream:ttapi  https://api.example.com\t"
                         "key-env=PADDOCK_TEST_KEY_VAR",
                         &e, &err),
              0);
    engine_free(e);
    /* The registry names the upstream engine among the known ones. */
    CHECK_INT(engine_new("dreamworks", &e, &err), ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "upstream:") != NULL);
    /* A mistyped prefix: the message repeats the first word only, never
     * the key that follows it. */
    CHECK_INT(
        engine_new("upstreams:dashscope https://h key=sk-secret-42", &e, &err),
        ERR_INVALID_PARAMETER);
    CHECK(strstr(err.text, "'upstreams:dashscope'") != NULL);
    CHECK(strstr(err.text, "sk-secret-42") == NULL);
}

static void upstream_relays_a_job(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    fake_reset();
    const struct fake_answer polls[] = {
        { 200,
          "{\"output\":{\"task_id\":\"up-1\",\"task_status\":"
          "\"PENDING\"}}",
          NULL },
        { 200, fake_running, NULL },
        { 503, "{\"code\":\"ServiceUnavailable\"}", NULL },
        { 200,
          "{\"output\":{\"task_id\":\"up-1\",\"task_status\":"
          "\"RUNNING\",\"progress\":100}}",
          NULL },
    };
    fake_script(fake.poll, &fake.n_poll, polls, ARRAY_LEN(polls));
    job_kind(&job, &(struct job_inputs){ 0 }, TASK_I2V, "happyhorse-1.1-i2v", 5,
             77, "a horse");
    job.media[0].type = JOB_MEDIA_FIRST_FRAME;
    job.media[0].url = "data:image/png;base64,iVBORw0KGgo=";
    job.n_media = 1;
    job.watermark = false;
    job.extra = "{\"input\":{\"negative_prompt\":\"rain\",\"prompt\":\"NO\"},"
                "\"parameters\":{\"prompt_extend\":true,\"seed\":1}}";
    int rc = relay_run(e, &job, NULL, &l, &res, &err);
    if (rc < 0)
        fprintf(stderr, "  relay: %s\n", errmsg_text(&err));
    CHECK_INT(rc, 0);
    CHECK_INT(fake.submits, 1);
    CHECK_INT(fake.polls, 5);
    CHECK(!fake.tt_path);
    CHECK_STR(fake.auth, "Bearer " FAKE_KEY);
    CHECK_STR(fake.async, "enable");
    CHECK_STR(fake.idem, "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000");
    CHECK_STR(fake.poll_path, "/api/v1/tasks/up-1");
    CHECK_INT(l.saves, 1);
    CHECK_STR(l.saved, "up-1");
    CHECK(l.progress_calls >= 2 && l.last_pct == 100);
    CHECK(same_bytes_as_upstream(path_of("relayed.mp4")));
    /* The upstream's usage is what is billed. */
    CHECK(res.usage.output_s == 7 && res.usage.input_s == 0);
    CHECK_INT(res.usage.sr, 720);
    CHECK_STR(res.usage.ratio, "1:1");
    CHECK_STR(res.code, "");

    json_t *body = json_loads(fake.body, 0, NULL);
    json_t *in = json_object_get(body, "input");
    json_t *par = json_object_get(body, "parameters");
    json_t *m0 = json_array_get(json_object_get(in, "media"), 0);
    CHECK_STR(json_string_value(json_object_get(body, "model")),
              "happyhorse-1.1-i2v");
    CHECK_STR(json_string_value(json_object_get(in, "prompt")), "a horse");
    CHECK_STR(json_string_value(json_object_get(in, "negative_prompt")),
              "rain");
    CHECK_STR(json_string_value(json_object_get(m0, "type")), "first_frame");
    CHECK_STR(json_string_value(json_object_get(m0, "url")),
              "data:image/png;base64,iVBORw0KGgo=");
    CHECK_STR(json_string_value(json_object_get(par, "resolution")), "480P");
    CHECK(json_object_get(par, "ratio") == NULL); /* i2v: follows the image */
    CHECK_INT(json_integer_value(json_object_get(par, "duration")), 5);
    CHECK(json_is_false(json_object_get(par, "watermark")));
    CHECK_INT(json_integer_value(json_object_get(par, "seed")), 77);
    CHECK(json_is_true(json_object_get(par, "prompt_extend")));
    CHECK(json_object_get(par, "audio_setting") == NULL);
    json_decref(body);
    engine_free(e);
}

static void upstream_ttapi_dialect(void)
{
    struct engine *e = relay("ttapi", fake_base, "key=" FAKE_KEY " timeout=5s");
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    fake_reset();
    job_kind(&job, &(struct job_inputs){ 0 }, TASK_EDIT,
             "happyhorse-1.0-video-edit", 0, 3, "make it night");
    job.media[0].type = JOB_MEDIA_VIDEO;
    job.media[0].url = "https://example.com/in.mp4";
    job.n_media = 1;
    job.audio_origin = true;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), 0);
    CHECK(fake.tt_path);
    CHECK_STR(fake.tt_key, FAKE_KEY);
    CHECK_STR(fake.auth, "");
    CHECK_STR(fake.async, "");
    CHECK_STR(fake.poll_path, "/happyhorse/api/v1/tasks/up-1");
    json_t *body = json_loads(fake.body, 0, NULL);
    json_t *par = json_object_get(body, "parameters");
    CHECK_STR(json_string_value(json_object_get(par, "audio_setting")),
              "origin");
    CHECK(json_object_get(par, "duration") == NULL);
    json_decref(body);
    engine_free(e);
    /* A base that already ends in /happyhorse is not doubled. */
    char base_tt[96];
    snprintf(base_tt, sizeof(base_tt), "%s/happyhorse/", fake_base);
    e = relay("ttapi", base_tt, "key=" FAKE_KEY);
    fake_reset();
    if (e)
        CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), 0);
    CHECK_STR(fake.poll_path, "/happyhorse/api/v1/tasks/up-1");
    engine_free(e);
}

static void upstream_resumes_a_saved_task(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    fake_reset();
    job_t2v(&job, 480, "16:9", 3, 1, "resumed");
    CHECK_INT(relay_run(e, &job, "up-77", &l, &res, &err), 0);
    CHECK_INT(fake.submits, 0);
    CHECK_INT(l.saves, 0);
    CHECK_STR(fake.poll_path, "/api/v1/tasks/up-77");
    CHECK(same_bytes_as_upstream(path_of("relayed.mp4")));
    /* A saved id that cannot go into a URL is not followed. */
    fake_reset();
    CHECK_INT(relay_run(e, &job, "../../etc", &l, &res, &err), ERR_ALGO);
    CHECK_INT(fake.polls, 0);
    engine_free(e);
}

static void upstream_submit_retries(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e)
        return;
    job_t2v(&job, 480, "16:9", 3, 1, "busy upstream");
    /* 429 (with and without Retry-After) and 5xx, then the answer. */
    fake_reset();
    const struct fake_answer busy[] = {
        { 429, "{\"code\":\"Throttling.AllocationQuota\"}", "0" },
        { 429, "{\"code\":\"Throttling\"}", NULL },
        { 500, "{\"code\":\"InternalError\",\"message\":\"oops\"}", NULL },
        { 502, "<html>bad gateway</html>", NULL },
    };
    fake_script(fake.submit, &fake.n_submit, busy, ARRAY_LEN(busy));
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), 0);
    CHECK_INT(fake.submits, 5);
    CHECK_INT(l.saves, 1);
    CHECK(same_bytes_as_upstream(path_of("relayed.mp4")));

    /* 5xx every time: five retries, then the run fails. */
    fake_reset();
    struct fake_answer down[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        down[i] = (struct fake_answer){ 503,
                                        "{\"code\":\"ServiceUnavailable\","
                                        "\"message\":\"maintenance\"}",
                                        NULL };
    fake_script(fake.submit, &fake.n_submit, down, FAKE_SCRIPT);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK_INT(fake.submits, 6);
    CHECK(strstr(err.text, "answered HTTP 503 ServiceUnavailable") &&
          strstr(err.text, "maintenance"));
    CHECK_STR(res.code, "");
    engine_free(e);
}

static void upstream_refusals(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct engine *wrong = relay("dashscope", fake_base, "key=WRONG-KEY-42");
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e || !wrong)
        goto out;
    job_t2v(&job, 480, "16:9", 3, 1, "refused");

    /* Our key: refused at once, the key nowhere in the message. */
    fake_reset();
    CHECK_INT(relay_run(wrong, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK_INT(fake.refused, 1);
    CHECK(strstr(err.text, "refused paddock's key") &&
          strstr(err.text, "HTTP 401 InvalidApiKey") &&
          !strstr(err.text, fake_base) && !strstr(err.text, "WRONG-KEY"));
    CHECK_STR(res.code, "");

    /* The request itself: the upstream's code and message, as they are. */
    fake_reset();
    const struct fake_answer invalid[] = {
        { 400,
          "{\"code\":\"InvalidParameter\",\"message\":\"parameters."
          "duration must be an integer from 3 to 15\"}",
          NULL },
    };
    fake_script(fake.submit, &fake.n_submit, invalid, 1);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_INVALID_PARAMETER);
    CHECK_STR(res.code, "InvalidParameter");
    CHECK_STR(err.text, "parameters.duration must be an integer from 3 to 15");
    CHECK_INT(l.saves, 0);

    /* FAILED upstream, with a code paddock has never heard of. */
    fake_reset();
    const struct fake_answer failed[] = {
        { 200,
          "{\"output\":{\"task_id\":\"up-1\",\"task_status\":"
          "\"FAILED\",\"code\":\"Vendor.GpuMelted\",\"message\":"
          "\"the GPU melted\"}}",
          NULL },
    };
    fake_script(fake.poll, &fake.n_poll, failed, 1);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK_STR(res.code, "Vendor.GpuMelted");
    CHECK_STR(err.text, "the GPU melted");
    CHECK(access(path_of("relayed.mp4"), F_OK) != 0);

    /* CANCELED and UNKNOWN upstream. */
    static const struct {
        const char *status, *says;
    } ends[] = { { "CANCELED", "the upstream canceled task up-1" },
                 { "UNKNOWN", "the upstream no longer knows task up-1" } };
    for (size_t i = 0; i < ARRAY_LEN(ends); i++) {
        char b[160];
        snprintf(b, sizeof(b),
                 "{\"output\":{\"task_id\":\"up-1\",\"task_status\":\"%s\"}}",
                 ends[i].status);
        fake_reset();
        const struct fake_answer one[] = { { 200, b, NULL } };
        fake_script(fake.poll, &fake.n_poll, one, 1);
        CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
        CHECK_STR(err.text, ends[i].says);
        CHECK_STR(res.code, "");
    }

    /* The video link fails: nothing of it shows in the message. */
    fake_reset();
    pthread_mutex_lock(&fake.lock);
    fake.video_status = 404;
    pthread_mutex_unlock(&fake.lock);
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
    CHECK(strstr(err.text, "HTTP 404") && !strstr(err.text, "video.mp4") &&
          !strstr(err.text, "127.0.0.1") && !strstr(err.text, "SECRET"));
out:
    engine_free(e);
    engine_free(wrong);
}

static void upstream_unreachable(void)
{
    /* A port nothing listens on: bound, never listened to. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
    char closed[64];
    snprintf(closed, sizeof(closed), "http://127.0.0.1:%u",
             ntohs(sin.sin_port));
    struct engine *e = relay("dashscope", closed, "key=" FAKE_KEY);
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    job_t2v(&job, 480, "16:9", 3, 1, "nobody home");
    if (e) {
        CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_ALGO);
        /* Clients read this: the upstream's address is not in it. */
        CHECK(strstr(err.text, "unreachable") && !strstr(err.text, closed) &&
              !strstr(err.text, "127.0.0.1"));
        CHECK_INT(engine_check(e, NULL, &err), ERR_MODEL_UNAVAILABLE);
        CHECK(strstr(err.text, "unreachable") != NULL);
    }
    engine_free(e);
    close(fd);
}

static void upstream_check_and_stop(void)
{
    struct engine *e = relay("dashscope", fake_base, "key=" FAKE_KEY);
    struct engine *wrong = relay("ttapi", fake_base, "key=WRONG-KEY-42");
    struct relay_log l = { 0 };
    struct job_result res;
    struct errmsg err = { 0 };
    struct job job;
    if (!e || !wrong)
        goto out;
    fake_reset();
    CHECK_INT(engine_check(e, NULL, &err), 0);
    CHECK_INT(fake.checks, 1);
    CHECK_INT(engine_check(wrong, NULL, &err), ERR_MODEL_UNAVAILABLE);
    CHECK(strstr(err.text, "refused the key") && !strstr(err.text, "WRONG"));

    /* The stop flag, set while the upstream task runs. */
    job_t2v(&job, 480, "16:9", 3, 1, "stopped");
    fake_reset();
    struct fake_answer running[FAKE_SCRIPT];
    for (int i = 0; i < FAKE_SCRIPT; i++)
        running[i] = (struct fake_answer){ 200, fake_running, NULL };
    fake_script(fake.poll, &fake.n_poll, running, FAKE_SCRIPT);
    l.stop_at_pct = 40;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_STOPPED);
    CHECK_INT(fake.polls, 1);
    CHECK_INT(l.saves, 1);

    /* Another worker took the task: give up, submit nothing more. */
    fake_reset();
    memset(&l, 0, sizeof(l));
    l.save_rc = ERR_CONFLICT;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_STOPPED);
    CHECK_INT(fake.polls, 0);
    l.save_rc = ERR_STORE;
    CHECK_INT(relay_run(e, &job, NULL, &l, &res, &err), ERR_INTERNAL);
out:
    engine_free(e);
    engine_free(wrong);
}

int main(void)
{
    unit_suite = "engine";
    struct errmsg err = { 0 };
    if (engine_fixture_init() < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    if (net_global_init(&err) == 0 && fake_start()) {
        RUN(upstream_spec_words);
        RUN(upstream_relays_a_job);
        RUN(upstream_ttapi_dialect);
        RUN(upstream_resumes_a_saved_task);
        RUN(upstream_submit_retries);
        RUN(upstream_refusals);
        RUN(upstream_unreachable);
        RUN(upstream_check_and_stop);
    } else {
        printf("FAIL engine.upstream_fixture\n");
        unit_failed++;
    }
    fake_stop();
    net_global_fini();
    engine_fixture_fini();
    return UNIT_END();
}
