/*
 * net: outbound fetch of input media, with a server-side-request-forgery
 * guard; the only module that includes libcurl.
 *
 * - net_fetch: one http(s) URL (or an inline data:image URI) into a file,
 *   capped in bytes, in total time and in redirects, written as it arrives.
 * - the guard: every address libcurl is about to connect to, the first one
 *   and the one after each redirect, is classified before a socket exists.
 *   Loopback, private, link-local, multicast, unspecified, CGNAT, reserved
 *   and broadcast addresses (and their IPv4-mapped, NAT64 and 6to4 IPv6
 *   forms) are refused unless the allow-list (--fetch-allow) admits them.
 *   Checking the connected address, not the host name, also defeats DNS
 *   rebinding; proxies are never used, since through a proxy the only
 *   address we would see is the proxy's.
 * - messages never carry a URL's user info, query or fragment (they can hold
 *   a signature or a password): only scheme://host/path, cut short.
 * - net_http: plain HTTP requests for the CLI, which talks to any endpoint
 *   its user names (loopback included), so without the guard unless the
 *   request asks for it (net_http_req.guarded: webhook deliveries, whose
 *   URL an API client supplied).
 *
 * Threads: net_global_init/fini once per process, from main, while no other
 * thread runs. Everything else is reentrant: each net_fetch owns its own
 * curl handle, and a struct net_allow is read-only after net_allow_new, so
 * one may serve every worker thread at once.
 * Ownership: net_allow_new makes the list, net_allow_free releases it. The
 * file net_fetch writes is the caller's on success; on failure net_fetch
 * has removed it. A struct net_http is used by one thread at a time;
 * net_http_new makes it, net_http_free releases it; a response's body is
 * the caller's until net_http_resp_fini.
 */
#ifndef PADDOCK_NET_H
#define PADDOCK_NET_H

#include "../core/core.h"

#include <stdatomic.h>
#include <sys/socket.h>

/* Entries one allow-list may hold (a configuration lists a handful). */
#define NET_ALLOW_MAX 1024
/* Longest allow-list entry: a full IPv6 address with an IPv4 tail and
 * "/128" fits with room to spare; anything longer is not a CIDR. */
#define NET_CIDR_MAX 64
/* Time to open a TCP connection and finish TLS, within the total limit. */
#define NET_CONNECT_TIMEOUT_MS 10000
/* Bytes of scheme://host/path a message shows of a URL. */
#define NET_URL_SHOW 160

/* A parsed allow-list of CIDR ranges (v4 and v6). */
struct net_allow;

/*
 * Parse each "CIDR" (e.g. "127.0.0.1/32", "10.0.0.0/8", "::1/128"; a bare
 * address is /32 or /128; host bits past the prefix are ignored) into a new
 * allow-list. ERR_INVALID_PARAMETER with a message naming the bad entry.
 * n == 0 makes an empty list that admits nothing.
 */
int net_allow_new(const char *const *cidrs, size_t n, struct net_allow **out,
                  struct errmsg *err);
/* NULL is fine. */
void net_allow_free(struct net_allow *a);
/* True when `a` (NULL: an empty list) holds a range containing sa, an
 * AF_INET or AF_INET6 address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * is matched as the IPv4 address it maps. */
bool net_allow_admits(const struct net_allow *a, const struct sockaddr *sa);

/*
 * Why sa must not be fetched from without an allow-list entry: a static
 * word ("loopback", "private", "link-local", "multicast", "unspecified",
 * "CGNAT", "reserved", "broadcast", "site-local"), or NULL for a public
 * address. An address of any family other than AF_INET and AF_INET6 is
 * "not IP". IPv6 forms that embed an IPv4 address (::ffff:0:0/96,
 * 64:ff9b::/96, 2002::/16) are classified by that IPv4 address.
 */
const char *net_addr_blocked(const struct sockaddr *sa);

struct net_fetch_opts {
    const struct net_allow *allow; /* NULL: nothing private is allowed */
    int64_t max_bytes;       /* LIMIT_IMAGE_BYTES or LIMIT_VIDEO_BYTES; > 0 */
    int64_t timeout_ms;      /* total time limit of the whole fetch; > 0 */
    int max_redirects;       /* 3; 0 refuses every redirect */
    const atomic_bool *stop; /* may be NULL; when set, abort soon (within
                                about a second) with ERR_STOPPED */
    bool http_only; /* refuse data: URIs (a video input may not be one) */
};

