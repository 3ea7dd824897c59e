/*
 * blob: result files and their signed, expiring links.
 *
 * Layout under the data directory: results/<task_id>-<attempt>.mp4 (final,
 * served) and tmp/ (renders in progress). A render is written in tmp/,
 * fsync'd, renamed into results/ and the directory fsync'd before the task
 * may become SUCCEEDED, so a committed result always has its file.
 *
 * Links: /files/<name>?expires=<unix s>&signature=<hex HMAC-SHA256 over
 * "/files/<name>\n<expires>">, valid until the task's retention ends; any
 * node holding the same key can verify them. A paced link (a sandbox
 * scenario's link=slow) also carries &rate=<bytes per second>, signed with
 * the rest ("/files/<name>\n<expires>\nrate=<rate>"), so the pace cannot
 * be taken off.
 *
 * Uploads (the upload extension, docs/extensions.md):
 * uploads/<key_id>/<upload_id>, the bytes a key sent with POST
 * /api/v1/uploads, written like a result (tmp/, fsync, rename, fsync the
 * directories). The key's directory is the ownership: another key's id is
 * simply not there. A file's mtime is its upload time; the keeper removes
 * it once the retention has passed (blob_upload_sweep). Workers read
 * uploads through a copy (blob_upload_copy), so a task that has its copy
 * is not touched by the sweep.
 *
 * OSS-style uploads (docs/extensions.md, "Local files from DashScope
 * SDKs"): a file an SDK posted to paddock's upload host under an object
 * key, with a policy issued to a key. It is an upload of that key like any
 * other, named by blob_oss_name(object key) instead of a uuid, so the
 * key's directory is again the ownership; it lives BLOB_OSS_KEEP_MS from
 * its upload time, whatever the retention. The policy's signature is an
 * HMAC under the link key, bound to the key it was issued to.
 *
 * Threads: any thread; the struct is read-only after blob_open.
 */
#ifndef PADDOCK_BLOB_H
#define PADDOCK_BLOB_H

#include "../core/core.h"

#include <stdint.h>

struct blob;

/* A result file name: "<uuid>-<attempt>.mp4". */
#define BLOB_NAME_MAX 64
/* A key id that names an upload directory (auth/'s are 16 or 20). */
#define BLOB_KEY_MAX 64

/* A temporary file of another host untouched this long is a dead render. */
#define BLOB_TMP_STALE_MS (10 * 60 * 1000)

/* Open (creating results/, tmp/ and uploads/) under data_dir; files in
 * tmp/ of renders that died with their process are removed
 * (blob_sweep_tmp). */
int blob_open(const char *data_dir, const unsigned char key[32],
              struct blob **out, struct errmsg *err);
/* NULL is fine. */
void blob_free(struct blob *b);

/* The result name for an attempt of a task. */
void blob_name(const char *task_id, int attempt, char out[BLOB_NAME_MAX]);
/* True when `name` has the shape blob_name() makes (nothing else is ever
 * opened, so no path can escape results/). */
bool blob_name_valid(const char *name);
/*
 * Remove temporary files of renders that are over: this host's whose
 * process is gone, other hosts' (a shared data directory) untouched for
 * BLOB_TMP_STALE_MS. at_start: this process has no render yet, so files
 * with its own pid are a previous life's. Returns how many were removed.
 */
int blob_sweep_tmp(const struct blob *b, bool at_start);
/* The temporary path a render of `name` writes (caller frees); its file
 * name carries this host and process. */
char *blob_tmp_path(const struct blob *b, const char *name);
/* fsync tmp_path, rename it to results/<name>, fsync the directory. */
int blob_commit(const struct blob *b, const char *tmp_path, const char *name);
/* Remove results/<name>; 0 when gone or never there. */
int blob_remove(const struct blob *b, const char *name);

/*
 * Remove result files no task owns: each file older than min_age_ms (a
 * younger one may be a result whose commit is under way) for which
 * keep(arg, name) says false. *removed = how many. 0 or ERR_IO.
 */
int blob_sweep(const struct blob *b, int64_t min_age_ms,
               bool (*keep)(void *arg, const char *name), void *arg,
               int *removed);

/* Append the signed absolute URL of `name` to out. base: "http://h:p". */
void blob_url(const struct blob *b, struct buf *out, const char *base,
              const char *name, int64_t expires_ms);
/* The same with a pace: the file is to be sent at `rate` bytes per second
 * (0: a plain link). */
void blob_url_paced(const struct blob *b, struct buf *out, const char *base,
                    const char *name, int64_t expires_ms, int64_t rate);
/* Check a link's expiry (unix seconds, decimal) and signature (hex);
 * 0 or ERR_BAD_SIGNATURE. */
int blob_verify(const struct blob *b, const char *name, const char *expires,
                const char *signature, int64_t now_ms);
/* The same for a link that may carry a pace (`rate`, the query's value,
 * or NULL): 0 with *rate_out its bytes per second (0: none). */
