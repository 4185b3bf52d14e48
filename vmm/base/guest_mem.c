/* Guest RAM: the one place that turns guest-physical addresses into host
 * pointers. Every range is checked at both ends, with overflow checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/mman.h>

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

uint64_t gm_host_align(uint64_t ram_size)
{
	return ram_size >= GM_HUGE_1G ? GM_HUGE_1G : GM_HUGE_2M;
}

bool gm_region_congruent(const struct gm_region *r, uint64_t page)
{
	return (((uintptr_t)r->host ^ r->gpa) & (page - 1)) == 0;
}

/* Free 2 MiB hugetlbfs pages, from /proc/meminfo; -1 when unknown. */
static long free_huge_pages(void)
{
	char line[128];
	long n = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

static int huge_error(uint64_t ram_size, int err, struct kv_err *e)
{
	unsigned long long need = ram_size / GM_HUGE_2M;
	long have = free_huge_pages();

	if (err != ENOMEM)
		return kv_err_set(e, -err, "--memory %llu MiB,hugetlb: cannot map 2 MiB huge pages: %s",
				  (unsigned long long)(ram_size / MiB), strerror(err));
	return kv_err_set(e, -ENOMEM,
		"--memory %llu MiB,hugetlb: needs %llu free 2 MiB huge pages, the host has %ld "
		"(HugePages_Free in /proc/meminfo): reserve them as root with "
		"'echo %llu > /proc/sys/vm/nr_hugepages' (more if other programs use them), "
		"or drop ,hugetlb", (unsigned long long)(ram_size / MiB), need, have < 0 ? 0 : have,
		need);
}

/* Maps @size bytes on an @align boundary: reserves @size + @align of
 * address space, maps the aligned middle with the real flags over it and
 * gives back the rest. */
static void *map_aligned(uint64_t size, uint64_t align, int flags, int *err)
{
	uint8_t *res, *p, *want;
	uint64_t head;

	res = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (res == MAP_FAILED) {
		*err = errno;
		return NULL;
	}
	want = (uint8_t *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	p = mmap(want, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED) {
		*err = errno;
		munmap(res, size + align);
		return NULL;
	}
	head = (uint64_t)(want - res);
	if (head)
		munmap(res, head);
	if (align - head)
		munmap(want + size, align - head);
	return p;
}

/* Allocates every page now (--memory SIZE,prefault), with huge pages
 * where the mapping has them. */
static void prefault(uint8_t *p, uint64_t size)
{
#ifdef MADV_POPULATE_WRITE
	if (madvise(p, size, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	/* Older kernels: touch one byte per page (writing a zero keeps the
	 * memory as the guest expects it). */
	for (uint64_t off = 0; off < size; off += 4096)
		((volatile uint8_t *)p)[off] = 0;
}

int gm_create(struct guest_mem *gm, uint64_t ram_size, const struct gm_opts *opts,
	      struct kv_err *e)
{
	const uint64_t hole = LAYOUT_MMIO_HOLE_START;
	static const struct gm_opts defaults;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	uint8_t *p;
	int r, err = 0;

	if (!opts)
		opts = &defaults;
	memset(gm, 0, sizeof(*gm));
	if (ram_size < 16 * MiB)
		return kv_err_set(e, -EINVAL, "guest memory %llu MiB is too small (at least 16 MiB)",
				  (unsigned long long)(ram_size / MiB));
	if (ram_size > (uint64_t)SIZE_MAX / 2)
		return kv_err_set(e, -EINVAL, "guest memory size does not fit this host");
	if (opts->hugetlb) {
		if (ram_size % GM_HUGE_2M)
			return kv_err_set(e, -EINVAL, "--memory %llu KiB,hugetlb: not a multiple of "
					  "2 MiB, the huge page size",
					  (unsigned long long)(ram_size >> 10));
		/* No MAP_NORESERVE: the pages are reserved now, so too few of
		 * them fails here rather than as a SIGBUS in the middle of a run. */
		flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB;
	}
	p = map_aligned(ram_size, gm_host_align(ram_size), flags, &err);
	if (!p && opts->hugetlb)
		return huge_error(ram_size, err, e);
	if (!p)
		return kv_err_set(e, -err, "cannot map %llu MiB of guest memory: %s",
				  (unsigned long long)(ram_size / MiB), strerror(err));
	/* Transparent huge pages: the host mapping is aligned, so every
	 * 2 MiB of guest RAM can be one host page and one nested page-table
	 * entry. A hint, not a must (THP may be off on this host). */
	if (!opts->hugetlb)
		madvise(p, ram_size, MADV_HUGEPAGE);
	if (opts->prefault)
		prefault(p, ram_size);
	gm->mapping = p;
	gm->mapping_len = ram_size;
	gm->hugetlb = opts->hugetlb;

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

uint64_t gm_resident_bytes(const struct guest_mem *gm)
{
	const size_t page = 4096, chunk = 4096; /* pages per mincore call */
	unsigned char vec[4096];
	uint64_t resident = 0;
	uint8_t *p = gm->mapping;

	if (!p)
		return 0;
	for (size_t off = 0; off < gm->mapping_len; off += chunk * page) {
		size_t len = gm->mapping_len - off < chunk * page ? gm->mapping_len - off : chunk * page;
		size_t n = (len + page - 1) / page;

		if (mincore(p + off, len, vec) < 0)
			return 0;
		for (size_t i = 0; i < n; i++)
			resident += vec[i] & 1;
	}
	return resident * page;
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
