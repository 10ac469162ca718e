#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/status.h"
#include "net/io.h"

#define MAX_IOV 16

ssize_t pt_io_read(int fd, struct pt_buf *b, size_t min_room, size_t max_cap, bool *drained)
{
    char *dst = pt_buf_reserve(b, min_room, max_cap);
    if (dst == NULL) {
        /* at the cap: read whatever room is left, if any */
        if (b->data == NULL || pt_buf_room(b) == 0) {
            *drained = false; /* nothing was read: whatever is there still is */
            return b->data == NULL ? PT_ERR_NOMEM : PT_ERR_TOO_LARGE;
        }
        dst = b->data + b->end;
    }
    size_t room = pt_buf_room(b);
    ssize_t r;
    do {
        r = recv(fd, dst, room, 0);
    } while (r == -1 && errno == EINTR);
    if (r > 0) {
        pt_buf_commit(b, (size_t)r);
        *drained = (size_t)r < room;
        return r;
    }
    if (r == 0) {
        *drained = true;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *drained = true;
        return PT_AGAIN;
    }
    *drained = true;
    return PT_ERR_IO;
}

int pt_io_sendv(int fd, struct pt_buf *pending, const struct iovec *iov, size_t n, size_t *written)
{
    struct iovec v[MAX_IOV + 1];
    size_t nv = 0, total = 0;
    size_t plen = pt_buf_len(pending);
    if (plen > 0) {
        v[nv].iov_base = pt_buf_head(pending);
        v[nv].iov_len = plen;
        nv++;
        total += plen;
    }
    for (size_t i = 0; i < n && nv <= MAX_IOV; i++) {
        if (iov[i].iov_len == 0)
            continue;
        v[nv++] = iov[i];
        total += iov[i].iov_len;
    }
    *written = 0;
    if (total == 0)
        return 0;
    ssize_t w;
    do {
        w = writev(fd, v, (int)nv);
    } while (w == -1 && errno == EINTR);
    if (w == -1) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return PT_ERR_IO;
        w = 0;
    }
    *written = (size_t)w;
    size_t done = (size_t)w;
    /* drop what went out of pending */
    if (plen > 0) {
        size_t from_pending = done < plen ? done : plen;
        pt_buf_consume(pending, from_pending);
        done -= from_pending;
    }
    if ((size_t)w == total) {
        pt_buf_release_if_empty(pending);
        return 0;
    }
    /* keep the unsent part of the new data */
    for (size_t i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (done >= len) {
            done -= len;
            continue;
        }
        p += done;
        len -= done;
        done = 0;
        if (pt_buf_append(pending, p, len, SIZE_MAX) != 0)
            return PT_ERR_NOMEM;
    }
    return 1;
}

int pt_io_flush(int fd, struct pt_buf *pending, size_t *written)
{
    return pt_io_sendv(fd, pending, NULL, 0, written);
}
