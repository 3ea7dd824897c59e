/*
 * task: the task model of the HappyHorse API, and its one rulebook.
 *
 * - the model table (seven models, four kinds) and the output size table;
 * - the rules (rules.c), pure data and functions that every side asks:
 *   what each kind of model takes (docs/api.md s.2), the images paddock
 *   takes by their magic bytes, and the limits of s.3.6 on a measured
 *   input (media/ measures, this judges). The submit parse, engine_run's
 *   check of fetched inputs and the CLI's check of its flags all use them;
 * - struct job, the validated submit ("job spec"): task_job_parse() turns a
 *   submit body into one, a pure function with no I/O, so every rule of
 *   docs/api.md s.2, s.3 and s.9 is unit-tested here; task_job_to_json() and
 *   task_job_from_json() carry it through the store;
 * - struct task, one stored task record, and the JSON of every response
 *   that shows a task (query, list), written directly into a buffer.
 *
 * Thread safety: everything here is reentrant; the tables are constant.
 * Ownership: struct job and struct task own their heap strings; release them
 * with task_job_fini() and task_fini().
 */
#ifndef PADDOCK_TASK_H
#define PADDOCK_TASK_H

#include "../core/core.h"

/* ---------------------------------------------------------------- models */

enum task_kind { TASK_T2V, TASK_I2V, TASK_R2V, TASK_EDIT };

struct task_model {
    const char *name; /* "happyhorse-1.0-t2v" */
    enum task_kind kind;
};

/* The model table entry for `name`, or NULL when no such model exists. */
const struct task_model *task_model_find(const char *name);
/* All models, in table order; *n receives the count. */
const struct task_model *task_models(size_t *n);
/* "t2v", "i2v", "r2v", "video-edit". */
const char *task_kind_name(enum task_kind kind);

/* ------------------------------------------------------------ sizes */

#define TASK_RATIO_MAX 6 /* "16:9" plus NUL, with room */

/* Output width and height for a tier (480, 720, 1080) and ratio ("16:9");
 * 0, or ERR_INVALID_PARAMETER when either is not in docs/api.md s.4. */
int task_size(int resolution, const char *ratio, int *w, int *h);
/* The ratio of the size table nearest to a w:h aspect (for i2v, edit). */
const char *task_nearest_ratio(int w, int h);
/* All ratios in table order; *n receives the count. */
const char *const *task_ratios(size_t *n);

/* ------------------------------------------------------------ the rules */

enum job_media_type {
    JOB_MEDIA_FIRST_FRAME,
    JOB_MEDIA_REFERENCE_IMAGE,
    JOB_MEDIA_VIDEO
};
#define JOB_MEDIA_TYPES (JOB_MEDIA_VIDEO + 1)

/* Entries of media `type` a model of `kind` takes (docs/api.md s.2):
 * *min to *max, both 0 when it takes none. */
void task_kind_media(enum task_kind kind, enum job_media_type type,
                     unsigned *min, unsigned *max);
/* Whether input.prompt is required (t2v, r2v, video-edit). */
bool task_kind_needs_prompt(enum task_kind kind);
/* What the kind takes, in words for messages ("exactly 1 first_frame"). */
const char *task_kind_takes(enum task_kind kind);
/* Whether parameters.`name` applies to the kind ("ratio": t2v and r2v;
 * "duration": all but video-edit; "audio_setting": video-edit only); a
 * parameter that does not is ignored, not refused. */
bool task_kind_uses_param(enum task_kind kind, const char *name);
/* The values parameters.resolution ("480P", "720P", "1080P") and
 * parameters.audio_setting ("auto", "origin") take, exact case; *n
 * receives the count. */
const char *const *task_resolutions(size_t *n);
const char *const *task_audio_settings(size_t *n);

/* The still images the API takes. */
enum task_image {
    TASK_IMAGE_NONE,
    TASK_IMAGE_JPEG,
    TASK_IMAGE_PNG,
    TASK_IMAGE_WEBP
};
/* Bytes task_image_sniff needs to tell them all apart. */
#define TASK_IMAGE_SNIFF_BYTES 12
/* The image data[0..n) is by its magic number (JPEG's FF D8 FF, PNG's
 * signature, RIFF....WEBP), or TASK_IMAGE_NONE; the content decides, never
 * a name. */
