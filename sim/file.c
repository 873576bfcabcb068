/*
 * file.c — reading a whole file, the one way fleetsim does it: images,
 * profiles, scenarios, content.  Bounded (a caller says how large a file of
 * its kind can sensibly be), NUL-terminated past its size so text parsers
 * can use it directly, and allocated through sim_malloc.
 */
#include <errno.h>
#include <stdio.h>

#include "sim.h"

int sim_read_file(const char *path, size_t max, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;

    if (!f)
        return SIM_EIO;
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nbuf = sim_realloc(buf, ncap);
            if (!nbuf) {
                rc = SIM_ENOMEM;
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (ferror(f)) {
            if (!errno)
                errno = EIO;
            rc = SIM_EIO;
            break;
        }
        if (max && len > max) {
            errno = EFBIG;
            rc = SIM_ERANGE;
            break;
        }
        if (feof(f))
            break;
    }
    int saved = errno;
    fclose(f);
    errno = saved;
    if (rc) {
        sim_free(buf);
        return rc;
    }
    buf[len] = 0;
    *data = buf;
    *size = len;
    return 0;
}
