/* store_rules.c - the ops of every backend (see store_rules.h).
 *
 * Each op checks what core/acl.c and core/invite.c decide against rows read in the backend's
 * transaction, and changes rows only through the backend's primitives. On PostgreSQL the
 * primitives that find a chat or an invitation lock the chat's row first (store_chat_find with
 * lock, p->invite_load), so what is read next is what the last committer left, as store_pg.c's
 * header explains; SQLite has a single writer and ignores the flag.
 */
#include "store/store_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/error.h"
#include "store/store_sql.h"

#define RULES_SLUG_NUMBERED_TRIES 50 /* "-2" ... "-51", then random suffixes */
#define RULES_SLUG_RANDOM_TRIES 8
#define RULES_TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))



int store_chat_at_cap(const struct store_chat *c) {
  int cap = c->max_participants > 0 && c->max_participants < CHAT_PARTICIPANTS_CEILING
                ? c->max_participants
                : CHAT_PARTICIPANTS_CEILING;
  return c->participant_count >= cap;
}

int store_chat_full(struct store_req *req, const struct store_chat *c) {
  if (c->max_participants > 0 && c->max_participants < CHAT_PARTICIPANTS_CEILING)
    return store_fail(req, PARLEY_ECHAT_FULL, "the chat is full: maxParticipants is %d",
                      c->max_participants);
  return store_fail(req, PARLEY_ECHAT_FULL, "the chat is full: a chat holds at most %d people",
                    CHAT_PARTICIPANTS_CEILING);
}





