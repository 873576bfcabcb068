/*
 * kapi_io.c — files and devices: a read-only virtual file system over the
 * run's files (sim_run.files), served through ZwCreateFile, ZwOpenFile,
 * ZwReadFile, ZwQueryInformationFile, ZwQueryDirectoryFile and ZwClose, and
 * the I/O manager calls a driver makes while loading (IoCreateDevice,
 * IoDeleteDevice, IoCompleteRequest).
 *
 * Content files are how an update reaches a sensor, so the file system is
 * the path the fleet's bytes take into the driver.  It behaves as NTFS does
 * for a kernel caller where drivers depend on it: names compare without
 * case, `\SystemRoot\` and `\??\C:\Windows\` (and `\DosDevices\`,
 * `\GLOBAL??\`) name the same place, a directory is any folder that holds a
 * file, a directory enumerates in name order with wildcard patterns, and the
 * NTSTATUS codes are the ones Windows returns.  Nothing can be written:
 * creating or overwriting a file is refused with STATUS_ACCESS_DENIED.
 *
 * Handles live in ep->handles; the engine clears them for every run.  Their
 * values are kernel handles (high bit set, sign-extended as on x64).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sim-internal.h"

#define STATUS_SUCCESS 0x00000000u
#define STATUS_BUFFER_OVERFLOW 0x80000005u
#define STATUS_NO_MORE_FILES 0x80000006u
#define STATUS_INFO_LENGTH_MISMATCH 0xC0000004u
#define STATUS_INVALID_HANDLE 0xC0000008u
#define STATUS_INVALID_PARAMETER 0xC000000Du
#define STATUS_NO_SUCH_FILE 0xC000000Fu
#define STATUS_INVALID_DEVICE_REQUEST 0xC0000010u
#define STATUS_END_OF_FILE 0xC0000011u
#define STATUS_ACCESS_DENIED 0xC0000022u
#define STATUS_OBJECT_NAME_INVALID 0xC0000033u
#define STATUS_OBJECT_NAME_NOT_FOUND 0xC0000034u
#define STATUS_OBJECT_NAME_COLLISION 0xC0000035u
#define STATUS_OBJECT_PATH_NOT_FOUND 0xC000003Au
#define STATUS_INSUFFICIENT_RESOURCES 0xC000009Au
#define STATUS_FILE_IS_A_DIRECTORY 0xC00000BAu
#define STATUS_NOT_A_DIRECTORY 0xC0000103u
#define STATUS_INVALID_INFO_CLASS 0xC0000003u

/* CreateDisposition */
#define FILE_SUPERSEDE 0u
#define FILE_OPEN 1u
#define FILE_CREATE 2u
#define FILE_OPEN_IF 3u
/* CreateOptions */
#define FILE_DIRECTORY_FILE 0x1u
#define FILE_NON_DIRECTORY_FILE 0x40u
/* IO_STATUS_BLOCK.Information after an open */
#define FILE_OPENED 1u

#define FILE_ATTRIBUTE_DIRECTORY 0x10u
#define FILE_ATTRIBUTE_ARCHIVE 0x20u

/* FILE_INFORMATION_CLASS values fleetsim answers. */
#define FileDirectoryInformation 1u
#define FileFullDirectoryInformation 2u
#define FileBothDirectoryInformation 3u
#define FileBasicInformation 4u
#define FileStandardInformation 5u
#define FileNamesInformation 12u
#define FilePositionInformation 14u

#define HANDLE_BASE 0xFFFFFFFF80000004ull
#define PATH_MAX_NT 260
#define CLUSTER 4096u

/* ---- paths ------------------------------------------------------------- */

/*
 * Canonical form of an NT path: the Windows directory's aliases folded to
 * `\??\C:\Windows`, DOS device aliases to `\??\`, no trailing backslash.
 * Case is kept (names are shown as stored); comparisons ignore it.
 * Returns false when the path does not fit.
 */
