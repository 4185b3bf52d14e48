/* newc cpio writer (see include/kvmini/cpio.h). The format: a 110-byte
 * ASCII header "070701" + 13 eight-digit hex fields, the NUL-terminated
 * name padded so the data starts 4-aligned, the data padded to 4. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kvmini/cpio.h"

#define CPIO_HDR_LEN 110
#define CPIO_TRAILER "TRAILER!!!"
#define CPIO_MAX_FIELD 0xffffffffULL

static size_t pad4(size_t x)
{
	return (x + 3) & ~(size_t)3;
}

size_t cpio_entry_size(const char *name, size_t data_len)
{
	return pad4(CPIO_HDR_LEN + strlen(name) + 1) + pad4(data_len);
}

size_t cpio_trailer_size(void)
{
	return cpio_entry_size(CPIO_TRAILER, 0);
}

void cpio_init(struct cpio_writer *w, void *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->next_ino = 1;
}

static int add_entry(struct cpio_writer *w, const char *name, unsigned mode,
		     const void *data, size_t len)
{
	size_t namesize, need, at;
	char hdr[CPIO_HDR_LEN + 1];

	if (w->err)
		return w->err;
	namesize = strlen(name) + 1;
	if (namesize > CPIO_MAX_FIELD || len > CPIO_MAX_FIELD)
		return w->err = -EINVAL;
	need = cpio_entry_size(name, len);
	if (need > w->cap - w->len)
		return w->err = -ENOSPC;
	/* ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
	 * rdevmajor, rdevminor, namesize, check. Owner root, mtime 0. */
	snprintf(hdr, sizeof(hdr),
		 "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 w->next_ino++, mode, 0u, 0u, S_ISDIR(mode) ? 2u : 1u, 0u, (unsigned)len,
		 0u, 0u, 0u, 0u, (unsigned)namesize, 0u);
	at = w->len;
	memset(w->buf + at, 0, need);
	memcpy(w->buf + at, hdr, CPIO_HDR_LEN);
	memcpy(w->buf + at + CPIO_HDR_LEN, name, namesize);
	at += pad4(CPIO_HDR_LEN + namesize);
	if (len)
		memcpy(w->buf + at, data, len);
	w->len += need;
	return 0;
}

static int check_name(struct cpio_writer *w, const char *name, unsigned mode)
{
	if (w->err)
		return w->err;
	if (!name || !*name || name[0] == '/' || (mode & ~07777u))
		return w->err = -EINVAL;
	return 0;
}

int cpio_add_dir(struct cpio_writer *w, const char *name, unsigned mode)
{
	int r = check_name(w, name, mode);

	return r ? r : add_entry(w, name, S_IFDIR | mode, NULL, 0);
}

int cpio_add_file(struct cpio_writer *w, const char *name, unsigned mode,
		  const void *data, size_t len)
{
	int r = check_name(w, name, mode);

	if (!r && len && !data)
		r = w->err = -EINVAL;
	return r ? r : add_entry(w, name, S_IFREG | mode, data, len);
}

int cpio_finish(struct cpio_writer *w)
{
	return add_entry(w, CPIO_TRAILER, 0, NULL, 0);
}