enum task_image task_image_sniff(const void *data, size_t n);
/* "image/jpeg", "image/png", "image/webp"; NULL for TASK_IMAGE_NONE. */
const char *task_image_mime(enum task_image type);

enum task_media_kind {
    TASK_MEDIA_IMAGE, /* a JPEG, PNG or WEBP still */
    TASK_MEDIA_VIDEO  /* an MP4 or MOV file with a video track */
};

/* What media/ measured of one input (media_probe). Strings are static. */
struct task_media_info {
    enum task_media_kind kind;
    const char *format; /* "jpeg", "png", "webp" or "mov" (MP4 and MOV) */
    const char *codec;  /* the video codec ("h264"); images: as format */
    int width, height;  /* stored size in pixels */
    double duration_s;  /* video: length of the video track; images: 0 */
    double fps;         /* video: average frame rate; images: 0 */
    bool has_audio;     /* video: an audio track that can be decoded */
};

/* The limits of docs/api.md s.3.6 for one kind of input. */
enum task_media_rule {
    TASK_RULE_IMAGE,     /* i2v first frame, edit reference: sides >= 300 */
    TASK_RULE_REFERENCE, /* r2v reference: short side >= 400 */
    TASK_RULE_VIDEO      /* 3..60 s, sides 360..4096, more than 8 fps */
};

/* The rule media of `type` sent to a model of `kind` is held to. */
enum task_media_rule task_media_rule(enum task_kind kind,
                                     enum job_media_type type);
/*
 * Apply a rule to a measurement (images: aspect 1:2.5 to 2.5:1 as well).
 * 0, or ERR_INVALID_PARAMETER with `name` and the measured value ("media[0]
 * image is 200x200: each side must be at least 300 px"), or
 * ERR_UNSUPPORTED_FILE_FORMAT when the input is not of the rule's kind.
 */
int task_media_check(const struct task_media_info *info,
                     enum task_media_rule rule, const char *name,
                     struct errmsg *err);

/* ------------------------------------------------------------- job spec */

/* A request field's name, as messages quote it ("input.media[0].url"). */
#define JOB_FIELD_MAX 48

struct job_media {
    enum job_media_type type;
    char *url; /* http(s) URL, data:image/...;base64,...,
                  paddock-upload://<uuid> or oss://<key> (owned) */
    /* The request field the URL came from ("input.media[0].url",
     * "input.video_url"), for messages; set by task_job_parse only (not
     * stored: "" after task_job_from_json). */
    char field[JOB_FIELD_MAX];
};

/*
 * paddock's upload extension (docs/extensions.md): a media URL naming a
 * file the same key sent with POST /api/v1/uploads. task_job_parse accepts
 * the syntax only ("paddock-upload://" and a uuid; stored with both in
 * lower case); whether the upload exists and is the key's is the API's
 * check, and the worker copies the file instead of downloading it.
 */
#define TASK_UPLOAD_SCHEME "paddock-upload://"

/* When `url` is a paddock-upload:// URL as task_job_parse stores it: true,
 * with its upload id in out. */
bool task_upload_id(const char *url, char out[UUID_STR_LEN + 1]);

/*
 * What a DashScope SDK sends for a local file it uploaded itself
 * (docs/extensions.md, "Local files from DashScope SDKs"): "oss://" and
 * the object key it posted the file under. task_job_parse accepts the
 * syntax only (the scheme stored in lower case, the key as sent: 1 to
 * TASK_OSS_KEY_MAX bytes of UTF-8 without control bytes); the API resolves
 * it only with the request header X-DashScope-OssResourceResolve: enable,
 * and only to a file the same key uploaded; the worker copies the file.
 */
#define TASK_OSS_SCHEME "oss://"
/* OSS's own bound on an object key. */
#define TASK_OSS_KEY_MAX 1023

/* When `url` is an oss:// URL as task_job_parse stores it: its object key
 * (borrowed from url), else NULL. */
