/* Synthetic kernel module trees for the kmods and initramfs tests: tiny
 * ELF relocatable files whose .modinfo says what a real module's does
 * (depends=, softdep=, alias=, vermagic=), plain or compressed, and
 * depmod's index built over them when a test wants an indexed tree. */
#ifndef KVMINI_TEST_FAKE_KMODS_H
#define KVMINI_TEST_FAKE_KMODS_H

#include <stddef.h>
#include <stdint.h>

enum fake_ko_compress { FAKE_KO_PLAIN, FAKE_KO_XZ, FAKE_KO_ZSTD };

/* Writes @tree/@rel (e.g. "kernel/fs/aa.ko", ".xz"/".zst" appended for
 * compressed ones) with the NULL-terminated modinfo strings
 * ("depends=bb", ...). Returns the malloc'd plain ELF bytes (*len) for
 * comparisons. */
uint8_t *fake_ko_write(const char *tree, const char *rel, enum fake_ko_compress c, size_t *len, ...)
	__attribute__((sentinel));

/* The test tree: a tmpdir with lib/modules/9.9.9-test/; returns the
 * malloc'd path of that release folder; *base gets the tmpdir. */
char *fake_tree_new(char **base);
/* Runs depmod -b over it (fails the test when depmod is missing). */
void fake_tree_depmod(const char *base);

#define FAKE_RELEASE "9.9.9-test"

#endif
