/*
 * auth: which tenant a presented API key belongs to.
 *
 * Two kinds of key. Minted keys ("pdk_<id>_<secret>", made by
 * auth_key_mint) live in the store as a salted SHA-256 only; the id inside
 * the token finds the record. Plain keys come from the config file or
 * PADDOCK_API_KEY and are any string; they are kept in memory as a hash and
 * their tenant id is derived from that hash, so it is the same across
 * restarts and nodes.
 *
 * Keys that passed are remembered (a table of the keys as presented, a
 * probe and a constant-time compare instead of a SHA-256 per request); a
 * minted one is forgotten as soon as auth_reload sees the minted keys
 * change, so revoking a key takes effect at the next reload, as before
 * (`paddock serve` reloads every second; the keys API reloads at once on
 * the node that changed a key).
 *
 * Threads: auth_check may run on every HTTP thread at once; auth_reload
 * swaps the stored keys under a write lock.
 */
#ifndef PADDOCK_AUTH_H
#define PADDOCK_AUTH_H

#include "../core/core.h"
#include "../store/store.h"

struct auth;

/* A minted secret: "pdk_" + 12 hex id + "_" + 48 hex. */
#define AUTH_SECRET_MAX 80

struct auth *auth_new(void);
void auth_free(struct auth *a);

/* Accept a plain key (config or environment); ERR_INVALID_PARAMETER when
 * empty, too long or when LIMIT_KEYS keys are already held. */
int auth_add_plain(struct auth *a, const char *secret);
/* Replace the minted keys with the store's records (revoked ones drop). */
int auth_reload(struct auth *a, struct store *s);
/* How many keys (plain + minted, not revoked) are usable. */
size_t auth_count(struct auth *a);

/*
 * Resolve a presented key to its tenant id (key_id, TASK_KEY_ID_MAX + 1
 * bytes). 0, ERR_NO_API_KEY (NULL or empty) or ERR_INVALID_API_KEY.
 */
int auth_check(struct auth *a, const char *presented,
               char key_id[TASK_KEY_ID_MAX + 1]);

/* The default sandbox scenario of the minted key `key_id` (what
 * `paddock keys create --scenario` stored) into out: true when it has
 * one. Plain keys have none. */
bool auth_key_scenario(struct auth *a, const char *key_id,
                       char out[LIMIT_SCENARIO_BYTES + 1]);

/* Whether key_id is a minted key made admin (`paddock keys create
 * --admin`, the keys API): it may use the keys API and read every key's
 * usage. Plain keys never are (docs/extensions.md, "Usage"). */
bool auth_key_admin(struct auth *a, const char *key_id);

/* Make a new key: the record to store (hash only) and the secret to show
 * once (out_secret, AUTH_SECRET_MAX bytes). */
int auth_key_mint(const char *name, struct store_key *rec,
                  char out_secret[AUTH_SECRET_MAX]);

#endif