static bool canonical(const char *in, char *out, size_t max)
{
    static const struct { const char *from, *to; } aliases[] = {
        { "\\SystemRoot", "\\??\\C:\\Windows" },
        { "\\DosDevices\\", "\\??\\" },
        { "\\GLOBAL??\\", "\\??\\" },
    };
    const char *rest = in;
    const char *prefix = "";

    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        size_t n = strlen(aliases[i].from);
        if (strncasecmp(in, aliases[i].from, n) == 0 &&
            (in[n] == '\0' || in[n] == '\\' || aliases[i].from[n - 1] == '\\')) {
            prefix = aliases[i].to;
            rest = in + n;
            break;
        }
    }
    size_t np = strlen(prefix), nr = strlen(rest);
    if (np + nr + 1 > max)
        return false;
    memcpy(out, prefix, np);
    memcpy(out + np, rest, nr + 1);
    size_t len = np + nr;
    while (len > 1 && out[len - 1] == '\\')
        out[--len] = '\0';
    return true;
}

/* `path` is `dir` itself or below it: returns the offset of the part after
 * `dir\`, 0 when path equals dir, -1 when it is elsewhere. */
static int below(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    if (strncasecmp(path, dir, n) != 0)
        return -1;
    if (path[n] == '\0')
        return 0;
    if (path[n] != '\\')
        return -1;
    return (int)n + 1;
}

/* Folders that exist on every Windows machine, even with no file in them. */
static bool is_system_dir(const char *path)
{
    static const char *const dirs[] = {
        "\\??\\C:", "\\??\\C:\\Windows", "\\??\\C:\\Windows\\System32",
        "\\??\\C:\\Windows\\System32\\drivers",
    };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (strcasecmp(path, dirs[i]) == 0)
            return true;
    return false;
}

typedef enum { PATH_MISSING, PATH_FILE, PATH_DIR } path_kind;

/* A file delivered later (an update arriving while the machine runs) does
 * not exist before its time. */
static bool visible(const sim_endpoint *ep, size_t i)
{
    const sim_file *f = &ep->run->files[i];
    return f->path && f->at_ms <= ep->now_ms;
}

static path_kind lookup(const sim_endpoint *ep, const char *path, size_t *file)
{
    const sim_run *run = ep->run;
    char c[PATH_MAX_NT];
    bool dir = is_system_dir(path);

    for (size_t i = 0; i < run->nfiles; i++) {
        if (!visible(ep, i) || !canonical(run->files[i].path, c, sizeof c))
            continue;
        int off = below(c, path);
        if (off == 0) {
            *file = i;
            return PATH_FILE;
        }
        if (off > 0)
            dir = true;
    }
    return dir ? PATH_DIR : PATH_MISSING;
}

static bool parent_exists(const sim_endpoint *ep, const char *path)
{
    char parent[PATH_MAX_NT];
    size_t unused;
    const char *slash = strrchr(path, '\\');

    if (!slash || slash == path)
        return false;
    size_t n = (size_t)(slash - path);
    memcpy(parent, path, n);
    parent[n] = '\0';
    return lookup(ep, parent, &unused) == PATH_DIR;
}

/* ---- handles ----------------------------------------------------------- */

static sim_handle *handle_get(sim_endpoint *ep, uint64_t value)
{
    uint64_t low = value & 0xFFFFFFFFull;
    uint64_t base = HANDLE_BASE & 0xFFFFFFFFull;

    /* A kernel handle comes back sign-extended or, from 32-bit storage,
     * truncated: both name the same handle. */
    if ((value >> 32) != 0 && (value >> 32) != 0xFFFFFFFFull)
        return NULL;
    if (low < base || (low - base) % 4 != 0)
        return NULL;
    uint64_t i = (low - base) / 4;
    if (i >= SIM__MAX_HANDLES || ep->handles[i].kind == SIM__HANDLE_FREE)
        return NULL;
    return &ep->handles[i];
}

static int handle_new(sim_endpoint *ep, uint64_t *value)
{
    for (size_t i = 0; i < SIM__MAX_HANDLES; i++) {
        if (ep->handles[i].kind == SIM__HANDLE_FREE) {
            *value = HANDLE_BASE + 4 * i;
            return (int)i;
        }
    }
    return -1;
}

