/* Guest RAM: the one place that turns guest-physical addresses into host
 * pointers. Every range is checked at both ends, with overflow checks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvmini/guest_mem.h"
#include "kvmini/layout.h"

int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host)
{
	uint64_t end;

	if (gm->nr_regions >= GM_MAX_REGIONS || size == 0 || !host)
		return -EINVAL;
	if (__builtin_add_overflow(gpa, size, &end))
		return -EINVAL;
	gm->regions[gm->nr_regions++] = (struct gm_region){ gpa, size, host };
	gm->ram_size += size;
	return 0;
}

int gm_create(struct guest_mem *gm, uint64_t ram_size, struct kv_err *e)
{
	const uint64_t hole = LAYOUT_MMIO_HOLE_START;
	uint8_t *p;
	int r;

	memset(gm, 0, sizeof(*gm));
	if (ram_size < 16 * MiB)
		return kv_err_set(e, -EINVAL, "guest memory %llu MiB is too small (at least 16 MiB)",
				  (unsigned long long)(ram_size / MiB));
	if (ram_size > (uint64_t)SIZE_MAX)
		return kv_err_set(e, -EINVAL, "guest memory size does not fit this host");
	p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return kv_err_set(e, -errno, "cannot map %llu MiB of guest memory: %s",
				  (unsigned long long)(ram_size / MiB), strerror(errno));
	/* Transparent huge pages shorten EPT/NPT walks; a hint, not a must. */
	madvise(p, ram_size, MADV_HUGEPAGE);
	gm->mapping = p;
	gm->mapping_len = ram_size;

	if (ram_size <= hole) {
		r = gm_add_region(gm, 0, ram_size, p);
	} else {
		r = gm_add_region(gm, 0, hole, p);
		if (!r)
			r = gm_add_region(gm, LAYOUT_MMIO_HOLE_END, ram_size - hole, p + hole);
	}
	if (r) {
		gm_destroy(gm);
		return kv_err_set(e, r, "cannot lay out guest memory");
	}
	return 0;
}

void gm_destroy(struct guest_mem *gm)
{
	if (gm->mapping)
		munmap(gm->mapping, gm->mapping_len);
	memset(gm, 0, sizeof(*gm));
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size &&
		    end - r->gpa <= r->size)
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
{
	const void *src = gm_ptr(gm, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
	void *dst = gm_ptr(gm, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gm_map_file(const struct guest_mem *gm, uint64_t gpa, int fd, uint64_t offset,
		uint64_t len)
{
	const uint64_t page = 4096;
	uint8_t *dst;

	if (!gm->mapping)
		return -ENOTSUP;
	if (len == 0)
		return 0;
	if ((gpa | offset | len) & (page - 1))
		return -EINVAL;
	dst = gm_ptr(gm, gpa, len);
	if (!dst || dst < (uint8_t *)gm->mapping ||
	    dst + len > (uint8_t *)gm->mapping + gm->mapping_len)
		return -EINVAL;
	if (mmap(dst, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, (off_t)offset) ==
	    MAP_FAILED) {
		int err = errno;

		/* A failed MAP_FIXED may have unmapped the range: put fresh
		 * anonymous memory back so the caller can copy instead. */
		if (mmap(dst, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
			abort(); /* guest RAM has a hole we cannot fill: an internal invariant is gone */
		return -err;
	}
	return 0;
}

uint64_t gm_low_top(const struct guest_mem *gm)
{
	uint64_t top = 0;

	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];

		if (r->gpa < LAYOUT_MMIO_HOLE_END && r->gpa + r->size > top)
			top = r->gpa + r->size;
	}
	return top;
}