/*
 * Fetch `url` into a new file at `path` (created 0600, truncated; removed
 * again on failure; a URL refused before the transfer starts leaves `path`
 * untouched). `url` is http://, https:// or, unless o->http_only, a
 * data:image/{jpeg,png,webp};base64,... URI, whose payload is decoded into
 * the file. Returns 0 and *size (bytes written), or a negative code with a
 * message in *err:
 *   ERR_INVALID_URL            bad scheme, unparsable URL, a data: URI of
 *                              another media type, or an address refused by
 *                              the guard ("http://x/y.png: address 10.1.2.3
 *                              is private and not in --fetch-allow")
 *   ERR_INPUT_DOWNLOAD_FAILED  HTTP status outside 2xx ("HTTP 404"), too
 *                              large ("larger than 20 MB"), timeout ("no
 *                              complete answer within 30 s"), connection
 *                              refused, DNS failure, TLS failure, too many
 *                              redirects, bad base64; the message says which
 *   ERR_STOPPED                the stop flag was set
 *   ERR_IO                     the file could not be created or written
 *   ERR_INVALID_PARAMETER      bad options (a caller's bug)
 *   ERR_INTERNAL               libcurl refused a setting the guard needs
 */
int net_fetch(const char *url, const char *path, const struct net_fetch_opts *o,
              int64_t *size, struct errmsg *err);

/* ------------------------------------------------- plain HTTP client */

/*
 * net_http: plain HTTP(S) requests for the CLI (src/cli), which talks to
 * whatever endpoint its user names, 127.0.0.1 included. There is NO address
 * guard here: never pass it a URL that came from an API client; the server
 * fetches those with net_fetch only.
 *
 * A struct net_http is one libcurl handle whose connections are reused from
 * one request to the next (one thread at a time). Proxies follow libcurl's
 * usual variables (http_proxy, https_proxy, no_proxy), as curl(1) does.
 */

/* Bytes of a non-2xx answer kept while the body goes to a file. */
#define NET_HTTP_ERROR_BYTES (64 << 10)
/* Headers one request may carry (the CLI sends three at most). */
#define NET_HTTP_HEADERS_MAX 16

struct net_http;

struct net_http_req {
    const char *method;         /* "GET", "POST" or "DELETE" */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* n_headers "Name: value" lines, no CR/LF */
    size_t n_headers;
    const char *body; /* POST body (NULL: empty), body_len bytes */
    size_t body_len;
    int64_t max_bytes;  /* response body cap; > 0 */
    int64_t timeout_ms; /* the whole exchange; 0: no total limit */
    int64_t stall_ms;   /* give up when nothing arrives for this long; 0:
                           never (then set timeout_ms) */
    int max_redirects;  /* 0: a 3xx is the answer, not followed */
    bool to_fd;         /* a 2xx body goes to `fd` as it arrives; any other
                           status's body to resp->body (NET_HTTP_ERROR_BYTES) */
    int fd;
    /* May be NULL: a 2xx body goes to on_body as it arrives, in pieces,
     * instead of resp->body (max_bytes still caps it; other statuses'
     * bodies go to resp->body as usual); < 0 from it ends the request with
     * ERR_STOPPED. An event stream, read as it comes. */
    int (*on_body)(void *arg, const char *data, size_t n);
    void *on_body_arg;
    const atomic_bool *stop; /* may be NULL; when set, abort soon with
                                ERR_STOPPED */
    /* May be NULL; called about once a second and as bytes arrive, with the
     * body bytes so far and the announced total (0: unknown). */
    void (*progress)(void *arg, int64_t got, int64_t total);
    void *progress_arg;
    /* The private-address guard of net_fetch, for a URL an API client
     * gave (a webhook endpoint): every address connected to must be
     * public or admitted by `allow` (NULL: nothing private), no proxy.
     * A refused address fails with ERR_INVALID_URL ("address 10.1.2.3 is
     * private and not in --fetch-allow"). */
    bool guarded;
    const struct net_allow *allow;
};