int store_settle_invite(const struct store_prims *p, void *be, struct store_req *req,
                        int64_t chat_id, int64_t to_id, enum invite_action action) {
  struct store_invite inv = {0};
  struct store_invite *grown;
  enum invite_status next;
  int found = 0;
  int err = p->invite_pending_for(be, chat_id, to_id, &inv, &found);
  if (err || !found)
    goto cleanup;
  /* One whose time is up is settled as what it is, expired, as the sweep would. */
  err = invite_transition(INVITE_PENDING, action, req->in.now, inv.expires_at, &next);
  if (err == PARLEY_EEXPIRED)
    err = 0;
  if (err == 0)
    err = p->invite_set_status(be, inv.id, next, req->in.now);
  if (err)
    goto cleanup;
  inv.status = next;
  grown = realloc(req->out.invites, (req->out.n_invites + 1) * sizeof *grown);
  if (grown == NULL) {
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  req->out.invites = grown;
  grown[req->out.n_invites++] = inv; /* the request owns its title now */
  return 0;
cleanup:
  free(inv.chat_title);
  return err;
}

/* The user called `username` into *u, or PARLEY_ENOT_FOUND with the sentence that says so. */
static int user_named(const struct store_prims *p, void *be, struct store_req *req,
                      const char *username, struct store_user *u) {
  int err = p->user_by_username(be, req, username, u);
  if (err == 0 && u->bot)
    err = store_rules_bot_deleted(p, be, u->id); /* a deleted bot is nobody (issue 19) */
  if (err == PARLEY_ENOT_FOUND)
    return store_fail(req, err, "there is no user named %s", username);
  return err;
}

/* The common start of chat.remove and chat.setRole: the chat (the caller must be in it), the
 * target user (who must exist and not be the caller) and the target's role. */
static int chat_target(const struct store_prims *p, void *be, struct store_req *req,
                       struct store_user *target, enum chat_role *target_role) {
  int err;
  if (strnlen(req->in.target, sizeof req->in.target) == sizeof req->in.target ||
      req->in.target[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  err = store_chat_find(p, be, req, 1);
  if (err)
    return err;
  if (req->out.chat.my_role == CHAT_ROLE_NONE)
    return acl_refusal(CHAT_ROLE_NONE, req->out.chat.is_public);
  err = store_rules_not_dm(p, be, req, req->out.chat.id, "it has no roles and nobody is removed");
  if (err)
    return err;
  err = user_named(p, be, req, req->in.target, target);
  if (err)
    return err;
  return p->role_of(be, req->out.chat.id, target->id, target_role);
}

int store_rules_chat_leave(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_chat *c = &req->out.chat;
  struct acl_member *rest = NULL;
  size_t n = 0;
  int was_owner;
  int err = store_chat_find(p, be, req, 1);
  if (err == 0)
    err = acl_check(ACL_CHAT_LEAVE, c->my_role, c->is_public);
  if (err == 0)
    err = store_rules_not_dm(p, be, req, c->id, "nobody leaves it");
  if (err)
    return err;
  was_owner = c->my_role == CHAT_ROLE_OWNER;

  err = p->participant_delete(be, c->id, req->in.user_id);
  if (err)
    goto cleanup;
  err = p->participants(be, c->id, &rest, &n);
  if (err)
    goto cleanup;
  if (n == 0) {
    /* Kept, not deleted: the messages stay for the record and the slug stays taken. */
    err = p->chat_archive(be, req, c->id);
    /* Nobody is left to accept them: its pending invitations are revoked, to be announced. */
    for (size_t i = 0; err == 0 && i < req->out.n_invites; i++) {
      err = p->invite_set_status(be, req->out.invites[i].id, INVITE_REVOKED, req->in.now);
      req->out.invites[i].status = INVITE_REVOKED;
    }
    if (err)
      goto cleanup;
    req->out.archived = 1;
  } else if (was_owner) {
    int next = acl_successor(rest, (int)n);
    if (next >= 0) {
      err = p->set_role(be, c->id, rest[next].user_id, CHAT_ROLE_OWNER);
      if (err == 0)
        err = p->set_owner(be, c->id, rest[next].user_id);
      if (err == 0)
        err = p->user_by_id(be, rest[next].user_id, &req->out.new_owner);
      if (err)
        goto cleanup;
      rest[next].role = CHAT_ROLE_OWNER;
    }
  }
  err = p->chat_touch(be, c->id, req->in.now);
  if (err == 0 && !req->out.archived) /* an archived chat has nobody left to tell */
    err = store_rules_notice(p, be, req, c->id, "left", req->in.user_id, NULL);
  if (err)
    goto cleanup;
  err = p->chat_load(be, req->in.slug, req->in.user_id, c);
  if (err)
    goto cleanup;
  err = store_set_member_ids(req, rest, n);
cleanup:
  free(rest);
  return err;
}

int store_rules_chat_remove(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_chat *c = &req->out.chat;
  struct store_user target = {0};
  enum chat_role target_role = CHAT_ROLE_NONE;
  int err = chat_target(p, be, req, &target, &target_role);
  if (err)
    return err;
  if (target.id == req->in.user_id)
    return store_fail(req, PARLEY_EBAD_REQUEST, "to leave a chat, use chat.leave");
  if (c->my_role < CHAT_ROLE_ADMIN)
    return store_fail(req, PARLEY_EFORBIDDEN, "only the owner and admins can remove participants");
  if (target_role == CHAT_ROLE_NONE)
    return store_fail(req, PARLEY_ENOT_FOUND, "%s is not a participant of this chat",
                      target.username);
  if (acl_can_remove(c->my_role, target_role) != 0)
    return store_fail(req, PARLEY_EFORBIDDEN, "%s",
                      target_role == CHAT_ROLE_OWNER ? "the owner cannot be removed"
                                                     : "admins can remove members only");

  err = p->participant_delete(be, c->id, target.id);
  if (err == 0) /* kept until an invitation is accepted: they cannot rejoin by themselves */
    err = p->removal_put(be, c->id, target.id, req->in.user_id, req->in.now);
  if (err == 0) /* only an invitation made after the removal lets them back in */
    err = store_settle_invite(p, be, req, c->id, target.id, INVITE_REVOKE);
  if (err)
    return err;
  err = p->chat_touch(be, c->id, req->in.now);
  if (err == 0)
    err = store_rules_notice(p, be, req, c->id, "removed", target.id, NULL);
  if (err)
    return err;
  err = p->chat_load(be, req->in.slug, req->in.user_id, c);
  if (err)
    return err;
  req->out.user = target;
  return store_member_ids(p, be, req, c->id);
}

int store_rules_chat_set_role(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_chat *c = &req->out.chat;
  struct store_user target = {0};
  enum chat_role target_role = CHAT_ROLE_NONE;
  enum chat_role role = req->in.role;
  int err;

  if (role != CHAT_ROLE_MEMBER && role != CHAT_ROLE_ADMIN && role != CHAT_ROLE_OWNER)
    return PARLEY_EBAD_REQUEST;
  err = chat_target(p, be, req, &target, &target_role);
  if (err)
    return err;
  if (c->my_role != CHAT_ROLE_OWNER)
    return store_fail(req, PARLEY_EFORBIDDEN, "only the owner can change roles");
  if (target.id == req->in.user_id)
    return store_fail(req, PARLEY_EFORBIDDEN,
                      "the owner's role changes only by making someone else the owner");
  if (target_role == CHAT_ROLE_NONE)
    return store_fail(req, PARLEY_ENOT_FOUND, "%s is not a participant of this chat",
                      target.username);
  err = acl_can_set_role(c->my_role, target_role, role);
  if (err)
    return err;

  err = p->set_role(be, c->id, target.id, role);
  if (err)
    return err;
  if (role == CHAT_ROLE_OWNER) {
    /* One owner at a time: the old one steps down to admin in the same transaction. */
    err = p->set_role(be, c->id, req->in.user_id, CHAT_ROLE_ADMIN);
    if (err == 0)
      err = p->set_owner(be, c->id, target.id);
    if (err)
      return err;
    req->out.new_owner = target;
  }
  err = store_rules_notice(p, be, req, c->id, "role", target.id, chat_role_name(role));
  if (err)
    return err;
  err = p->chat_load(be, req->in.slug, req->in.user_id, c);
  if (err)
    return err;
  req->out.user = target;
  req->out.role = role;
  return store_member_ids(p, be, req, c->id);
}

int store_rules_invite_create(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_chat *c = &req->out.chat;
  struct store_user target = {0};
  enum chat_role target_role = CHAT_ROLE_NONE;
  struct store_invite *inv = &req->out.invite;
  int found = 0;
  int err;

  if (strnlen(req->in.target, sizeof req->in.target) == sizeof req->in.target ||
      req->in.target[0] == '\0' || req->in.expires_at <= req->in.now)
    return PARLEY_EBAD_REQUEST;
  err = store_chat_find(p, be, req, 1);
  if (err)
    return err;
  if (c->my_role == CHAT_ROLE_NONE)
    return acl_refusal(CHAT_ROLE_NONE, c->is_public);
  err = store_rules_not_dm(p, be, req, c->id, "nobody is invited to it");
  if (err)
    return err;
  if (acl_can_invite(c->my_role, c->invite_policy) != 0)
    return store_fail(req, PARLEY_EFORBIDDEN, "%s",
                      c->invite_policy == INVITE_POLICY_OWNER
                          ? "only the owner can invite to this chat"
                          : "only the owner and admins can invite to this chat");
  err = user_named(p, be, req, req->in.target, &target);
  if (err)
    return err;
  err = p->role_of(be, c->id, target.id, &target_role);
  if (err)
    return err;
  if (target_role != CHAT_ROLE_NONE)
    return store_fail(req, PARLEY_ECONFLICT, "%s is already a participant of this chat",
                      target.username);

  /* At most one pending invitation per (chat, invitee); the partial UNIQUE index enforces it. */
  err = p->invite_pending_for(be, c->id, target.id, inv, &found);
  if (err)
    return err;
  if (found) {
    if (inv->expires_at > req->in.now) {
      req->out.created = 0; /* re-inviting returns the one that is still valid */
      return 0;
    }
    /* Past its time but not swept yet: settle it, then issue a fresh one. */
    err = p->invite_set_status(be, inv->id, INVITE_EXPIRED, req->in.now);
    if (err)
      return err;
  }
  err = p->invite_insert(be, req, c->id, target.id, inv);
  if (err)
    return err;
  req->out.created = 1;
  return 0;
}

/* Loads the invitation of in.invite_id for its invitee (the caller); anyone else is told it does
 * not exist, so invitation ids cannot be probed. Then applies `action` with invite_transition(). */
static int invite_for_invitee(const struct store_prims *p, void *be, struct store_req *req,
                              enum invite_action action, int64_t *chat_id,
                              enum invite_status *next) {
  struct store_invite *inv = &req->out.invite;
  int archived = 0;
  int err;

  if (req->in.invite_id <= 0)
    return PARLEY_ENOT_FOUND;
  err = p->invite_load(be, req->in.invite_id, inv, chat_id, &archived);
  if (err)
    return err;
  if (inv->to.id != req->in.user_id || archived)
    return PARLEY_ENOT_FOUND;
  err = invite_transition(inv->status, action, req->in.now, inv->expires_at, next);
  if (err == PARLEY_ECONFLICT)
    return store_fail(req, err, "the invitation is already %s", invite_status_name(inv->status));
  if (err == PARLEY_EEXPIRED)
    /* Not stored here: a failed request is rolled back. The sweep marks it and tells both. */
    return store_fail(req, err, "the invitation expired");
  return err;
}

int store_rules_invite_accept(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_invite *inv = &req->out.invite;
  struct store_chat *c = &req->out.chat;
  enum invite_status next;
  int64_t chat_id = 0;
  int err = invite_for_invitee(p, be, req, INVITE_ACCEPT, &chat_id, &next);
  if (err)
    return err;
  err = p->chat_load(be, inv->chat_slug, req->in.user_id, c);
  if (err)
    return err;
  if (c->my_role == CHAT_ROLE_NONE) {
    /* The cap is checked now, not when the invitation was made; a refusal leaves it pending
     * (this request is rolled back), to be accepted once a seat frees up. */
    if (store_chat_at_cap(c))
      return store_chat_full(req, c);
    err = p->participant_add(be, chat_id, req->in.user_id, CHAT_ROLE_MEMBER, req->in.now);
    if (err == 0) /* the managers invited them back: the removal is undone */
      err = p->removal_delete(be, chat_id, req->in.user_id);
    if (err == 0)
      err = p->chat_touch(be, chat_id, req->in.now);
    if (err == 0)
      err = store_rules_notice(p, be, req, chat_id, "joined", req->in.user_id, NULL);
    if (err == 0)
      err = p->chat_load(be, inv->chat_slug, req->in.user_id, c);
    if (err)
      return err;
    req->out.joined = 1;
  }
  err = p->invite_set_status(be, inv->id, next, req->in.now);
  if (err)
    return err;
  inv->status = next;
  return store_member_ids(p, be, req, chat_id);
}

int store_rules_invite_decline(const struct store_prims *p, void *be, struct store_req *req) {
  enum invite_status next;
  int err = invite_for_invitee(p, be, req, INVITE_DECLINE, NULL, &next);
  if (err)
    return err;
  err = p->invite_set_status(be, req->out.invite.id, next, req->in.now);
  if (err == 0)
    req->out.invite.status = next;
  return err;
}

int store_rules_invite_revoke(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_invite *inv = &req->out.invite;
  enum chat_role role = CHAT_ROLE_NONE;
  enum invite_status next;
  int64_t chat_id = 0;
  int archived = 0;
  int is_inviter;
  int err;

  if (req->in.invite_id <= 0)
    return PARLEY_ENOT_FOUND;
  err = p->invite_load(be, req->in.invite_id, inv, &chat_id, &archived);
  if (err)
    return err;
  if (archived)
    return PARLEY_ENOT_FOUND;
  err = p->role_of(be, chat_id, req->in.user_id, &role);
  if (err)
    return err;
  is_inviter = inv->from.id == req->in.user_id;
  if (inv->to.id == req->in.user_id)
    return store_fail(req, PARLEY_EFORBIDDEN, "an invitation to you is declined, not revoked");
  /* Someone with no tie to the chat or the invitation learns nothing about it. */
  if (role == CHAT_ROLE_NONE && !is_inviter)
    return PARLEY_ENOT_FOUND;
  if (acl_can_revoke(role, is_inviter) != 0)
    return store_fail(req, PARLEY_EFORBIDDEN, "%s",
                      is_inviter ? "you are no longer a participant of this chat"
                                 : "only its inviter, the owner and admins can revoke it");
  err = invite_transition(inv->status, INVITE_REVOKE, req->in.now, inv->expires_at, &next);
  if (err)
    return store_fail(req, err, "the invitation is already %s", invite_status_name(inv->status));
  err = p->invite_set_status(be, inv->id, next, req->in.now);
  if (err == 0)
    inv->status = next;
  return err;
}

/* ---- users, chats, messages ---- */

static int rules_user_create(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_user *u = &req->in.user;
  const char *display;
  size_t ulen;
  int64_t id = 0;
  int err;

  if (!RULES_TERMINATED(u->username) || !RULES_TERMINATED(u->display_name))
    return PARLEY_EBAD_REQUEST;
  ulen = strlen(u->username);
  if (ulen == 0 || ulen > STORE_USERNAME_MAX || req->in.pwhash == NULL || req->in.pwhash[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  display = u->display_name[0] ? u->display_name : u->username;
  err = p->user_insert(be, req, display, &id);
  if (err == 0)
    err = store_user_words(p, be, id, display);
  if (err)
    return err;
  req->out.user.id = id;
  snprintf(req->out.user.username, sizeof req->out.user.username, "%s", u->username);
  snprintf(req->out.user.display_name, sizeof req->out.user.display_name, "%s", display);
  req->out.user.created_at = req->in.now;
  return 0;
}

/* Inserts the chat of `req` under the explicit slug if free (a taken one is a conflict: the
 * caller asked for this name, it is not silently changed), else under the title's slug with the
 * first free "-N" suffix, then random ones (a popular title, "general", would otherwise cost one
 * lookup per earlier chat). A candidate taken between the lookup and the insert (another node)
 * is skipped like one taken before. */
static int rules_chat_insert(const struct store_prims *p, void *be, struct store_req *req,
                             char slug[STORE_SLUG_MAX + 1], int64_t *chat_id) {
  char base[STORE_SLUG_MAX + 1];
  int taken = 0;
  int err;

  *chat_id = 0;
  if (req->in.slug[0] != '\0') {
    if (!store_slug_valid(req->in.slug))
      return PARLEY_EBAD_REQUEST;
    memcpy(slug, req->in.slug, STORE_SLUG_MAX + 1);
    err = p->chat_insert(be, req, slug, chat_id);
    if (err)
      return err;
    return *chat_id ? 0 : PARLEY_ECONFLICT;
  }
  store_slug_derive(req->in.title, base);
  snprintf(slug, STORE_SLUG_MAX + 1, "%s", base);
  for (int i = 0; i < 1 + RULES_SLUG_NUMBERED_TRIES + RULES_SLUG_RANDOM_TRIES; i++) {
    if (i > 0 && i <= RULES_SLUG_NUMBERED_TRIES) {
      snprintf(slug, STORE_SLUG_MAX + 1, "%.*s-%d", STORE_SLUG_DERIVED_MAX, base, i + 1);
    } else if (i > RULES_SLUG_NUMBERED_TRIES) {
      static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
      unsigned char rnd[6] = {0};
      char suffix[sizeof rnd + 1];
      if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return PARLEY_EUNAVAILABLE;
      for (size_t k = 0; k < sizeof rnd; k++)
        suffix[k] = alphabet[rnd[k] % (sizeof alphabet - 1)];
      suffix[sizeof rnd] = '\0';
      snprintf(slug, STORE_SLUG_MAX + 1, "%.*s-%s", STORE_SLUG_DERIVED_MAX, base, suffix);
    }
    err = p->slug_taken(be, slug, &taken);
    if (err)
      return err;
    if (taken)
      continue;
    err = p->chat_insert(be, req, slug, chat_id);
    if (err || *chat_id)
      return err;
  }
  return PARLEY_ECONFLICT;
}

static int rules_chat_create(const struct store_prims *p, void *be, struct store_req *req) {
  char slug[STORE_SLUG_MAX + 1];
  int64_t chat_id = 0;
  int err;

  if (req->in.title == NULL || req->in.title[0] == '\0' || req->in.max_participants < 0 ||
      !RULES_TERMINATED(req->in.slug))
    return PARLEY_EBAD_REQUEST;
  err = rules_chat_insert(p, be, req, slug, &chat_id);
  if (err)
    return err;
  err = p->participant_add(be, chat_id, req->in.user_id, CHAT_ROLE_OWNER, req->in.now);
  if (err)
    return err;
  return p->chat_load(be, slug, req->in.user_id, &req->out.chat);
}

static int rules_chat_join(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_chat *c = &req->out.chat;
  int removed = 0;
  int err = store_chat_find(p, be, req, 1);
  /* Nobody joins a DM; to an outsider it does not exist (who talks to whom is private). */
  if (err == 0 && c->my_role == CHAT_ROLE_NONE &&
      store_rules_not_dm(p, be, req, c->id, "nobody joins it") != 0)
    return store_fail(req, PARLEY_ENOT_FOUND, "no such chat");
  if (err == 0)
    err = acl_check(ACL_CHAT_JOIN, c->my_role, c->is_public);
  if (err == PARLEY_EFORBIDDEN && req->out.errmsg[0])
    return err;
  if (err == PARLEY_EFORBIDDEN)
    return store_fail(req, err, "this chat is private: it is entered by invitation only");
  if (err)
    return err;
  if (c->my_role != CHAT_ROLE_NONE) {
    req->out.joined = 0;
    return store_member_ids(p, be, req, c->id);
  }
  /* Removal sticks: a removed user comes back only through an invitation. */
  err = p->removed(be, c->id, req->in.user_id, &removed);
  if (err)
    return err;
  if (removed)
    return store_fail(req, PARLEY_EFORBIDDEN,
                      "you were removed from this chat: only an invitation lets you back in");
  /* The cap counts the owner too, and is read in the transaction that adds the row (under the
   * chat's lock on PostgreSQL), so two joins racing for the last seat cannot both win. */
  if (store_chat_at_cap(c))
    return store_chat_full(req, c);
  err = p->participant_add(be, c->id, req->in.user_id, CHAT_ROLE_MEMBER, req->in.now);
  if (err == 0) /* an invitation still pending would otherwise outlive a later removal */
    err = store_settle_invite(p, be, req, c->id, req->in.user_id, INVITE_ACCEPT);
  if (err == 0)
    err = p->chat_touch(be, c->id, req->in.now);
  if (err == 0)
    err = store_rules_notice(p, be, req, c->id, "joined", req->in.user_id, NULL);
  if (err)
    return err;
  req->out.joined = 1;
  err = p->chat_load(be, req->in.slug, req->in.user_id, c);
  if (err)
    return err;
  return store_member_ids(p, be, req, c->id);
}

static int rules_chat_update(const struct store_prims *p, void *be, struct store_req *req) {
  const unsigned all = STORE_UPD_TITLE | STORE_UPD_PUBLIC | STORE_UPD_CAP | STORE_UPD_POLICY;
  const unsigned mask = req->in.update_mask;
  struct store_chat *c = &req->out.chat;
  int err;

  if (mask == 0 || (mask & ~all) != 0)
    return PARLEY_EBAD_REQUEST;
  if ((mask & STORE_UPD_TITLE) && (req->in.title == NULL || req->in.title[0] == '\0'))
    return store_fail(req, PARLEY_EBAD_REQUEST, "title: must not be empty");
  if ((mask & STORE_UPD_CAP) && req->in.max_participants < 0)
    return store_fail(req, PARLEY_EBAD_REQUEST, "maxParticipants: must not be negative");
  if ((mask & STORE_UPD_POLICY) && (req->in.invite_policy < INVITE_POLICY_OWNER ||
                                    req->in.invite_policy > INVITE_POLICY_MEMBERS))
    return PARLEY_EBAD_REQUEST;
  err = store_chat_access(p, be, req, ACL_CHAT_UPDATE, 1);
  if (err == 0)
    err = store_rules_not_dm(p, be, req, c->id, "it is titled by the other person");
  if (err)
    return err;
  /* Read in the transaction that writes the cap, so a join cannot slip in between. */
  if ((mask & STORE_UPD_CAP) && req->in.max_participants > 0 &&
      req->in.max_participants < c->participant_count)
    return store_fail(req, PARLEY_ECONFLICT,
                      "maxParticipants (%d) is below the current participant count (%d)",
                      req->in.max_participants, c->participant_count);
  err = p->chat_update(be, req, c->id);
  if (err == 0 && (mask & STORE_UPD_TITLE))
    err = store_rules_notice(p, be, req, c->id, "renamed", 0, req->in.title);
  if (err)
    return err;
  err = p->chat_load(be, req->in.slug, req->in.user_id, c);
  if (err)
    return err;
  return store_member_ids(p, be, req, c->id);
}

static int rules_limit_ok(int limit) {
  return limit >= 1 && limit <= STORE_LIMIT_MAX;
}

static int rules_msg_history(const struct store_prims *p, void *be, struct store_req *req) {
  int err;
  if (!rules_limit_ok(req->in.limit) || req->in.before < 0)
    return PARLEY_EBAD_REQUEST;
  err = p->msgs(be, req, 0, req->in.before > 0 ? req->in.before : INT64_MAX, req->in.limit,
                &req->out.has_more);
  if (err == 0)
    err = store_rules_msg_fold(p, be, req);
  return err ? err : store_rules_stream_reads(p, be, req);
}

static int rules_msg_since(const struct store_prims *p, void *be, struct store_req *req) {
  if (!rules_limit_ok(req->in.limit) || req->in.since < 0)
    return PARLEY_EBAD_REQUEST;
  /* A since beyond last_seq finds nothing and is no reset: app/ passes a huge since to mean
   * "from now on", and it can compare since with out.chat.last_seq itself. */
  int err = p->msgs(be, req, req->in.since, INT64_MAX, req->in.limit, &req->out.reset);
  if (err == 0)
    err = store_rules_msg_fold(p, be, req);
  /* The sub snapshot also has the caller's unread and mention counts, read with the replay: a
   * subscribed socket gets no chat.activity for new messages and counts on from these (issue 15). */
  if (err == 0 && req->in.with_streams && req->in.user_id != 0)
    err = p->chat_readers(be, req, req->out.chat.id, req->in.user_id, NULL,
                          req->out.chat.last_seq);
  return err ? err : store_rules_stream_reads(p, be, req);
}

static int rules_users_search(const struct store_prims *p, void *be, struct store_req *req) {
  char lo[STORE_DISPLAY_NAME_MAX + 1];
  int64_t mark_chat = 0; /* no chat has id 0: no marks */
  size_t len;
  int limit = req->in.limit;
  int err;

  if (req->in.query == NULL || !RULES_TERMINATED(req->in.slug) || limit < 0)
    return PARLEY_EBAD_REQUEST;
  len = strlen(req->in.query);
  if (len == 0 || len > STORE_DISPLAY_NAME_MAX)
    return PARLEY_EBAD_REQUEST;
  if (limit == 0 || limit > STORE_SEARCH_MAX)
    limit = STORE_SEARCH_MAX;
  /* Folded as SQLite's lower() folds (ASCII only), so both sides of the comparison agree. */
  if (memchr(req->in.query, 0xff, len) != NULL) /* never in UTF-8, and could not be incremented */
    return PARLEY_EBAD_REQUEST;
  store_fold_ascii(req->in.query, len, lo);
  if (req->in.slug[0] != '\0') {
    /* Marks only for a chat the caller is in: they would tell outsiders who is invited. */
    err = store_chat_find(p, be, req, 0);
    if (err == 0 && req->out.chat.my_role != CHAT_ROLE_NONE)
      mark_chat = req->out.chat.id;
    else if (err != 0 && err != PARLEY_ENOT_FOUND)
      return err;
    free(req->out.chat.title);
    memset(&req->out.chat, 0, sizeof req->out.chat);
  }
  req->out.hits = calloc((size_t)limit, sizeof *req->out.hits);
  if (req->out.hits == NULL)
    return PARLEY_EUNAVAILABLE;
  /* Prefixes first, on the indexes; the word starts ("Okaf" finds "Ben Okafor") only fill what
   * is left, as they are worse matches and their query scans users. */
  err = p->users_search(be, req, lo, len, mark_chat, limit, 0);
  if (err == 0 && req->out.n_hits < (size_t)limit)
    err = p->users_search(be, req, lo, len, mark_chat, limit, 1);
  return err;
}

/* A DM among the results is named as chat.list names it: kind "dm", titled by the other person
 * (the caller's view). One query per distinct chat of the page (at most STORE_MSG_SEARCH_MAX). */
static int rules_search_dms(const struct store_prims *p, void *be, struct store_req *req) {
  static const char sql[] =
      "SELECT c.kind, u.display_name FROM chats c"
      " LEFT JOIN participants p ON p.chat_id = c.id AND p.user_id <> $2 AND c.kind = 'dm'"
      " LEFT JOIN users u ON u.id = p.user_id WHERE c.slug = $1";
  for (size_t i = 0; i < req->out.n_found; i++) {
    struct store_msg_hit *h = &req->out.found[i];
    struct store_arg a[] = {STORE_S(h->slug), STORE_I(req->in.user_id)};
    struct store_res r = {0};
    const char *kind, *name;
    int err;
    size_t k;
    for (k = 0; k < i && strcmp(req->out.found[k].slug, h->slug) != 0; k++)
      ;
    if (k < i) { /* a chat seen earlier on the page */
      h->is_dm = req->out.found[k].is_dm;
      if (h->is_dm) {
        char *t = strdup(req->out.found[k].title ? req->out.found[k].title : "");
        if (t == NULL)
          return PARLEY_EUNAVAILABLE;
        free(h->title);
        h->title = t;
      }
      continue;
    }
    err = p->sql(be, sql, a, 2, &r);
    if (err)
      return err;
    kind = r.rows > 0 ? store_res_s(&r, 0, 0) : NULL;
    name = r.rows > 0 ? store_res_s(&r, 0, 1) : NULL;
    h->is_dm = kind != NULL && strcmp(kind, "dm") == 0;
    if (h->is_dm) {
      char *t = strdup(name ? name : "");
      if (t == NULL) {
        store_res_free(&r);
        return PARLEY_EUNAVAILABLE;
      }
      free(h->title);
      h->title = t;
    }
    store_res_free(&r);
  }
  return 0;
}

/* Full-text search over the chats the caller is in now. Ranked results page by position (`before`
 * = results already seen), since a rank is no stable key to continue from; the rank limit keeps
 * the deepest page cheap. */
static int rules_msg_search(const struct store_prims *p, void *be, struct store_req *req) {
  struct search_query q;
  int64_t chat_id = 0;
  int timed_out = 0;
  int err;

  if (req->in.query == NULL || !RULES_TERMINATED(req->in.slug))
    return PARLEY_EBAD_REQUEST;
  if (req->in.limit < 1 || req->in.limit > STORE_MSG_SEARCH_MAX)
    return store_fail(req, PARLEY_EBAD_REQUEST, "limit: must be 1 to %d", STORE_MSG_SEARCH_MAX);
  if (req->in.before < 0 || req->in.before > STORE_MSG_SEARCH_RANKS - req->in.limit)
    return store_fail(req, PARLEY_EBAD_REQUEST,
                      "before: only the first %d results can be paged through; add words",
                      STORE_MSG_SEARCH_RANKS);
  err = search_query_parse(req->in.query, strlen(req->in.query), &q);
  if (err == PARLEY_ETOO_LARGE)
    return store_fail(req, err, "q: at most %d bytes", SEARCH_QUERY_MAX);
  if (err)
    return store_fail(req, err, "q: give 1 to %d words with letters or digits", SEARCH_TERMS_MAX);
  if (req->in.slug[0] != '\0') {
    err = store_chat_access(p, be, req, ACL_CHAT_READ, 0);
    if (err)
      return err;
    chat_id = req->out.chat.id;
  }
  err = p->msg_search(be, req, &q, chat_id, (int)req->in.before, req->in.limit, &timed_out);
  if (err && timed_out)
    return store_fail(req, PARLEY_EUNAVAILABLE,
                      "the search took too long: add words or search one chat");
  return err ? err : rules_search_dms(p, be, req);
}

static int rules_invite_sweep(const struct store_prims *p, void *be, struct store_req *req) {
  int err;
  if (req->in.limit < 1 || req->in.limit > STORE_LIMIT_MAX)
    return PARLEY_EBAD_REQUEST;
  err = p->invites_due(be, req, req->in.limit);
  for (size_t i = 0; err == 0 && i < req->out.n_invites; i++) {
    enum invite_status next;
    struct store_invite *inv = &req->out.invites[i];
    err = invite_transition(inv->status, INVITE_EXPIRE, req->in.now, inv->expires_at, &next);
    if (err == 0)
      err = p->invite_set_status(be, inv->id, next, req->in.now);
    if (err == 0)
      inv->status = next;
  }
  return err;
}

/* Expired sessions go in batches, so a long-stopped server does not hold the writer for one
 * huge delete; has_more asks the caller for the next batch. */
static int rules_session_sweep(const struct store_prims *p, void *be, struct store_req *req) {
  int limit = req->in.limit > 0 && req->in.limit <= STORE_LIMIT_MAX ? req->in.limit
                                                                      : STORE_LIMIT_MAX;
  int err = p->sessions_expire(be, req->in.now, limit, &req->out.n_deleted);
  if (err == 0)
    req->out.has_more = req->out.n_deleted >= limit;
  return err;
}

/* ---- the dispatch ---- */

int store_rules_exec(const struct store_prims *p, void *be, struct store_req *req) {
  int mine = store_rules_msg_exec(p, be, req);
  if (mine != 1)
    return mine;
  mine = store_rules_stream_exec(p, be, req);
  if (mine != 1)
    return mine;
  switch (req->op) {
  case STORE_USER_CREATE:
    return rules_user_create(p, be, req);
  case STORE_USER_BY_NAME:
    if (!RULES_TERMINATED(req->in.user.username))
      return PARLEY_EBAD_REQUEST;
    break;
  case STORE_SESSION_CREATE:
    if (req->in.expires_at <= req->in.now)
      return PARLEY_EBAD_REQUEST;
    break;
  case STORE_CHAT_CREATE:
    return rules_chat_create(p, be, req);
  case STORE_CHAT_GET: {
    int err = store_chat_access(p, be, req, ACL_CHAT_VIEW, 0);
    return err ? err : store_rules_chat_dm(p, be, req, &req->out.chat);
  }
  case STORE_CHAT_MEMBERS: {
    int err = p->op[STORE_CHAT_MEMBERS](be, req);
    return err ? err : store_rules_chat_dm(p, be, req, &req->out.chat);
  }
  case STORE_CHAT_JOIN:
    return rules_chat_join(p, be, req);
  case STORE_MSG_HISTORY:
    return rules_msg_history(p, be, req);
  case STORE_MSG_SINCE:
    return rules_msg_since(p, be, req);
  case STORE_CHAT_UPDATE:
    return rules_chat_update(p, be, req);
  case STORE_CHAT_LEAVE:
    return store_rules_chat_leave(p, be, req);
  case STORE_CHAT_REMOVE:
    return store_rules_chat_remove(p, be, req);
  case STORE_CHAT_SET_ROLE:
    return store_rules_chat_set_role(p, be, req);
  case STORE_USERS_SEARCH:
    return rules_users_search(p, be, req);
  case STORE_INVITE_CREATE:
    return store_rules_invite_create(p, be, req);
  case STORE_INVITE_ACCEPT:
    return store_rules_invite_accept(p, be, req);
  case STORE_INVITE_DECLINE:
    return store_rules_invite_decline(p, be, req);
  case STORE_INVITE_REVOKE:
    return store_rules_invite_revoke(p, be, req);
  case STORE_INVITE_SWEEP:
    return rules_invite_sweep(p, be, req);
  case STORE_MSG_SEARCH:
    return rules_msg_search(p, be, req);
  case STORE_SESSION_SWEEP:
    return rules_session_sweep(p, be, req);
  default:
    break;
  }
  if (req->op < 0 || req->op >= STORE_OP__COUNT || p->op[req->op] == NULL)
    return PARLEY_EBAD_REQUEST;
  return p->op[req->op](be, req);
}