int blob_verify_paced(const struct blob *b, const char *name,
                      const char *expires, const char *rate,
                      const char *signature, int64_t now_ms, int64_t *rate_out);
/* Open results/<name> for reading: *fd and *size; ERR_NOT_FOUND. */
int blob_open_file(const struct blob *b, const char *name, int *fd,
                   uint64_t *size);

/* ------------------------------------------------------------ uploads */

/* How long an OSS-style upload is kept: DashScope's temporary files last
 * 48 h, and an SDK's oss:// reference is good for as long. */
#define BLOB_OSS_KEEP_MS (48ll * 3600 * 1000)
/* An upload's name: a uuid, or "oss-" and 64 hex digits; with its NUL. */
#define BLOB_UPLOAD_NAME_MAX 72

/* True when `key_id` may name an upload directory (1 to BLOB_KEY_MAX of
 * A-Z a-z 0-9 _ -: what auth/ makes) and `upload_id` is an upload's name:
 * a lower-case uuid, or what blob_oss_name makes. Every upload function
 * below takes either name. */
bool blob_upload_names_valid(const char *key_id, const char *upload_id);
/* The upload name of an OSS object key: "oss-" + hex SHA-256 of it (any
 * bytes; the key itself never becomes a path). */
void blob_oss_name(const char *object_key, char out[BLOB_UPLOAD_NAME_MAX]);
/* Append the signature of an upload policy issued to key_id: base64 of
 * an HMAC-SHA256 over both, under the link key. */
void blob_oss_sign(const struct blob *b, const char *key_id, const char *policy,
                   struct buf *out);
/* 0 when `signature` is what blob_oss_sign makes of key_id and policy
 * (compared in constant time), else ERR_BAD_SIGNATURE. */
int blob_oss_verify(const struct blob *b, const char *key_id,
                    const char *policy, const char *signature);
/*
 * Store `len` bytes as uploads/<key_id>/<upload_id>: a temporary file in
 * tmp/ (named by host and pid, so blob_sweep_tmp removes it if we die),
 * fsync, rename, fsync the directories. *mtime_ms: the file's upload time.
 * 0, ERR_INVALID_PARAMETER (names) or ERR_IO (logged with errno).
 */
int blob_upload_put(const struct blob *b, const char *key_id,
                    const char *upload_id, const void *data, size_t len,
                    int64_t *mtime_ms);
/*
 * The same, streamed: begin makes the temporary file (ERR_INVALID_PARAMETER
 * for bad names, ERR_IO), write appends, commit fsyncs and renames it into
 * place (*mtime_ms as above); free removes the temporary file unless it
 * was committed (NULL is fine). One thread at a time per upload.
 */
struct blob_upload;
int blob_upload_begin(const struct blob *b, const char *key_id,
                      const char *upload_id, struct blob_upload **out);
int blob_upload_write(struct blob_upload *u, const void *data, size_t len);
int64_t blob_upload_size(const struct blob_upload *u);
int blob_upload_commit(struct blob_upload *u, int64_t *mtime_ms);
/* The same, but never over an upload of that name: ERR_CONFLICT when
 * there is one (nothing replaced; free removes the temporary file). */
int blob_upload_commit_new(struct blob_upload *u, int64_t *mtime_ms);
void blob_upload_free(struct blob_upload *u);
/* The size and upload time of a key's upload; ERR_NOT_FOUND when the key
 * has no such upload (another key's id included). */
int blob_upload_stat(const struct blob *b, const char *key_id,
                     const char *upload_id, int64_t *size, int64_t *mtime_ms);
/* The key's unexpired uploads, those with an mtime after since_ms (OSS
 * ones: after oss_since_ms): how many, their bytes, and the oldest one's
 * mtime (0 when none). 0 or ERR_IO; a key that never uploaded has none. */
int blob_upload_usage(const struct blob *b, const char *key_id,
                      int64_t since_ms, int64_t oss_since_ms, int *count,
                      int64_t *bytes, int64_t *oldest_ms);
/*
 * Copy a key's upload into a new file at `dst` (0600; removed again on
 * failure) for an engine: *size bytes. ERR_NOT_FOUND (no such upload for
 * this key), ERR_TOO_LARGE (over max_bytes; nothing is copied) or ERR_IO,
 * with a message in *err.
 */
int blob_upload_copy(const struct blob *b, const char *key_id,
                     const char *upload_id, const char *dst, int64_t max_bytes,
                     int64_t *size, struct errmsg *err);
/* Remove every upload with an mtime at or before `cutoff_ms` (OSS ones:
 * `oss_cutoff_ms`), and key directories left empty. *removed = how many
 * files. 0 or ERR_IO. */
int blob_upload_sweep(const struct blob *b, int64_t cutoff_ms,
                      int64_t oss_cutoff_ms, int *removed);

#endif