const char *task_oss_key(const char *url);

#define TASK_CODE_MAX 64 /* an API code ("InternalError.Algo") */

/* How a resolved sandbox scenario ends a task's link (link=...). */
enum task_link { TASK_LINK_NORMAL, TASK_LINK_EXPIRED, TASK_LINK_SLOW };

/*
 * A sandbox scenario resolved for one task (task_scenario_plan below): the
 * concrete values its worker and the API act on. It travels in the stored
 * job spec, so every node and every attempt sees the same one.
 */
struct job_scenario {
    bool on;          /* some directive was given */
    int64_t queue_ms; /* PENDING at least this long after the submit */
    int64_t run_ms;   /* RUNNING this long after each claim */
    bool fail;        /* ends FAILED with fail_code after its run */
    char fail_code[TASK_CODE_MAX];
    char fail_message[LIMIT_SCENARIO_MESSAGE + 1]; /* "": a default */
    int query_errors; /* its first N queries answer 500 */
    enum task_link link;
};

struct job {
    char model[LIMIT_MODEL_NAME + 1];
    enum task_kind kind;
    char *prompt; /* owned; NULL when absent; already cut to the limit */
    struct job_media media[LIMIT_MEDIA_ITEMS];
    size_t n_media;
    int resolution;             /* 480, 720 or 1080 */
    char ratio[TASK_RATIO_MAX]; /* t2v/r2v: as asked; i2v/edit: "" (the
                                   engine takes it from the input) */
    int duration;               /* seconds, 3..15; edit: 0 (input's) */
    bool watermark;
    int64_t seed;      /* 0..2147483647 */
    bool audio_origin; /* edit: audio_setting "origin" */
    char *extra;       /* owned JSON object text of accepted pass-through fields
                          ({"input":{...},"parameters":{...}}), or NULL */
    struct job_scenario scenario; /* set by the API, not by the parse */
};

const char *task_media_type_name(enum job_media_type type);

/*
 * The model names a server takes: models it has a route for and aliases
 * (route/). find() gives the table entry a name means (an alias gives its
 * target), or NULL when the name is not served; names() fills out[0..max)
 * with the names a client may send, for messages, and returns how many.
 */
struct task_catalog {
    const struct task_model *(*find)(const void *arg, const char *name);
    size_t (*names)(const void *arg, const char **out, size_t max);
    const void *arg;
};

/*
 * Validate a submit body (docs/api.md s.2, s.3, s.9) into *out. `cat` says
 * which model names are served (NULL: every model of the table); job->model
 * is the model the name means (an alias is resolved).
 * `random_seed` is used when the body has no seed (the caller draws it, so
 * this stays pure). On failure returns a negative code (ERR_INVALID_PARAMETER,
 * ERR_EMPTY_MODEL, ERR_EMPTY_INPUT, ERR_MODEL_NOT_FOUND) with the message
 * in *err naming the field and what was expected, and *out is left empty.
 */
int task_job_parse(const char *body, size_t len, int64_t random_seed,
                   const struct task_catalog *cat, struct job *out,
                   struct errmsg *err);
/* What a model of `kind` accepts, as JSON members for GET /api/v1/models:
 * ,"media":[{"type","min","max"}...],"parameters":{...} (the rules
 * task_job_parse applies). */
void task_json_rules(struct buf *b, enum task_kind kind);
/* Release the job's heap strings; the struct may be reused. NULL is fine. */
void task_job_fini(struct job *job);
/* The job as JSON text for the store (caller frees). */
char *task_job_to_json(const struct job *job);
/* Rebuild a job from task_job_to_json() output; 0 or ERR_INTERNAL. */
int task_job_from_json(const char *json, struct job *out);

/* ------------------------------------------------------------ scenarios */