/* ---- guest structures -------------------------------------------------- */

static int write_iosb(sim_endpoint *ep, uint64_t iosb, uint32_t status,
                      uint64_t information)
{
    uint8_t b[16] = {0};

    memcpy(b, &status, 4);
    memcpy(b + 8, &information, 8);
    return sim__write(ep, iosb, b, sizeof b);
}

/* The name an OBJECT_ATTRIBUTES names, in canonical form, joined to its
 * RootDirectory when that is a directory handle.  Returns an NTSTATUS, or
 * -1 after a fault. */
static int64_t object_path(sim_endpoint *ep, uint64_t attrs, char *out, size_t max)
{
    uint8_t oa[48];
    uint64_t root, name;
    char raw[PATH_MAX_NT], joined[2 * PATH_MAX_NT];

    if (sim__read(ep, attrs, oa, sizeof oa) < 0)
        return -1;
    memcpy(&root, oa + 8, 8);
    memcpy(&name, oa + 16, 8);
    if (name == 0)
        return STATUS_OBJECT_NAME_INVALID;
    if (sim__read_unicode_string(ep, name, raw, sizeof raw) < 0)
        return -1;
    if (root) {
        sim_handle *h = handle_get(ep, root);
        if (!h)
            return STATUS_INVALID_HANDLE;
        if (h->kind != SIM__HANDLE_DIR)
            return STATUS_OBJECT_PATH_NOT_FOUND;
        snprintf(joined, sizeof joined, "%s\\%s", h->dir, raw);
    } else {
        if (raw[0] != '\\')
            return STATUS_OBJECT_PATH_NOT_FOUND;
        snprintf(joined, sizeof joined, "%s", raw);
    }
    if (raw[0] == '\0' && !root)
        return STATUS_OBJECT_NAME_INVALID;
    if (!canonical(joined, out, max))
        return STATUS_OBJECT_NAME_INVALID;
    return STATUS_SUCCESS;
}

/* ---- open and close ---------------------------------------------------- */

