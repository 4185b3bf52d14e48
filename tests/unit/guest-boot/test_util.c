#include <elf.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmini/layout.h"
#include "test_util.h"

void test_vm_init(struct test_vm *vm, size_t size)
{
	memset(vm, 0, sizeof(*vm));
	vm->mem = calloc(1, size);
	ck_assert_ptr_nonnull(vm->mem);
	vm->size = size;
	ck_assert_int_eq(gm_add_region(&vm->gm, 0, size, vm->mem), 0);
}

void test_vm_free(struct test_vm *vm)
{
	free(vm->mem);
	memset(vm, 0, sizeof(*vm));
}

char *test_tmpdir(void)
{
	char *dir = strdup("/tmp/kvmini-boot-test-XXXXXX");

	ck_assert_ptr_nonnull(dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void test_tmpdir_remove(char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

char *test_path(const char *dir, const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

void test_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

void test_write_sparse(const char *path, uint64_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	close(fd);
}

void test_put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

void test_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

void test_put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

uint16_t test_get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

uint32_t test_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t test_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* ELF layout: header, two program headers, note at 0x100, segment. */
#define NOTE_OFF 0x100

static size_t put_note(uint8_t *p, bool is32, uint64_t entry)
{
	uint32_t descsz = is32 ? 4 : 8;

	test_put32(p, 4);        /* namesz */
	test_put32(p + 4, descsz);
	test_put32(p + 8, 18);   /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(p + 12, "Xen", 4);
	if (is32)
		test_put32(p + 16, (uint32_t)entry);
	else
		test_put64(p + 16, entry);
	return 16 + descsz;
}

static void make_elf64(uint8_t *img, const struct test_elf_opts *o, uint64_t paddr,
		       uint64_t filesz, uint64_t memsz, uint64_t entry, uint64_t off,
		       size_t note_len)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*eh));

	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_machine = EM_X86_64;
	eh->e_type = o->type ? o->type : ET_EXEC;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 2;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = off,
			      .p_vaddr = paddr, .p_paddr = paddr, .p_filesz = filesz,
			      .p_memsz = memsz, .p_align = 0x1000 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = NOTE_OFF,
			      .p_filesz = note_len, .p_memsz = note_len, .p_align = 4 };
}

static void make_elf32(uint8_t *img, const struct test_elf_opts *o, uint64_t paddr,
		       uint64_t filesz, uint64_t memsz, uint64_t entry, uint64_t off,
		       size_t note_len)
{
	Elf32_Ehdr *eh = (Elf32_Ehdr *)img;
	Elf32_Phdr *ph = (Elf32_Phdr *)(img + sizeof(*eh));

	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_machine = EM_386;
	eh->e_type = o->type ? o->type : ET_EXEC;
	eh->e_version = EV_CURRENT;
	eh->e_entry = (uint32_t)entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 2;
	ph[0] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = (uint32_t)off,
			      .p_vaddr = (uint32_t)paddr, .p_paddr = (uint32_t)paddr,
			      .p_filesz = (uint32_t)filesz, .p_memsz = (uint32_t)memsz,
			      .p_align = 0x1000 };
	ph[1] = (Elf32_Phdr){ .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = NOTE_OFF,
			      .p_filesz = (uint32_t)note_len, .p_memsz = (uint32_t)note_len,
			      .p_align = 4 };
}

