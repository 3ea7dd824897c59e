/* Result files and uploads: temp-then-rename with fsyncs, signed links. */
#include "blob.h"

#include "../log/log.h"
#include "../sign/sign.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct blob {
    char *results;        /* <data>/results */
    char *tmp;            /* <data>/tmp */
    char *uploads;        /* <data>/uploads */
    struct sign_key *key; /* the link-signing key, pre-keyed */
};

static int make_dir(const char *path, struct errmsg *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return errmsg_set(err, ERR_IO, "cannot create directory %s: %s", path,
                          strerror(errno));
    return 0;
}

/* A render's temporary file is "<host>.<pid>.<name>": the process that
 * writes it is known, so another process sharing the directory can tell a
 * dead render from a live one. */
static void tmp_owner(char out[80])
{
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '-';
    snprintf(out, 80, "%s.%d", host, (int)getpid());
}

/* Is this temporary file's render certainly over? Ours from this host:
 * when its process is gone (or is us: a previous life with our pid, as in a
 * container). Another host's: when untouched for BLOB_TMP_STALE_MS. */
static bool tmp_dead(int dirfd, const char *file, const char *me)
{
    size_t host_len = strcspn(me, ".");
    const char *dot = strchr(file, '.');
    if (dot && (size_t)(dot - file) == host_len &&
        strncmp(file, me, host_len) == 0) {
        char *end;
        long pid = strtol(dot + 1, &end, 10);
        if (end != dot + 1 && *end == '.' && pid > 0) {
            if (pid == (long)getpid())
                return true;
            return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
        }
    }
    struct stat st;
    if (fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    int64_t mtime_ms =
        (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return clock_now_ms() - mtime_ms > BLOB_TMP_STALE_MS;
}

int blob_sweep_tmp(const struct blob *b, bool at_start)
{
    DIR *d = opendir(b->tmp);
    if (!d)
        return 0;
    char me[80];
    tmp_owner(me);
    struct dirent *e;
    int removed = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        /* At start our own pid's files are a previous life's; later they
         * are renders in progress. */
        bool ours = strncmp(e->d_name, me, strlen(me)) == 0 &&
                    e->d_name[strlen(me)] == '.';
        if ((ours && !at_start) || !tmp_dead(dirfd(d), e->d_name, me))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    if (removed)
        log_info("removed unfinished renders", "dir=%s count=%d", b->tmp,
                 removed);
    return removed;
}

int blob_open(const char *data_dir, const unsigned char key[32],
              struct blob **out, struct errmsg *err)
{
    struct blob *b = xcalloc(1, sizeof(*b));
    b->results = xasprintf("%s/results", data_dir);
    b->tmp = xasprintf("%s/tmp", data_dir);
    b->uploads = xasprintf("%s/uploads", data_dir);
    b->key = sign_key_new(key, 32);
    int ret = make_dir(b->results, err);
    if (ret == 0)
        ret = make_dir(b->tmp, err);
    if (ret == 0)
        ret = make_dir(b->uploads, err);
    if (ret < 0) {
        blob_free(b);
        *out = NULL;
        return ret;
    }
    blob_sweep_tmp(b, true);
    *out = b;
    return 0;
}

void blob_free(struct blob *b)
{
    if (!b)
        return;
    free(b->results);
    free(b->tmp);
    free(b->uploads);
    sign_key_free(b->key);
    free(b);
}

void blob_name(const char *task_id, int attempt, char out[BLOB_NAME_MAX])
{
    snprintf(out, BLOB_NAME_MAX, "%s-%d.mp4", task_id, attempt);
}

bool blob_name_valid(const char *name)
{
    char id[UUID_STR_LEN + 1];
    size_t n = strnlen(name, BLOB_NAME_MAX);
    if (n >= BLOB_NAME_MAX || n < UUID_STR_LEN + 6 ||
        name[UUID_STR_LEN] != '-' || strcmp(name + n - 4, ".mp4") != 0)
        return false;
    memcpy(id, name, UUID_STR_LEN);
    id[UUID_STR_LEN] = '\0';
    if (!id_is_uuid(id))
        return false;
    for (size_t i = UUID_STR_LEN + 1; i < n - 4; i++)
        if (name[i] < '0' || name[i] > '9')
            return false;
    return n - 4 > UUID_STR_LEN + 1;
}

char *blob_tmp_path(const struct blob *b, const char *name)
{
    char me[80];
    tmp_owner(me);
    return xasprintf("%s/%s.%s", b->tmp, me, name);
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int blob_commit(const struct blob *b, const char *tmp_path, const char *name)
{
    char *dst = xasprintf("%s/%s", b->results, name);
    int ret = ERR_IO;
    if (fsync_path(tmp_path, O_RDONLY) < 0) {
        log_error("fsync failed", "path=%s error=\"%s\"", tmp_path,
                  strerror(errno));
        goto out;
    }
    /* An engine's program may have made it with any mode: a result is
     * served through signed links only, never read by other users. */
    if (chmod(tmp_path, 0600) < 0) {
        log_error("chmod failed", "path=%s error=\"%s\"", tmp_path,
                  strerror(errno));
        goto out;
    }
    if (rename(tmp_path, dst) < 0) {
        log_error("rename failed", "from=%s to=%s error=\"%s\"", tmp_path, dst,
                  strerror(errno));
        goto out;
    }
    if (fsync_path(b->results, O_RDONLY | O_DIRECTORY) < 0) {
        log_error("fsync failed", "path=%s error=\"%s\"", b->results,
                  strerror(errno));
        goto out;
    }
    ret = 0;
out:
    free(dst);
    return ret;
}

int blob_remove(const struct blob *b, const char *name)
{
    if (!blob_name_valid(name))
        return ERR_INVALID_PARAMETER;
    char *path = xasprintf("%s/%s", b->results, name);
    int ret = 0;
    if (unlink(path) < 0 && errno != ENOENT)
        ret = ERR_IO;
    free(path);
    return ret;
}

/* hex HMAC over "/files/<name>\n<expires>" (and "\nrate=<rate>" for a
 * paced link) into out[65]. */
static void signature(const struct blob *b, const char *name,
                      const char *expires, const char *rate,
                      char out[2 * SIGN_HASH_LEN + 1])
{
    char msg[BLOB_NAME_MAX + 96];
    unsigned char mac[SIGN_HASH_LEN];
    size_t n =
        (size_t)snprintf(msg, sizeof(msg), "/files/%s\n%s%s%s", name, expires,
                         rate ? "\nrate=" : "", rate ? rate : "");
    sign_hmac_keyed(b->key, msg, n < sizeof(msg) ? n : sizeof(msg) - 1, mac);
    id_hex(mac, sizeof(mac), out);
}

int blob_sweep(const struct blob *b, int64_t min_age_ms,
               bool (*keep)(void *arg, const char *name), void *arg,
               int *removed)
{
    *removed = 0;
    DIR *d = opendir(b->results);
    if (!d)
        return ERR_IO;
    int64_t now = clock_now_ms();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!blob_name_valid(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        int64_t mtime_ms =
            (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        if (now - mtime_ms < min_age_ms || keep(arg, e->d_name))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            (*removed)++;
    }
    closedir(d);
    return 0;
}

void blob_url_paced(const struct blob *b, struct buf *out, const char *base,
                    const char *name, int64_t expires_ms, int64_t rate)
{
    char expires[24], pace[24], sig[2 * SIGN_HASH_LEN + 1];
    /* Rounded up: the link never dies before the task it belongs to. */
    snprintf(expires, sizeof(expires), "%lld",
             (long long)((expires_ms + 999) / 1000));
    snprintf(pace, sizeof(pace), "%lld", (long long)rate);
    signature(b, name, expires, rate > 0 ? pace : NULL, sig);
    buf_puts(out, base); /* on every query: appends, no format parsing */
    buf_puts(out, "/files/");
    buf_puts(out, name);
    buf_puts(out, "?expires=");
    buf_puts(out, expires);
    if (rate > 0) {
        buf_puts(out, "&rate=");
        buf_puts(out, pace);
    }
    buf_puts(out, "&signature=");
    buf_puts(out, sig);
}

void blob_url(const struct blob *b, struct buf *out, const char *base,
              const char *name, int64_t expires_ms)
{
    blob_url_paced(b, out, base, name, expires_ms, 0);
}

int blob_verify(const struct blob *b, const char *name, const char *expires,
                const char *sig, int64_t now_ms)
{
    int64_t rate;
    return blob_verify_paced(b, name, expires, NULL, sig, now_ms, &rate);
}

int blob_verify_paced(const struct blob *b, const char *name,
                      const char *expires, const char *rate, const char *sig,
                      int64_t now_ms, int64_t *rate_out)
{
    int64_t exp_s, bps = 0;
    char want[2 * SIGN_HASH_LEN + 1];
    *rate_out = 0;
    if (!expires || !sig || !blob_name_valid(name) ||
        strlen(sig) != 2 * SIGN_HASH_LEN ||
        parse_i64(expires, 0, INT64_MAX / 1000, &exp_s) < 0 ||
        (rate && parse_i64(rate, 1, INT32_MAX, &bps) < 0))
        return ERR_BAD_SIGNATURE;
    signature(b, name, expires, rate, want);
    if (!sign_equal(want, sig, sizeof(want) - 1))
        return ERR_BAD_SIGNATURE;
    if (exp_s * 1000 <= now_ms)
        return ERR_BAD_SIGNATURE;
    *rate_out = bps;
    return 0;
}

int blob_open_file(const struct blob *b, const char *name, int *fd,
                   uint64_t *size)
{
    if (!blob_name_valid(name))
        return ERR_NOT_FOUND;
    char *path = xasprintf("%s/%s", b->results, name);
    int ret = ERR_NOT_FOUND;
    struct stat st;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        goto out;
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(f);
        goto out;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    ret = 0;
out:
    free(path);
    return ret;
}

/* ------------------------------------------------------------ uploads */

/* Upload file copies go through a buffer this big. */
#define UPLOAD_COPY_CHUNK (256 << 10)
/* A rename into a key directory the sweep removed meanwhile is tried
 * again this many times (the sweep only removes empty directories). */
#define UPLOAD_RENAME_TRIES 3

static int64_t mtime_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* A key id as a directory name: what auth/ makes, nothing that walks. */
static bool key_dir_valid(const char *key_id)
{
    size_t n = strnlen(key_id, BLOB_KEY_MAX + 1);
    return n > 0 && n <= BLOB_KEY_MAX &&
           strspn(key_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789_-") == n;
}

#define OSS_PREFIX "oss-"

/* "oss-" and 64 lower-case hex digits: what blob_oss_name makes. */
static bool is_oss_name(const char *name)
{
    size_t k = sizeof(OSS_PREFIX) - 1;
    if (strncmp(name, OSS_PREFIX, k) != 0 ||
        strlen(name) != k + 2 * SIGN_HASH_LEN)
        return false;
    return strspn(name + k, "0123456789abcdef") == 2 * SIGN_HASH_LEN;
}

bool blob_upload_names_valid(const char *key_id, const char *upload_id)
{
    return key_dir_valid(key_id) &&
           (id_is_uuid_lower(upload_id) || is_oss_name(upload_id));
}

void blob_oss_name(const char *object_key, char out[BLOB_UPLOAD_NAME_MAX])
{
    unsigned char h[SIGN_HASH_LEN];
    sign_sha256(object_key, strlen(object_key), NULL, 0, h);
    memcpy(out, OSS_PREFIX, sizeof(OSS_PREFIX) - 1);
    id_hex(h, sizeof(h), out + sizeof(OSS_PREFIX) - 1);
}

/* The MAC of a policy issued to key_id; the key id is inside the message,
 * so a policy of one key never passes as another's. */
static void oss_mac(const struct blob *b, const char *key_id,
                    const char *policy, unsigned char mac[SIGN_HASH_LEN])
{
    struct buf msg = BUF_INIT;
    buf_puts(&msg, "paddock-oss-policy\n");
    buf_puts(&msg, key_id);
    buf_putc(&msg, '\n');
    buf_puts(&msg, policy);
    sign_hmac_keyed(b->key, msg.data, msg.len, mac);
    buf_fini(&msg);
}

void blob_oss_sign(const struct blob *b, const char *key_id, const char *policy,
                   struct buf *out)
{
    unsigned char mac[SIGN_HASH_LEN];
    oss_mac(b, key_id, policy, mac);
    base64_encode(out, mac, sizeof(mac));
}

int blob_oss_verify(const struct blob *b, const char *key_id,
                    const char *policy, const char *signature)
{
    struct buf want = BUF_INIT;
    blob_oss_sign(b, key_id, policy, &want);
    bool ok = signature && strlen(signature) == want.len &&
              sign_equal(want.data, signature, want.len);
    buf_fini(&want);
    return ok ? 0 : ERR_BAD_SIGNATURE;
}

struct blob_upload {
    const struct blob *b;
    char *tmp, *dir, *dst;
    int fd;
    int64_t size;
    bool committed;
};

int blob_upload_begin(const struct blob *b, const char *key_id,
                      const char *upload_id, struct blob_upload **out)
{
    char name[BLOB_UPLOAD_NAME_MAX + 40];
    *out = NULL;
    if (!blob_upload_names_valid(key_id, upload_id))
        return ERR_INVALID_PARAMETER;
    struct blob_upload *u = xcalloc(1, sizeof(*u));
    u->b = b;
    /* Two writers of one name (a retry racing, or the previous attempt's
     * handle not yet freed) must not meet in the temporary directory. */
    static _Atomic unsigned long seq;
    snprintf(name, sizeof(name), "upload-%lu-%s", ++seq, upload_id);
    u->tmp = blob_tmp_path(b, name);
    u->dir = xasprintf("%s/%s", b->uploads, key_id);
    u->dst = xasprintf("%s/%s", u->dir, upload_id);
    u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (u->fd < 0) {
        log_error("cannot create upload", "path=%s error=\"%s\"", u->tmp,
                  strerror(errno));
        blob_upload_free(u);
        return ERR_IO;
    }
    *out = u;
    return 0;
}

int blob_upload_write(struct blob_upload *u, const void *data, size_t len)
{
    int werr = u->fd >= 0 ? write_full(u->fd, data, len) : EBADF;
    if (werr) {
        log_error("cannot write upload", "path=%s error=\"%s\"", u->tmp,
                  strerror(werr));
        return ERR_IO;
    }
    u->size += (int64_t)len;
    return 0;
}

int64_t blob_upload_size(const struct blob_upload *u)
{
    return u->size;
}

/* Into place: rename, or with `fresh` a link that never replaces a file
 * (then the temporary name goes). */
static int upload_commit(struct blob_upload *u, bool fresh, int64_t *mtime_ms)
{
    struct stat st;
    if (u->fd < 0 || fsync(u->fd) < 0 || fstat(u->fd, &st) < 0) {
        log_error("cannot write upload", "path=%s error=\"%s\"", u->tmp,
                  strerror(errno));
        return ERR_IO;
    }
    close(u->fd);
    u->fd = -1;
    for (int i = 0;; i++) {
        if (mkdir(u->dir, 0700) < 0 && errno != EEXIST) {
            log_error("cannot create directory", "path=%s error=\"%s\"", u->dir,
                      strerror(errno));
            return ERR_IO;
        }
        if ((fresh ? link(u->tmp, u->dst) : rename(u->tmp, u->dst)) == 0)
            break;
        if (fresh && errno == EEXIST)
            return ERR_CONFLICT;
        /* ENOENT: the sweep removed the empty directory in between. */
        if (errno != ENOENT || i + 1 == UPLOAD_RENAME_TRIES) {
            log_error("rename failed", "from=%s to=%s error=\"%s\"", u->tmp,
                      u->dst, strerror(errno));
            return ERR_IO;
        }
    }
    /* The file's entry, then the key directory's (it may be new). */
    if (fsync_path(u->dir, O_RDONLY | O_DIRECTORY) < 0 ||
        fsync_path(u->b->uploads, O_RDONLY | O_DIRECTORY) < 0) {
        log_error("fsync failed", "path=%s error=\"%s\"", u->dir,
                  strerror(errno));
        unlink(u->dst);
        return ERR_IO;
    }
    if (fresh)
        unlink(u->tmp);
    *mtime_ms = mtime_of(&st); /* the rename keeps it */
    u->committed = true;
    return 0;
}

int blob_upload_commit(struct blob_upload *u, int64_t *mtime_ms)
{
    return upload_commit(u, false, mtime_ms);
}

int blob_upload_commit_new(struct blob_upload *u, int64_t *mtime_ms)
{
    return upload_commit(u, true, mtime_ms);
}

void blob_upload_free(struct blob_upload *u)
{
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (!u->committed)
        unlink(u->tmp);
    free(u->tmp);
    free(u->dir);
    free(u->dst);
    free(u);
}

int blob_upload_put(const struct blob *b, const char *key_id,
                    const char *upload_id, const void *data, size_t len,
                    int64_t *mtime_ms)
{
    struct blob_upload *u = NULL;
    int ret = blob_upload_begin(b, key_id, upload_id, &u);
    if (ret == 0)
        ret = blob_upload_write(u, data, len);
    if (ret == 0)
        ret = blob_upload_commit(u, mtime_ms);
    blob_upload_free(u);
    return ret;
}

int blob_upload_stat(const struct blob *b, const char *key_id,
                     const char *upload_id, int64_t *size, int64_t *mtime_ms)
{
    if (!blob_upload_names_valid(key_id, upload_id))
        return ERR_NOT_FOUND;
    char *path = xasprintf("%s/%s/%s", b->uploads, key_id, upload_id);
    struct stat st;
    int ret = ERR_NOT_FOUND;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        *size = (int64_t)st.st_size;
        *mtime_ms = mtime_of(&st);
        ret = 0;
    }
    free(path);
    return ret;
}

int blob_upload_usage(const struct blob *b, const char *key_id,
                      int64_t since_ms, int64_t oss_since_ms, int *count,
                      int64_t *bytes, int64_t *oldest_ms)
{
    *count = 0;
    *bytes = 0;
    *oldest_ms = 0;
    if (!key_dir_valid(key_id))
        return ERR_INVALID_PARAMETER;
    char *dir = xasprintf("%s/%s", b->uploads, key_id);
    DIR *d = opendir(dir);
    int ret = 0;
    if (!d) {
        if (errno != ENOENT) {
            log_error("cannot read directory", "path=%s error=\"%s\"", dir,
                      strerror(errno));
            ret = ERR_IO;
        }
        goto out;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode) ||
            mtime_of(&st) <= (is_oss_name(e->d_name) ? oss_since_ms : since_ms))
            continue;
        (*count)++;
        *bytes += (int64_t)st.st_size;
        if (!*oldest_ms || mtime_of(&st) < *oldest_ms)
            *oldest_ms = mtime_of(&st);
    }
    closedir(d);
out:
    free(dir);
    return ret;
}

int blob_upload_copy(const struct blob *b, const char *key_id,
                     const char *upload_id, const char *dst, int64_t max_bytes,
                     int64_t *size, struct errmsg *err)
{
    char *src = NULL, *chunk = NULL;
    int in = -1, out = -1, ret = ERR_IO;
    struct stat st;

    *size = 0;
    if (!blob_upload_names_valid(key_id, upload_id))
        return errmsg_set(err, ERR_NOT_FOUND, "no such upload");
    src = xasprintf("%s/%s/%s", b->uploads, key_id, upload_id);
    in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0 && errno == ENOENT) {
        ret = errmsg_set(err, ERR_NOT_FOUND, "no such upload");
        goto out;
    }
    if (in < 0 || fstat(in, &st) < 0) {
        log_error("cannot open upload", "path=%s error=\"%s\"", src,
                  strerror(errno));
        ret = errmsg_set(err, ERR_IO, "the upload could not be read");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = errmsg_set(err, ERR_NOT_FOUND, "no such upload");
        goto out;
    }
    if (st.st_size > max_bytes) {
        ret = errmsg_set(err, ERR_TOO_LARGE, "larger than %lld MB",
                         (long long)(max_bytes >> 20));
        goto out;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        log_error("cannot create input copy", "path=%s error=\"%s\"", dst,
                  strerror(errno));
        ret = errmsg_set(err, ERR_IO, "the input copy could not be made");
        goto out;
    }
    chunk = xmalloc(UPLOAD_COPY_CHUNK);
    /* The size was checked on this open file: the copy stops there even
     * if someone appends to it meanwhile. */
    while (*size < st.st_size) {
        size_t want = (size_t)(st.st_size - *size) < UPLOAD_COPY_CHUNK
                          ? (size_t)(st.st_size - *size)
                          : UPLOAD_COPY_CHUNK;
        ssize_t r = read(in, chunk, want);
        if (r < 0 && errno == EINTR)
            continue;
        int werr = r > 0 ? write_full(out, chunk, (size_t)r) : 0;
        if (r <= 0 || werr) {
            log_error("cannot copy upload", "from=%s to=%s error=\"%s\"", src,
                      dst,
                      r < 0  ? strerror(errno)
                      : werr ? strerror(werr)
                             : "file shrank");
            ret = errmsg_set(err, ERR_IO, "the input copy could not be made");
            goto out;
        }
        *size += r;
    }
    ret = 0;
out:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) < 0 && ret == 0) {
        log_error("cannot write input copy", "path=%s error=\"%s\"", dst,
                  strerror(errno));
        ret = errmsg_set(err, ERR_IO, "the input copy could not be made");
    }
    if (ret < 0 && out >= 0)
        unlink(dst);
    free(chunk);
    free(src);
    return ret;
}