struct net_http_resp {
    long status;       /* the final answer's HTTP status */
    struct buf body;   /* the body (when !to_fd or not 2xx); NUL-ended */
    int64_t bytes;     /* body bytes received (to fd or to body) */
    int retry_after_s; /* the final answer's Retry-After, in seconds (an
                          HTTP date is converted); -1 when absent */
};

/* A client; 0 or ERR_INTERNAL. net_global_init must have run. */
int net_http_new(struct net_http **out, struct errmsg *err);
/* NULL is fine. */
void net_http_free(struct net_http *h);

/*
 * One request. Returns 0 when a complete answer arrived, whatever its
 * status (resp->status tells), or a negative code with *err naming the
 * method and the URL (scheme://host/path only) and what went wrong:
 *   ERR_INVALID_URL        not http(s), or unparsable
 *   ERR_TOO_LARGE          the body went past max_bytes
 *   ERR_IO                 no answer: DNS, connect, TLS, timeout, stall,
 *                          a connection cut short; or `fd` not writable
 *   ERR_STOPPED            the stop flag was set
 *   ERR_INVALID_PARAMETER  a caller's bug (method, limits, header)
 *   ERR_INTERNAL           libcurl refused a setting
 * *resp is initialised by the call in every case; release it with
 * net_http_resp_fini. Bytes already written to `fd` stay there.
 */
int net_http_request(struct net_http *h, const struct net_http_req *req,
                     struct net_http_resp *resp, struct errmsg *err);
/* Release resp->body; NULL is fine. */
void net_http_resp_fini(struct net_http_resp *resp);

/* ------------------------------------------------- many at once */

/*
 * net_multi: many plain HTTP requests in flight at once, driven by one
 * thread (libcurl's multi interface): the upstream relay's poller keeps
 * thousands of provider tasks followed without a thread each. The same
 * rules as net_http (no address guard: the operator names the endpoint);
 * bodies go to memory only. One thread at a time uses a net_multi, but
 * net_multi_wakeup may come from any thread.
 */
/* Connections one net_multi opens to one host at most (requests beyond
 * wait for one of them, or are pipelined on HTTP/2). */
#define NET_MULTI_HOST_CONNECTIONS 16

struct net_multi;
/* The end of a request: rc and *err as net_http_request's, the answer in
 * *resp (freed after the call: copy what is kept). */
typedef void (*net_multi_done)(void *arg, int rc,
                               const struct net_http_resp *resp,
                               const struct errmsg *err);

int net_multi_new(struct net_multi **out, struct errmsg *err);
/* Ends what is still in flight (done with ERR_STOPPED), then frees. */
void net_multi_free(struct net_multi *m);
/* Start a request (its strings are copied); done follows from a later
 * net_multi_run. 0, or an error (done is never called). */
int net_multi_add(struct net_multi *m, const struct net_http_req *req,
                  net_multi_done done, void *arg, struct errmsg *err);
/* Move the transfers on: wait up to timeout_ms for activity (or a
 * wakeup), call done for each request that ended. Returns how many are
 * still in flight. */
int net_multi_run(struct net_multi *m, int timeout_ms);
size_t net_multi_count(const struct net_multi *m);
/* Make a net_multi_run waiting on another thread return at once. */
void net_multi_wakeup(struct net_multi *m);

/* Room for what net_url_show writes. */
#define NET_URL_SHOW_SIZE (NET_URL_SHOW + 3 + 3 + 1)
/* What a message may show of `url`: scheme://host[:port]/path, without
 * user info, query or fragment, cut at NET_URL_SHOW bytes with "..." (a
 * URL without "://" shows up to its first ";,?#"); bytes outside printable
 * ASCII as %XX. Used by net_fetch and net_http alike. */
void net_url_show(const char *url, char out[NET_URL_SHOW_SIZE]);

/* Once per process before threads start (curl_global_init); 0 or
 * ERR_INTERNAL. */
int net_global_init(struct errmsg *err);
/* Its counterpart, after every fetching thread has ended. */
void net_global_fini(void);

#endif
