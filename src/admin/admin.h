/*
 * The admin API (SPEC §6): JSON over HTTP on admin.listen, served by the
 * main thread's loop (never by a worker), with an optional bearer token.
 */
#ifndef PT_ADMIN_ADMIN_H
#define PT_ADMIN_ADMIN_H

struct pt_server;

/**
 * Start listening on srv->snap->admin.listen (no-op without one).  Returns
 * 0, or -1 with a one-line reason on stderr (e.g. the port is in use: the
 * caller exits 2).
 */
int pt_admin_start(struct pt_server *srv);

/** After a reload: follow a changed admin.listen (rebinding) or token. */
void pt_admin_config_changed(struct pt_server *srv);

/** Stop listening and close admin connections (at exit). */
void pt_admin_stop(struct pt_server *srv);

#endif
