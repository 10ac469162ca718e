/*
 * Non-blocking socket I/O with the habits that keep system calls down:
 * read until a short read, and write everything pending plus new data with
 * one writev, keeping only the unsent tail.
 */
#ifndef PT_NET_IO_H
#define PT_NET_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"

/**
 * Read once into b (reserving at least min_room bytes, the buffer capped at
 * max_cap).  Returns bytes read (> 0), 0 at end of stream, PT_AGAIN when
 * nothing is available, PT_ERR_TOO_LARGE when the buffer is at max_cap, or
 * PT_ERR_IO (errno set).  *drained is set when the read was short, meaning the
 * socket has nothing more until the next readiness edge.
 */
ssize_t pt_io_read(int fd, struct pt_buf *b, size_t min_room, size_t max_cap, bool *drained);

/**
 * Write pending (if any) followed by iov[0..n) with one writev.  What the
 * socket did not take is kept: first pending's own tail, then the unsent part
 * of iov is copied to the end of pending.  Returns 0 when everything went out,
 * 1 when bytes remain in pending (wait for writability), PT_ERR_NOMEM, or
 * PT_ERR_IO (errno set; EPIPE/ECONNRESET when the peer left).
 * *written gets the number of bytes the socket accepted.
 */
int pt_io_sendv(int fd, struct pt_buf *pending, const struct iovec *iov, size_t n, size_t *written);

/** Flush pending; same returns as pt_io_sendv. */
int pt_io_flush(int fd, struct pt_buf *pending, size_t *written);

#endif
