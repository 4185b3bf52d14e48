/* The disk tests' fixture (disk_fixture.h). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk_fixture.h"

char dir[64], shm[64], path[128];

uint8_t base_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 4096 + 1);
}

void disk_setup(void)
{
	uint8_t buf[SIZE];
	int fd;

	/* The image where O_DIRECT works (not tmpfs), the overlays on tmpfs
	 * (no reflink there: the sparse overlay with its map). */
	static const char *const where[] = { "/var/tmp", "/tmp", "." };

	dir[0] = 0;
	for (unsigned i = 0; i < 3 && !dir[0]; i++) {
		snprintf(dir, sizeof(dir), "%s/kvmini-disk-XXXXXX", where[i]);
		if (!mkdtemp(dir)) {
			dir[0] = 0;
			continue;
		}
		snprintf(path, sizeof(path), "%s/probe", dir);
		fd = open(path, O_CREAT | O_RDWR | O_DIRECT, 0600);
		if (fd >= 0) {
			close(fd);
			unlink(path);
		} else {
			rmdir(dir);
			dir[0] = 0;
		}
	}
	ck_assert_msg(dir[0], "no directory with O_DIRECT among /var/tmp, /tmp and .");
	snprintf(shm, sizeof(shm), "/dev/shm/kvmini-disk-XXXXXX");
	if (!mkdtemp(shm))
		snprintf(shm, sizeof(shm), "%s", dir);
	setenv("TMPDIR", shm, 1);
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	for (unsigned i = 0; i < SIZE; i++)
		buf[i] = base_byte(i);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, SIZE), SIZE);
	close(fd);
}

void disk_teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, shm);
	ck_assert_int_eq(system(cmd), 0);
}

void *aligned(size_t len)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, 4096, len), 0);
	memset(p, 0, len);
	return p;
}