/*
 * Sandbox scenarios (docs/extensions.md, "Scenarios"): a comma list of
 * directives that steer how a sandbox task behaves, so a client's tests can
 * meet real timing and every failure. Sources, first to last, later wins
 * per directive: the sandbox engine's options, the key's default, a
 * "[paddock: ...]" token in the prompt, the X-Paddock-Scenario header.
 *
 *   queue=DURATION | queue=MIN..MAX   PENDING at least this long
 *   run=DURATION | run=MIN..MAX       RUNNING this long
 *   realistic                         queue=2s..20s,run=40s..120s
 *   speed=X                           divides queue and run (0 < X <= 1000)
 *   fail=CODE[:MESSAGE]               ends FAILED with CODE after its run
 *   fail-rate=P                       only a fraction P (0..1) fails
 *   submit=STATUS:CODE                the submit answers STATUS (400..599)
 *   query-errors=N                    the first N queries answer 500
 *   link=expired | link=slow          the video link: 403, or 64 KiB/s
 *
 * Durations are clock_parse_duration's, 0 to 1 h. A value within a range
 * and the fail-rate draw come from a hash of the job (model, prompt,
 * seed, parameters, media), never from the random task id: the same
 * request with the same seed behaves the same on every run. All of it is
 * pure (no I/O, no clock, no randomness).
 */

/* Which directives a scenario gives (struct task_scenario.set). */
enum {
    TASK_SC_QUEUE = 1 << 0,
    TASK_SC_RUN = 1 << 1,
    TASK_SC_SPEED = 1 << 2,
    TASK_SC_FAIL = 1 << 3,
    TASK_SC_FAIL_RATE = 1 << 4,
    TASK_SC_SUBMIT = 1 << 5,
    TASK_SC_QUERY_ERRORS = 1 << 6,
    TASK_SC_LINK = 1 << 7,
};

/* What the sources said, directive by directive (before resolution). */
struct task_scenario {
    unsigned set;        /* TASK_SC_* of the directives given */
    int64_t queue_ms[2]; /* MIN, MAX (equal for one duration) */
    int64_t run_ms[2];   /* MIN, MAX */
    double speed;        /* > 0 */
    char fail_code[TASK_CODE_MAX];
    char fail_message[LIMIT_SCENARIO_MESSAGE + 1]; /* "": none given */
    double fail_rate;                              /* 0..1 */
    int submit_status;                             /* 400..599 */
    char submit_code[TASK_CODE_MAX];
    int query_errors; /* 0..LIMIT_SCENARIO_QUERY_ERRORS */
    enum task_link link;
};

/* The sources' names, as messages name them. */
#define TASK_SCENARIO_HEADER "X-Paddock-Scenario"
#define TASK_SCENARIO_TOKEN  "[paddock:"

/*
 * Read the directives of text[0..len) over what *sc holds (later wins per
 * directive; an empty text gives none). 0; or ERR_INVALID_PARAMETER with a
 * message naming `source` and the directive ("header X-Paddock-Scenario:
 * 'run=soon': expected run=DURATION or run=MIN..MAX ..."), *sc unchanged.
 */
int task_scenario_parse(struct task_scenario *sc, const char *text, size_t len,
                        const char *source, struct errmsg *err);
/*
 * The "[paddock: ...]" token of a prompt, read over *sc (source "the
 * prompt's [paddock: ...] token"). 0 with *cleaned NULL when the prompt has
 * none; 1 with *cleaned the prompt without it (and one blank beside it;
 * caller frees); or ERR_INVALID_PARAMETER (malformed directives, no
 * closing ']', a second token). NULL prompt: 0.
 */
int task_scenario_from_prompt(struct task_scenario *sc, const char *prompt,
                              char **cleaned, struct errmsg *err);
/* Resolve *sc for `job` (its prompt without the token) into *out: values
 * within ranges, speed applied, the fail-rate drawn, from the job's hash.
 * sc->set 0 leaves *out off. */
void task_scenario_plan(const struct task_scenario *sc, const struct job *job,
                        struct job_scenario *out);
/* The failure message of a planned failure: its own, or one that says a
 * scenario asked for it, into out. */
void task_scenario_fail_text(const struct job_scenario *s, char *out,
                             size_t cap);
/* For job.c: the plan as the spec's "scenario" member (,"scenario":{...},
 * nothing when off), and back from that member (a jansson object; NULL:
 * off). 0 or ERR_INTERNAL. */