static void open_file(sim_endpoint *ep, uint64_t handle_out, uint64_t attrs,
                      uint64_t iosb, uint32_t disposition, uint32_t options)
{
    char path[PATH_MAX_NT];
    size_t file = 0;

    int64_t st = object_path(ep, attrs, path, sizeof path);
    if (st < 0)
        return;
    if (st != STATUS_SUCCESS) {
        sim__ret(ep, (uint64_t)st);
        return;
    }
    path_kind kind = lookup(ep, path, &file);
    if (kind == PATH_MISSING) {
        bool creating = disposition != FILE_OPEN && disposition <= 5;
        uint32_t status = !parent_exists(ep, path) ? STATUS_OBJECT_PATH_NOT_FOUND
                          : creating                    ? STATUS_ACCESS_DENIED
                                                        : STATUS_OBJECT_NAME_NOT_FOUND;
        sim__ret(ep, status);
        return;
    }
    if (disposition == FILE_CREATE) {
        sim__ret(ep, STATUS_OBJECT_NAME_COLLISION);
        return;
    }
    if (disposition != FILE_OPEN && disposition != FILE_OPEN_IF) {
        /* Supersede or overwrite: the virtual file system is read-only. */
        sim__ret(ep, STATUS_ACCESS_DENIED);
        return;
    }
    if (kind == PATH_FILE && (options & FILE_DIRECTORY_FILE)) {
        sim__ret(ep, STATUS_NOT_A_DIRECTORY);
        return;
    }
    if (kind == PATH_DIR && (options & FILE_NON_DIRECTORY_FILE)) {
        sim__ret(ep, STATUS_FILE_IS_A_DIRECTORY);
        return;
    }

    uint64_t value;
    int i = handle_new(ep, &value);
    if (i < 0) {
        sim__ret(ep, STATUS_INSUFFICIENT_RESOURCES);
        return;
    }
    if (sim__write(ep, handle_out, &value, 8) < 0 ||
        write_iosb(ep, iosb, STATUS_SUCCESS, FILE_OPENED) < 0)
        return;
    sim_handle *h = &ep->handles[i];
    memset(h, 0, sizeof *h);
    h->kind = kind == PATH_FILE ? SIM__HANDLE_FILE : SIM__HANDLE_DIR;
    h->file = file;
    /* Stored lower case: every comparison ignores case anyway. */
    for (size_t k = 0; path[k] && k + 1 < sizeof h->dir; k++)
        h->dir[k] = (char)(path[k] >= 'A' && path[k] <= 'Z' ? path[k] + 32 : path[k]);
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_ZwCreateFile(sim_endpoint *ep)
{
    /* (FileHandle, DesiredAccess, ObjectAttributes, IoStatusBlock,
     *  AllocationSize, FileAttributes, ShareAccess, CreateDisposition,
     *  CreateOptions, EaBuffer, EaLength) */
    open_file(ep, sim__arg(ep, 0), sim__arg(ep, 2), sim__arg(ep, 3),
              (uint32_t)sim__arg(ep, 7), (uint32_t)sim__arg(ep, 8));
}

void sim__api_ZwOpenFile(sim_endpoint *ep)
{
    /* (FileHandle, DesiredAccess, ObjectAttributes, IoStatusBlock,
     *  ShareAccess, OpenOptions) */
    open_file(ep, sim__arg(ep, 0), sim__arg(ep, 2), sim__arg(ep, 3), FILE_OPEN,
              (uint32_t)sim__arg(ep, 5));
}

void sim__api_ZwClose(sim_endpoint *ep)
{
    sim_handle *h = handle_get(ep, sim__arg(ep, 0));

    if (!h) {
        sim__ret(ep, STATUS_INVALID_HANDLE);
        return;
    }
    memset(h, 0, sizeof *h);
    sim__ret(ep, STATUS_SUCCESS);
}

/* ---- reading ----------------------------------------------------------- */

void sim__api_ZwReadFile(sim_endpoint *ep)
{
    /* (FileHandle, Event, ApcRoutine, ApcContext, IoStatusBlock, Buffer,
     *  Length, ByteOffset, Key): synchronous, so Event and APC are unused. */
    sim_handle *h = handle_get(ep, sim__arg(ep, 0));
    uint64_t iosb = sim__arg(ep, 4), buffer = sim__arg(ep, 5);
    uint32_t length = (uint32_t)sim__arg(ep, 6);
    uint64_t offset_ptr = sim__arg(ep, 7);

    if (ep->stopped)
        return;
    if (!h) {
        sim__ret(ep, STATUS_INVALID_HANDLE);
        return;
    }
    if (h->kind != SIM__HANDLE_FILE) {
        sim__ret(ep, STATUS_INVALID_DEVICE_REQUEST);
        return;
    }
    uint64_t pos = h->position;
    if (offset_ptr) {
        int64_t off;
        if (sim__read(ep, offset_ptr, &off, 8) < 0)
            return;
        /* -2 (FILE_USE_FILE_POINTER_POSITION) and -1 mean "where the file
         * pointer is"; other negative offsets are invalid. */
        if (off >= 0)
            pos = (uint64_t)off;
        else if (off != -1 && off != -2) {
            sim__ret(ep, STATUS_INVALID_PARAMETER);
            return;
        }
    }
    const sim_file *f = &ep->run->files[h->file];
    if (pos >= f->size) {
        if (write_iosb(ep, iosb, STATUS_END_OF_FILE, 0) == 0)
            sim__ret(ep, STATUS_END_OF_FILE);
        return;
    }
    uint64_t n = f->size - pos < length ? f->size - pos : length;
    if (sim__write(ep, buffer, f->data + pos, n) < 0)
        return;
    h->position = pos + n;
    if (write_iosb(ep, iosb, STATUS_SUCCESS, n) == 0)
        sim__ret(ep, STATUS_SUCCESS);
}

/* Times every file reports: a day before boot, so files predate the run. */
static uint64_t file_time(const sim_endpoint *ep)
{
    uint64_t boot = ep->run->boot_time ? ep->run->boot_time : sim__system_time(ep);
    uint64_t day = 864000000000ull;
    return boot > day ? boot - day : 0;
}

static uint64_t allocation_size(uint64_t size)
{
    return (size + CLUSTER - 1) / CLUSTER * CLUSTER;
}

void sim__api_ZwQueryInformationFile(sim_endpoint *ep)
{
    /* (FileHandle, IoStatusBlock, FileInformation, Length, Class) */
    sim_handle *h = handle_get(ep, sim__arg(ep, 0));
    uint64_t iosb = sim__arg(ep, 1), info = sim__arg(ep, 2);
    uint32_t length = (uint32_t)sim__arg(ep, 3);
    uint32_t cls = (uint32_t)sim__arg(ep, 4);
    uint8_t b[40];
    uint32_t need;

    if (ep->stopped)
        return;
    if (!h) {
        sim__ret(ep, STATUS_INVALID_HANDLE);
        return;
    }
    bool dir = h->kind == SIM__HANDLE_DIR;
    uint64_t size = dir ? 0 : ep->run->files[h->file].size;
    memset(b, 0, sizeof b);
    switch (cls) {
    case FileStandardInformation: {
        /* AllocationSize, EndOfFile, NumberOfLinks, DeletePending, Directory */
        uint64_t alloc = allocation_size(size);
        uint32_t links = 1;
        need = 24;
        memcpy(b, &alloc, 8);
        memcpy(b + 8, &size, 8);
        memcpy(b + 16, &links, 4);
        b[21] = dir;
        break;
    }
    case FilePositionInformation:
        need = 8;
        memcpy(b, &h->position, 8);
        if (dir)
            memset(b, 0, 8);
        break;
    case FileBasicInformation: {
        uint64_t t = file_time(ep);
        uint32_t attr = dir ? FILE_ATTRIBUTE_DIRECTORY : FILE_ATTRIBUTE_ARCHIVE;
        need = 40;
        for (int i = 0; i < 4; i++)
            memcpy(b + 8 * i, &t, 8);
        memcpy(b + 32, &attr, 4);
        break;
    }
    default:
        sim__ret(ep, STATUS_INVALID_INFO_CLASS);
        return;
    }
    if (length < need) {
        sim__ret(ep, STATUS_INFO_LENGTH_MISMATCH);
        return;
    }
    if (sim__write(ep, info, b, need) < 0 || write_iosb(ep, iosb, STATUS_SUCCESS, need) < 0)
        return;
    sim__ret(ep, STATUS_SUCCESS);
}

/* ---- directories ------------------------------------------------------- */

/* Wildcard match without case: `*` any run, `?` one character; the DOS
 * forms `<`, `>` and `"` are taken as `*`, `?` and `.`. */
static bool wild_match(const char *pat, const char *name)
{
    const char *star = NULL, *resume = NULL;

    while (*name) {
        char p = *pat == '<' ? '*' : *pat == '>' ? '?' : *pat == '"' ? '.' : *pat;
        char a = (char)(p >= 'A' && p <= 'Z' ? p + 32 : p);
        char b = (char)(*name >= 'A' && *name <= 'Z' ? *name + 32 : *name);
        if (p == '*') {
            star = ++pat;
            resume = name;
        } else if (p != '\0' && (p == '?' || a == b)) {
            pat++;
            name++;
        } else if (star) {
            pat = star;
            name = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*' || *pat == '<')
        pat++;
    return *pat == '\0';
}

/* One entry of a directory listing. */
typedef struct dir_entry {
    char name[PATH_MAX_NT];
    bool dir;
    size_t file;   /* for files: index into run->files */
} dir_entry;

/*
 * The immediate child of `dir` that `canon` (a file's canonical path)
 * lies under: its name, and whether it is a folder.  False when the file
 * is not below dir.
 */
static bool child_of(const char *canon, const char *dir, char *name, size_t max,
                     bool *is_dir)
{
    int off = below(canon, dir);

    if (off <= 0)
        return false;
    const char *rest = canon + off;
    const char *slash = strchr(rest, '\\');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n + 1 > max)
        return false;
    memcpy(name, rest, n);
    name[n] = '\0';
    *is_dir = slash != NULL;
    return true;
}

/*
 * The smallest child name (case-insensitive order, as NTFS lists) that
 * matches `pattern` and sorts after `after` ("" for the first).  Listing
 * by repeated successor search needs no memory beyond one entry.
 */
static bool next_entry(const sim_endpoint *ep, const char *dir, const char *pattern,
                       const char *after, dir_entry *out)
{
    const sim_run *run = ep->run;
    char canon[PATH_MAX_NT], name[PATH_MAX_NT];
    bool found = false;

    for (size_t i = 0; i < run->nfiles; i++) {
        bool is_dir;
        if (!visible(ep, i) || !canonical(run->files[i].path, canon, sizeof canon))
            continue;
        if (!child_of(canon, dir, name, sizeof name, &is_dir))
            continue;
        if (after[0] && strcasecmp(name, after) <= 0)
            continue;
        if (!wild_match(pattern, name))
            continue;
        if (!found || strcasecmp(name, out->name) < 0) {
            found = true;
            memcpy(out->name, name, strlen(name) + 1);
            out->dir = is_dir;
            out->file = i;
        }
    }
    return found;
}

/* The entry at `index` in the listing, or false past its end. */
static bool entry_at(const sim_endpoint *ep, const char *dir, const char *pattern,
                     uint64_t index, dir_entry *out)
{
    char after[PATH_MAX_NT] = "";

    for (uint64_t k = 0;; k++) {
        if (!next_entry(ep, dir, pattern, after, out))
            return false;
        if (k == index)
            return true;
        memcpy(after, out->name, strlen(out->name) + 1);
    }
}

/* Fixed size of an entry before its name, per class. */
static uint32_t entry_fixed(uint32_t cls)
{
    switch (cls) {
    case FileDirectoryInformation: return 64;
    case FileFullDirectoryInformation: return 68;
    case FileBothDirectoryInformation: return 94;
    case FileNamesInformation: return 12;
    default: return 0;
    }
}

/*
 * Encode one entry into b (room bytes).  Returns its unpadded size, with
 * *truncated set when the name did not fit (the buffer then holds as much
 * of it as fits, STATUS_BUFFER_OVERFLOW).
 */
static uint32_t encode_entry(sim_endpoint *ep, uint32_t cls, const dir_entry *e,
                             uint8_t *b, uint32_t room, bool *truncated)
{
    uint32_t fixed = entry_fixed(cls);
    uint32_t name_bytes = (uint32_t)strlen(e->name) * 2;
    uint32_t fit = name_bytes;

    *truncated = false;
    if (fixed + name_bytes > room) {
        fit = (room - fixed) & ~1u;
        *truncated = true;
    }
    memset(b, 0, fixed);
    if (cls == FileNamesInformation) {
        memcpy(b + 8, &name_bytes, 4);
    } else {
        uint64_t t = file_time(ep);
        uint64_t size = e->dir ? 0 : ep->run->files[e->file].size;
        uint64_t alloc = allocation_size(size);
        uint32_t attr = e->dir ? FILE_ATTRIBUTE_DIRECTORY : FILE_ATTRIBUTE_ARCHIVE;
        for (int i = 0; i < 4; i++)
            memcpy(b + 8 + 8 * i, &t, 8);
        memcpy(b + 40, &size, 8);
        memcpy(b + 48, &alloc, 8);
        memcpy(b + 56, &attr, 4);
        memcpy(b + 60, &name_bytes, 4);
    }
    for (uint32_t i = 0; i < fit / 2; i++) {
        uint16_t w = (uint8_t)e->name[i];
        memcpy(b + fixed + 2 * i, &w, 2);
    }
    return fixed + fit;
}

void sim__api_ZwQueryDirectoryFile(sim_endpoint *ep)
{
    /* (FileHandle, Event, ApcRoutine, ApcContext, IoStatusBlock,
     *  FileInformation, Length, FileInformationClass, ReturnSingleEntry,
     *  FileName, RestartScan) */
    sim_handle *h = handle_get(ep, sim__arg(ep, 0));
    uint64_t iosb = sim__arg(ep, 4), info = sim__arg(ep, 5);
    uint32_t length = (uint32_t)sim__arg(ep, 6);
    uint32_t cls = (uint32_t)sim__arg(ep, 7);
    bool single = (uint8_t)sim__arg(ep, 8) != 0;
    uint64_t file_name = sim__arg(ep, 9);
    bool restart = (uint8_t)sim__arg(ep, 10) != 0;
    char pattern[PATH_MAX_NT] = "*";

    if (ep->stopped)
        return;
    if (!h) {
        sim__ret(ep, STATUS_INVALID_HANDLE);
        return;
    }
    if (h->kind != SIM__HANDLE_DIR) {
        sim__ret(ep, STATUS_INVALID_PARAMETER);
        return;
    }
    uint32_t fixed = entry_fixed(cls);
    if (fixed == 0) {
        sim__ret(ep, STATUS_INVALID_INFO_CLASS);
        return;
    }
    if (length < fixed) {
        sim__ret(ep, STATUS_INFO_LENGTH_MISMATCH);
        return;
    }
    /*
     * The pattern given on the first query of a scan holds for the whole
     * scan, as NTFS keeps it; it is stored after the directory path.
     */
    size_t dlen = strlen(h->dir);
    char *stored = h->dir + dlen + 1;
    size_t room = sizeof h->dir - dlen - 1;
    if (restart)
        h->position = 0;
    if (file_name && (h->position == 0 || stored[0] == '\0')) {
        if (sim__read_unicode_string(ep, file_name, pattern, sizeof pattern) < 0)
            return;
        if (pattern[0] == '\0')
            memcpy(pattern, "*", 2);
        if (strlen(pattern) + 1 <= room)
            memcpy(stored, pattern, strlen(pattern) + 1);
    } else if (stored[0] && strlen(stored) < sizeof pattern) {
        memcpy(pattern, stored, strlen(stored) + 1);
    }
    bool first = h->position == 0;

    uint8_t entry[94 + 2 * PATH_MAX_NT];
    dir_entry e;
    uint32_t used = 0, last = 0, count = 0;
    uint32_t status = STATUS_SUCCESS;
    while (entry_at(ep, h->dir, pattern, h->position, &e)) {
        uint32_t at = (used + 7) & ~7u;  /* entries are 8-byte aligned */
        if (count > 0 && (at >= length || at + entry_fixed(cls) +
                          2 * (uint32_t)strlen(e.name) > length))
            break;
        bool truncated;
        uint32_t n = encode_entry(ep, cls, &e, entry, length - at, &truncated);
        if (count > 0) {
            /* Chain the previous entry to this one. */
            uint32_t next = at - last;
            if (sim__write(ep, info + last, &next, 4) < 0)
                return;
        }
        if (sim__write(ep, info + at, entry, n) < 0)
            return;
        last = at;
        used = at + n;
        count++;
        h->position++;
        if (truncated) {
            status = STATUS_BUFFER_OVERFLOW;
            break;
        }
        if (single)
            break;
    }
    if (count == 0) {
        status = first && strcmp(pattern, "*") != 0 ? STATUS_NO_SUCH_FILE
                                                     : STATUS_NO_MORE_FILES;
        if (write_iosb(ep, iosb, status, 0) == 0)
            sim__ret(ep, status);
        return;
    }
    if (write_iosb(ep, iosb, status, used) == 0)
        sim__ret(ep, status);
}

/* ---- devices ----------------------------------------------------------- */

#define DEVICE_OBJECT_SIZE 0x148u
#define DEVOBJ_EXTENSION_SIZE 0x40u
#define IO_TYPE_DEVICE 3u
#define IO_TYPE_DEVICE_OBJECT_EXTENSION 13u
#define DO_DEVICE_INITIALIZING 0x80u
#define DEVICE_TAG 0x69766544u /* 'Devi' */

void sim__api_IoCreateDevice(sim_endpoint *ep)
{
    /* (DriverObject, DeviceExtensionSize, DeviceName, DeviceType,
     *  DeviceCharacteristics, Exclusive, DeviceObject) */
    uint64_t driver = sim__arg(ep, 0);
    uint32_t ext_size = (uint32_t)sim__arg(ep, 1);
    uint32_t type = (uint32_t)sim__arg(ep, 3);
    uint32_t chars = (uint32_t)sim__arg(ep, 4);
    uint64_t out = sim__arg(ep, 6);

    if (ep->stopped)
        return;
    /* One block: the device object, its extension, then nt's own
     * extension, laid out as the I/O manager lays them. */
    uint32_t dev = (DEVICE_OBJECT_SIZE + 15) & ~15u;
    uint64_t ext = ((uint64_t)ext_size + 15) & ~15ull; /* 0xFFFFFFF1 must not wrap to 0 */
    uint64_t total = (uint64_t)dev + ext + DEVOBJ_EXTENSION_SIZE;
    uint64_t d = sim__pool_alloc(ep, total, DEVICE_TAG, true);
    if (!d) {
        sim__ret(ep, STATUS_INSUFFICIENT_RESOURCES);
        return;
    }
    uint8_t *p = sim__ptr(ep, d, total, SIM_PROT_W);
    if (!p) {
        sim__fault(ep, d, SIM_ACCESS_WRITE);
        return;
    }
    uint16_t t16 = IO_TYPE_DEVICE, size16 = (uint16_t)(DEVICE_OBJECT_SIZE + ext_size);
    uint32_t flags = DO_DEVICE_INITIALIZING;
    uint64_t ext_addr = ext_size ? d + dev : 0;
    uint64_t doe = d + dev + ext;
    uint64_t next_dev = 0;
    if (driver && sim__read(ep, driver + 8, &next_dev, 8) < 0)
        return;
    memcpy(p + 0, &t16, 2);
    memcpy(p + 2, &size16, 2);
    memcpy(p + 8, &driver, 8);
    memcpy(p + 16, &next_dev, 8);
    memcpy(p + 48, &flags, 4);
    memcpy(p + 52, &chars, 4);
    memcpy(p + 64, &ext_addr, 8);
    memcpy(p + 72, &type, 4);
    p[76] = 1; /* StackSize */
    memcpy(p + 312, &doe, 8);
    uint16_t t_doe = IO_TYPE_DEVICE_OBJECT_EXTENSION, s_doe = DEVOBJ_EXTENSION_SIZE;
    memcpy(p + dev + ext, &t_doe, 2);
    memcpy(p + dev + ext + 2, &s_doe, 2);
    memcpy(p + dev + ext + 8, &d, 8);

    /* Newest first on the driver's list, as IoCreateDevice links it. */
    if (driver && sim__write(ep, driver + 8, &d, 8) < 0)
        return;
    if (sim__write(ep, out, &d, 8) < 0)
        return;
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_IoDeleteDevice(sim_endpoint *ep)
{
    uint64_t d = sim__arg(ep, 0);
    uint64_t driver, next, cur, link;

    if (ep->stopped)
        return;
    if (sim__read(ep, d + 8, &driver, 8) < 0 || sim__read(ep, d + 16, &next, 8) < 0)
        return;
    /* Unlink it from its driver's device list. */
    if (driver) {
        link = driver + 8;
        for (int guard = 0; guard < 1024; guard++) {
            if (sim__read(ep, link, &cur, 8) < 0)
                return;
            if (cur == 0)
                break;
            if (cur == d) {
                if (sim__write(ep, link, &next, 8) < 0)
                    return;
                break;
            }
            link = cur + 16;
        }
    }
    sim__pool_free(ep, d, DEVICE_TAG, false);
}

void sim__api_IoCompleteRequest(sim_endpoint *ep)
{
    /* IRPs fleetsim sends have no completion routines to run. */
    (void)ep;
}

void sim__api_IofCompleteRequest(sim_endpoint *ep)
{
    (void)ep;
}
