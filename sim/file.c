/*
 * file.c — reading a whole file, the one way fleetsim does it: images,
 * profiles, scenarios, content.  Bounded (a caller says how large a file of
 * its kind can sensibly be), NUL-terminated past its size so text parsers
 * can use it directly, and allocated through sim_malloc.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sim_list_dir(const char *dir, const char *prefix, const char *suffix, size_t max,
                 char ***names, size_t *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return SIM_EIO;
    }
    size_t np = strlen(prefix), ns = strlen(suffix);
    char **list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        /* Hidden files are editors' and tools' (".#x.yaml"). */
        if (e->d_name[0] == '.' || len <= np + ns || strncmp(e->d_name, prefix, np) != 0 ||
            strcmp(e->d_name + len - ns, suffix) != 0)
            continue;
        if (n == max) {
            snprintf(err, errlen, "%s: more than %zu %s*%s files", dir, max, prefix, suffix);
            rc = SIM_ERANGE;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **grown = sim_realloc(list, ncap * sizeof *list);
            if (!grown) {
                rc = SIM_ENOMEM;
                break;
            }
            list = grown;
            cap = ncap;
        }
        if (!(list[n] = sim_strdup(e->d_name))) {
            rc = SIM_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        if (rc == SIM_ENOMEM)
            snprintf(err, errlen, "out of memory");
        sim_list_free(list, n);
        return rc;
    }
    if (n)
        qsort(list, n, sizeof *list, cmp_str);
    *names = list;
    *count = n;
    return 0;
}

void sim_list_free(char **names, size_t count)
{
    for (size_t i = 0; names && i < count; i++)
        sim_free(names[i]);
    sim_free(names);
}
