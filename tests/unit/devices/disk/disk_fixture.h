/* The disk tests' fixture: a 64 KiB image with a known pattern in a
 * directory where O_DIRECT works (/var/tmp, /tmp or .), overlays on
 * tmpfs (/dev/shm) where there is one. */
#ifndef KVMINI_TEST_DISK_FIXTURE_H
#define KVMINI_TEST_DISK_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#define SIZE (64 * 1024)

extern char dir[64], shm[64], path[128];

void disk_setup(void);
void disk_teardown(void);
/* The image's byte @i as setup wrote it. */
uint8_t base_byte(uint64_t i);
/* @len zeroed bytes, 4 KiB-aligned (free with free()). */
void *aligned(size_t len);

#endif
