/*
 * Private to src/net (not part of the module's interface): the one
 * address guard the fetcher (fetch.c) and guarded net_http requests
 * (http_client.c) hand to libcurl as CURLOPT_OPENSOCKETFUNCTION.
 */
#ifndef PADDOCK_NET_INT_H
#define PADDOCK_NET_INT_H

#include "net.h"

#include <arpa/inet.h>
#include <curl/curl.h>

/* The first address a transfer's guard refused, and why. */
struct net_refusal {
    const char *why; /* NULL while nothing was refused */
    char addr[INET6_ADDRSTRLEN];
};

/*
 * Every connection libcurl opens, the first or after a redirect, with its
 * resolved address, before any socket exists: a close-on-exec socket
 * (engines run child processes, which must not inherit a connection) when
 * the address is public or `allow` admits it; CURL_SOCKET_BAD otherwise,
 * the first refusal kept in *r.
 */
curl_socket_t net__open_guarded(const struct net_allow *allow,
                                curlsocktype purpose, struct curl_sockaddr *a,
                                struct net_refusal *r);

#endif