/* One key's directory: expired files out, the directory too when empty. */
static int sweep_key_dir(int parent, const char *key_dir, int64_t cutoff_ms,
                         int64_t oss_cutoff_ms)
{
    int fd = openat(parent, key_dir,
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    int removed = 0, left = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int64_t cut = is_oss_name(e->d_name) ? oss_cutoff_ms : cutoff_ms;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            mtime_of(&st) <= cut && !S_ISDIR(st.st_mode) &&
            unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
        else
            left++;
    }
    closedir(d);
    /* Fails harmlessly when an upload arrived meanwhile (blob_upload_put
     * makes the directory again when its rename finds it gone). */
    if (!left)
        unlinkat(parent, key_dir, AT_REMOVEDIR);
    return removed;
}

int blob_upload_sweep(const struct blob *b, int64_t cutoff_ms,
                      int64_t oss_cutoff_ms, int *removed)
{
    *removed = 0;
    DIR *d = opendir(b->uploads);
    if (!d) {
        log_error("cannot read directory", "path=%s error=\"%s\"", b->uploads,
                  strerror(errno));
        return ERR_IO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            *removed +=
                sweep_key_dir(dirfd(d), e->d_name, cutoff_ms, oss_cutoff_ms);
    closedir(d);
    if (*removed)
        log_info("expired uploads deleted", "count=%d", *removed);
    return 0;
}
