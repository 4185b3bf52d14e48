/* boot_load: reads the kernel and picks the boot path (bzImage's 64-bit
 * protocol, or PVH) by content and --boot mode. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "kvmini/boot.h"
#include "kvmini/log.h"
#include "acpi.h"
#include "boot_file.h"
#include "bzimage.h"
#include "elf_pvh.h"
#include "unpack_xz.h"

/* --boot pvh with a bzImage: unpack its vmlinux in the host, then boot
 * that through PVH, keeping the bzImage's command-line limit. */
static int load_unpacked(const struct guest_mem *gm, const struct boot_cfg *cfg,
			 struct boot_file *k, struct boot_entry *entry, struct kv_err *e)
{
	struct boot_file vmlinux;
	struct bz_info bz;
	char what[PATH_MAX + 32];
	int r;

	r = bz_parse(k, &bz, e);
	if (r)
		return r;
	r = boot_unpack_bzimage(k, &bz, cfg->cache_dir, &vmlinux, e);
	if (r)
		return r;
	snprintf(what, sizeof(what), "%s (unpacked vmlinux)", k->path);
	r = pvh_load(gm, cfg, &vmlinux, what, bz.cmdline_size, entry, e);
	boot_file_free(&vmlinux);
	return r;
}

static int load_by_mode(const struct guest_mem *gm, const struct boot_cfg *cfg,
			struct boot_file *k, struct boot_entry *entry, struct kv_err *e)
{
	bool is_elf = pvh_looks_like(k);
	bool is_bz = !is_elf && bz_looks_like(k);

	if (!is_elf && !is_bz)
		return kv_err_set(e, -EINVAL,
				  "%s: is neither a bzImage (no \"HdrS\" setup header) nor an ELF "
				  "vmlinux (no ELF magic)", k->path);
	switch (cfg->mode) {
	case BOOT_AUTO:
		return is_elf ? pvh_load(gm, cfg, k, k->path, 0, entry, e)
			      : bz_load(gm, cfg, k, entry, e);
	case BOOT_BZIMAGE:
		if (is_elf)
			return kv_err_set(e, -EINVAL, "%s: is an ELF vmlinux, not a bzImage: "
					  "boot it with --boot pvh or --boot auto", k->path);
		return bz_load(gm, cfg, k, entry, e);
	case BOOT_PVH:
		return is_elf ? pvh_load(gm, cfg, k, k->path, 0, entry, e)
			      : load_unpacked(gm, cfg, k, entry, e);
	}
	return kv_err_set(e, -EINVAL, "unknown boot mode %d", (int)cfg->mode);
}

int boot_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	      struct boot_entry *entry, struct kv_err *e)
{
	struct boot_file k;
	int r;

	/* ACPI first: a bad CPU count fails before any file is read. */
	r = acpi_write_tables(gm, cfg->ncpus, cfg->nr_virtio_mmio, e);
	if (r)
		return r;
	LOG_DEBUG("%.3f s: ACPI tables written", log_uptime());
	r = boot_file_open(cfg->kernel_path, &k, e);
	if (r)
		return r;
	r = load_by_mode(gm, cfg, &k, entry, e);
	LOG_DEBUG("%.3f s: kernel and initrd in guest RAM (%llu bytes of the kernel file read)",
		  log_uptime(), (unsigned long long)k.bytes_read);
	boot_file_free(&k);
	if (r)
		return r;
	r = boot_write_x86_tables(gm, entry->kind);
	if (r)
		return kv_err_set(e, r, "guest memory does not cover the boot GDT and page tables");
	return 0;
}
