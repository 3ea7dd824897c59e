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
 *
 * Threads: net_global_init/fini once per process, from main, while no other
 * thread runs. Everything else is reentrant: each net_fetch owns its own
 * curl handle, and a struct net_allow is read-only after net_allow_new, so
 * one may serve every worker thread at once.
 * Ownership: net_allow_new makes the list, net_allow_free releases it. The
 * file net_fetch writes is the caller's on success; on failure net_fetch
 * has removed it.
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

/* Once per process before threads start (curl_global_init); 0 or
 * ERR_INTERNAL. */
int net_global_init(struct errmsg *err);
/* Its counterpart, after every fetching thread has ended. */
void net_global_fini(void);

#endif