void task_scenario_json(struct buf *b, const struct job_scenario *s);
struct json_t;
int task_scenario_from_json(const struct json_t *obj, struct job_scenario *out);

/* ---------------------------------------------------------- task record */

enum task_status {
    TASK_PENDING,
    TASK_RUNNING,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_CANCELED,
    TASK_UNKNOWN
};

/* "PENDING" ... "UNKNOWN". */
const char *task_status_name(enum task_status status);
/* Parse a status name; 0 or ERR_INVALID_PARAMETER. */
int task_status_parse(const char *name, enum task_status *out);
/* SUCCEEDED, FAILED or CANCELED. */
bool task_status_terminal(enum task_status status);

#define TASK_KEY_ID_MAX 64
#define TASK_REF_MAX    256 /* an engine's reference (upstream task id) */

/* Billed usage of a SUCCEEDED task (docs/api.md s.5). */
struct task_usage {
    double input_s;  /* input video seconds used (edit), else 0 */
    double output_s; /* output video seconds */
    int sr;          /* 480, 720, 1080 */
    char ratio[TASK_RATIO_MAX];
};

struct task {
    char task_id[UUID_STR_LEN + 1];
    char key_id[TASK_KEY_ID_MAX + 1];
    char model[LIMIT_MODEL_NAME + 1];
    enum task_status status;
    char *spec;           /* owned job JSON (task_job_to_json) */
    char *prompt;         /* owned orig_prompt, NULL when none */
    int64_t submit_ms;    /* epoch ms */
    int64_t scheduled_ms; /* 0 until first claimed */
    int64_t end_ms;       /* 0 until terminal */
    int64_t expire_ms;    /* retention end: task, file and link go */
    int attempt;          /* claims so far */
    char code[TASK_CODE_MAX];
    char *message; /* owned; FAILED only */
    struct task_usage usage;
    char *result; /* owned result file name under results/, SUCCEEDED */
    int progress; /* RUNNING: 0..100 as the engine last reported */
    char *ref;    /* owned engine reference (upstream task id), or NULL */
    /* Written at submit only: a PENDING task is not claimed before this
     * (epoch ms; a sandbox scenario's queue delay); 0: at once. */
    int64_t not_before_ms;
    int queries; /* queries a scenario's query-errors counted so far */
    /* Changes of status or progress so far (the status stream's event
     * id: it only grows). */
    int64_t rev;
    /* Its number among its key's submits (1, 2, ...; 0: before the
     * store counted them): the queue position's estimate reads it. */
    int64_t qseq;
};

/* Release owned strings and zero the struct. NULL is fine. */
void task_fini(struct task *t);
/* Gone for its client: finished and past its retention (docs/api.md s.8.2). An
 * unfinished task never expires: it is not lost. */
bool task_expired(const struct task *t, int64_t now_ms);

/* --------------------------------------------------- response writers */

struct task_view {
    int utc_offset_min;     /* time zone of the *_time strings */
    const char *video_url;  /* signed absolute URL (SUCCEEDED), or NULL */
    int64_t queue_position; /* PENDING: 1 = next (extension); 0: absent */
};

/*
 * The query answer (docs/api.md s.5) into b.
 * t == NULL writes the UNKNOWN shape for `task_id`. Fields appear exactly
 * when the table says; usage numbers are JSON numbers.
 */
void task_json_query(struct buf *b, const char *request_id, const char *task_id,
                     const struct task *t, const struct task_view *view);
/* The list answer (docs/api.md s.6.2): one page of tasks, times in epoch ms. */
void task_json_list(struct buf *b, const char *request_id,
                    const struct task *tasks, size_t n, int64_t total,
                    int64_t page_no, int64_t page_size);
/* The submit answer: request_id, output.task_id, output.task_status
 * (PENDING for a new task; an idempotent replay shows the task as it is). */
void task_json_submitted(struct buf *b, const char *request_id,
                         const char *task_id, enum task_status status);
/* {"request_id", "code", "message"}. */
void task_json_error(struct buf *b, const char *request_id, const char *code,
                     const char *message);

#endif