uint8_t *test_make_elf(const struct test_elf_opts *o, size_t *len)
{
	uint64_t paddr = o->paddr ? o->paddr : 16 * MiB;
	uint64_t filesz = o->filesz ? o->filesz : 0x2000;
	uint64_t memsz = o->memsz ? o->memsz : filesz + 0x3000;
	uint64_t entry = o->entry ? o->entry : paddr + 0x100;
	uint64_t off = o->offset ? o->offset : TEST_ELF_SEG_OFF;
	/* The file holds exactly the default segment: a larger filesz or
	 * offset describes bytes past the end (a truncated file). */
	size_t size = TEST_ELF_SEG_OFF + (o->filesz && o->filesz < 0x2000 ? o->filesz : 0x2000);
	uint8_t *img = calloc(1, size);
	size_t note_len;

	ck_assert_ptr_nonnull(img);
	memcpy(img, ELFMAG, SELFMAG);
	img[EI_DATA] = ELFDATA2LSB;
	img[EI_VERSION] = EV_CURRENT;
	note_len = put_note(img + NOTE_OFF, o->elf32, entry);
	if (o->no_note)
		test_put32(img + NOTE_OFF + 8, 1); /* another Xen note type, not PVH */
	if (o->elf32)
		make_elf32(img, o, paddr, filesz, memsz, entry, off, note_len);
	else
		make_elf64(img, o, paddr, filesz, memsz, entry, off, note_len);
	for (size_t i = TEST_ELF_SEG_OFF; i < size; i++)
		img[i] = (uint8_t)(0x11 + i);
	*len = size;
	return img;
}

uint8_t *test_make_bzimage(const struct test_bz_opts *o, size_t *len)
{
	size_t pm_size = o->pm_size ? o->pm_size : 0x4000;
	uint32_t poff = o->payload_offset ? o->payload_offset : 0x200;
	size_t size = TEST_BZ_PM_OFFSET + pm_size;
	uint8_t *img = calloc(1, size);

	ck_assert_ptr_nonnull(img);
	ck_assert_uint_eq(pm_size % 16, 0);
	for (size_t i = TEST_BZ_PM_OFFSET; i < size; i++)
		img[i] = (uint8_t)(0x5a ^ i);
	img[0x1f1] = TEST_BZ_SETUP_SECTS;
	test_put32(img + 0x1f4, (uint32_t)(pm_size / 16)); /* syssize */
	test_put16(img + 0x1fe, 0xaa55);
	img[0x200] = 0xeb;                                  /* jmp short */
	img[0x201] = 0x6a;                                  /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	test_put16(img + 0x206, 0x020f);
	img[0x211] = 0x01;                                  /* LOADED_HIGH */
	test_put32(img + 0x22c, 0x7fffffff);                /* initrd_addr_max */
	test_put32(img + 0x230, 2 * MiB);                   /* kernel_alignment */
	img[0x234] = 1;                                     /* relocatable */
	test_put16(img + 0x236, 0x7f);                      /* xloadflags */
	test_put32(img + 0x238, 255);                       /* cmdline_size */
	test_put64(img + 0x258, 16 * MiB);                  /* pref_address */
	test_put32(img + 0x260, o->init_size ? o->init_size : 8 * MiB);
	if (o->payload) {
		ck_assert_uint_le(poff + o->payload_len, pm_size);
		memcpy(img + TEST_BZ_PM_OFFSET + poff, o->payload, o->payload_len);
		test_put32(img + 0x248, poff);
		test_put32(img + 0x24c, (uint32_t)o->payload_len);
	}
	*len = size;
	return img;
}

void test_boot_init(struct test_boot *b, const char *kernel_name, const uint8_t *img,
		    size_t len, size_t mem)
{
	memset(b, 0, sizeof(*b));
	b->dir = test_tmpdir();
	b->kernel = test_path(b->dir, kernel_name);
	b->initrd = test_path(b->dir, "initrd.img");
	b->cache = test_path(b->dir, "cache/nested/dir");
	if (img)
		test_write_file(b->kernel, img, len);
	test_vm_init(&b->vm, mem);
	b->cfg = (struct boot_cfg){ .kernel_path = b->kernel, .cmdline = "console=ttyS0",
				    .mode = BOOT_AUTO, .ncpus = 1 };
}

void test_boot_fini(struct test_boot *b)
{
	test_vm_free(&b->vm);
	free(b->kernel);
	free(b->initrd);
	free(b->cache);
	test_tmpdir_remove(b->dir);
}

int test_boot_load(struct test_boot *b)
{
	return boot_load(&b->vm.gm, &b->cfg, &b->entry, &b->err);
}

void test_assert_msg(const char *msg, ...)
{
	const char *want;
	va_list ap;

	va_start(ap, msg);
	while ((want = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strstr(msg, want) != NULL, "message \"%s\" lacks \"%s\"", msg, want);
	va_end(ap);
}
