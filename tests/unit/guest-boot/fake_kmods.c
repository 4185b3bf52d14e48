/* See fake_kmods.h. */
#include <check.h>
#include <elf.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "fake_kmods.h"
#include "test_util.h"

static uint8_t *make_elf(const char *modinfo, size_t mlen, size_t *len)
{
	static const char shstr[] = "\0.modinfo\0.shstrtab";
	size_t off_mi = sizeof(Elf64_Ehdr), off_str = off_mi + mlen;
	size_t off_sh = (off_str + sizeof(shstr) + 7) & ~(size_t)7;
	size_t total = off_sh + 3 * sizeof(Elf64_Shdr);
	uint8_t *buf = calloc(1, total);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Shdr *sh = (Elf64_Shdr *)(buf + off_sh);

	ck_assert_ptr_nonnull(buf);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_REL;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 3;
	eh->e_shstrndx = 2;
	eh->e_shoff = off_sh;
	memcpy(buf + off_mi, modinfo, mlen);
	memcpy(buf + off_str, shstr, sizeof(shstr));
	sh[1] = (Elf64_Shdr){ .sh_name = 1, .sh_type = SHT_PROGBITS, .sh_flags = SHF_ALLOC,
			      .sh_offset = off_mi, .sh_size = mlen, .sh_addralign = 1 };
	sh[2] = (Elf64_Shdr){ .sh_name = 10, .sh_type = SHT_STRTAB, .sh_offset = off_str,
			      .sh_size = sizeof(shstr), .sh_addralign = 1 };
	*len = total;
	return buf;
}

uint8_t *fake_ko_write(const char *tree, const char *rel, enum fake_ko_compress c, size_t *len, ...)
{
	char modinfo[2048], *path, *dir, cmd[4096];
	size_t mlen = 0, elf_len, out_len = 0;
	uint8_t *elf, *out;
	const char *s;
	va_list ap;

	va_start(ap, len);
	while ((s = va_arg(ap, const char *))) {
		ck_assert_uint_lt(mlen + strlen(s) + 1, sizeof(modinfo));
		memcpy(modinfo + mlen, s, strlen(s) + 1);
		mlen += strlen(s) + 1;
	}
	va_end(ap);
	elf = make_elf(modinfo, mlen, &elf_len);
	ck_assert_int_ne(asprintf(&path, "%s/%s%s", tree, rel,
				  c == FAKE_KO_XZ ? ".xz" : c == FAKE_KO_ZSTD ? ".zst" : ""), -1);
	dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(dir);
	out = malloc(elf_len * 2 + 1024);
	ck_assert_ptr_nonnull(out);
	if (c == FAKE_KO_XZ) {
		ck_assert_int_eq(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, elf, elf_len, out,
							 &out_len, elf_len * 2 + 1024), LZMA_OK);
	} else if (c == FAKE_KO_ZSTD) {
		out_len = ZSTD_compress(out, elf_len * 2 + 1024, elf, elf_len, 3);
		ck_assert(!ZSTD_isError(out_len));
	} else {
		memcpy(out, elf, elf_len);
		out_len = elf_len;
	}
	test_write_file(path, out, out_len);
	free(out);
	free(path);
	*len = elf_len;
	return elf;
}

char *fake_tree_new(char **base)
{
	char *tree, cmd[4096];

	*base = test_tmpdir();
	ck_assert_int_ne(asprintf(&tree, "%s/lib/modules/" FAKE_RELEASE, *base), -1);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/kernel'", tree);
	ck_assert_int_eq(system(cmd), 0);
	return tree;
}

void fake_tree_depmod(const char *base)
{
	char cmd[4096];

	if (system("PATH=$PATH:/sbin:/usr/sbin command -v depmod >/dev/null 2>&1") != 0)
		ck_abort_msg("depmod is not installed (tools/install-deps installs kmod)");
	snprintf(cmd, sizeof(cmd), "PATH=$PATH:/sbin:/usr/sbin depmod -b '%s' " FAKE_RELEASE " 2>/dev/null", base);
	ck_assert_int_eq(system(cmd), 0);
}
