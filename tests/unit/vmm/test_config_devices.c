/* --disk, --net, --share, --console parsing and the device limits. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/config.h"
#include "kvmini/config_devices.h"
#include "kvmini/layout.h"
#include "../check_main.h"

static struct config_devices dev;
static struct kv_err err;

static void setup(void)
{
	memset(&dev, 0, sizeof(dev));
	memset(&err, 0, sizeof(err));
}

START_TEST(disk_options)
{
	ck_assert_int_eq(config_add_disk(&dev, "/img/a.raw", &err), 0);
	ck_assert_int_eq(config_add_disk(&dev, "b.img,ro", &err), 0);
	ck_assert_int_eq(config_add_disk(&dev, "c.img,snapshot,transport=mmio", &err), 0);
	ck_assert_uint_eq(dev.nr_disks, 3);
	ck_assert_str_eq(dev.disks[0].blk.path, "/img/a.raw");
	ck_assert(!dev.disks[0].blk.readonly && !dev.disks[0].blk.snapshot);
	ck_assert_int_eq(dev.disks[0].transport, VIRTIO_TRANSPORT_PCI);
	ck_assert_str_eq(dev.disks[1].blk.path, "b.img");
	ck_assert(dev.disks[1].blk.readonly);
	ck_assert_str_eq(dev.disks[2].blk.path, "c.img");
	ck_assert(dev.disks[2].blk.snapshot);
	ck_assert_int_eq(dev.disks[2].transport, VIRTIO_TRANSPORT_MMIO);
	ck_assert_uint_eq(dev.disks[2].blk.index, 2);
	ck_assert_uint_eq(config_nr_mmio(&dev), 1);
}
END_TEST

static const char *const bad_disks[][2] = {
	{ "", "expected PATH" },
	{ ",ro", "expected PATH" },
	{ "a.img,rw", "unknown option 'rw'" },
	{ "a.img,transport=usb", "transport 'usb'" },
	{ "a.img,ro,snapshot", "exclude each other" },
};

START_TEST(disk_errors)
{
	ck_assert_int_lt(config_add_disk(&dev, bad_disks[_i][0], &err), 0);
	ck_assert_msg(strstr(err.msg, bad_disks[_i][1]), "'%s' gave '%s'", bad_disks[_i][0], err.msg);
	ck_assert_uint_eq(dev.nr_disks, 0);
}
END_TEST

START_TEST(too_many_disks)
{
	for (int i = 0; i < CONFIG_MAX_DISKS; i++)
		ck_assert_int_eq(config_add_disk(&dev, "x.img", &err), 0);
	ck_assert_int_eq(config_add_disk(&dev, "x.img", &err), -E2BIG);
}
END_TEST

START_TEST(net_options)
{
	ck_assert_int_eq(config_add_net(&dev, "tap=tap0", &err), 0);
	ck_assert_int_eq(config_add_net(&dev, "mac=02:00:00:aa:bb:cc,tap=kv1,transport=mmio", &err), 0);
	ck_assert_str_eq(dev.nets[0].tap, "tap0");
	ck_assert_int_eq(dev.nets[0].kind, NET_TAP);
	ck_assert(!dev.nets[0].net.mac_set);
	ck_assert_str_eq(dev.nets[1].tap, "kv1");
	ck_assert(dev.nets[1].net.mac_set);
	ck_assert_mem_eq(dev.nets[1].net.mac, "\x02\x00\x00\xaa\xbb\xcc", 6);
	ck_assert_int_eq(dev.nets[1].transport, VIRTIO_TRANSPORT_MMIO);
}
END_TEST

START_TEST(net_user_options)
{
	const struct net_user_cfg *u;

	ck_assert_int_eq(config_add_net(&dev, "tap=tap0", &err), 0);
	ck_assert_msg(config_add_net(&dev, "user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-:53,"
				     "hostfwd=tcp:[::1]:8080-:80,passt=/opt/passt,transport=mmio", &err) == 0,
		      "%s", err.msg);
	ck_assert_int_eq(dev.nets[1].kind, NET_USER);
	ck_assert_int_eq(dev.nets[1].transport, VIRTIO_TRANSPORT_MMIO);
	/* QEMU's default MAC for the NIC's index, so the guest's init finds it */
	ck_assert(dev.nets[1].net.mac_set);
	ck_assert_mem_eq(dev.nets[1].net.mac, "\x52\x54\x00\x12\x34\x57", 6);
	u = &dev.nets[1].user;
	ck_assert_str_eq(u->passt, "/opt/passt");
	ck_assert_uint_eq(u->nr_fwd, 3);
	ck_assert(!u->fwd[0].udp);
	ck_assert_str_eq(u->fwd[0].host_addr, "127.0.0.1");
	ck_assert_uint_eq(u->fwd[0].host_port, 2222);
	ck_assert_uint_eq(u->fwd[0].guest_port, 22);
	ck_assert(u->fwd[1].udp);
	ck_assert_str_eq(u->fwd[1].host_addr, "");
	ck_assert_uint_eq(u->fwd[1].host_port, 5353);
	ck_assert_uint_eq(u->fwd[1].guest_port, 53);
	ck_assert_str_eq(u->fwd[2].host_addr, "::1");
	ck_assert_int_eq(config_add_net(&dev, "mac=02:00:00:00:00:07,user", &err), 0);
	ck_assert_mem_eq(dev.nets[2].net.mac, "\x02\x00\x00\x00\x00\x07", 6);
	ck_assert_ptr_null(dev.nets[2].user.passt);
	ck_assert_uint_eq(dev.nets[2].user.nr_fwd, 0);
}
END_TEST

static const char *const bad_nets[][2] = {
	{ "tap0", "user (passt, no root needed) or tap=NAME" },
	{ "mac=02:00:00:00:00:01", "or tap=NAME (the host side of the link) is required" },
	{ "user,tap=t", "one of user or tap=NAME, once" },
	{ "tap=t,hostfwd=tcp::1-:2", "unknown option 'hostfwd=tcp::1-:2'" },
	{ "user,hostfwd=tcp::2222-:0", "with ports 1-65535" },
	{ "user,hostfwd=tcp::70000-:22", "with ports 1-65535" },
	{ "user,hostfwd=sctp::1-:2", "expected tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT" },
	{ "user,hostfwd=tcp::22", "expected tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT" },
	{ "user,hostfwd=tcp::2222-10.0.2.15:22", "leave GUESTADDR out" },
	{ "user,hostfwd=tcp:localhost:2222-:22", "host address 'localhost'" },
	{ "user,hostfwd=tcp:[::1:2222-:22", "host address" },
	{ "user,passt=", "passt= needs the path" },
	{ "user,bogus", "unknown option 'bogus' (use hostfwd=" },
	{ "tap=", "not a valid interface name" },
	{ "tap=a-name-much-too-long", "not a valid interface name" },
	{ "tap=a/b", "not a valid interface name" },
	{ "tap=t,mac=01:00:00:00:00:01", "unicast" },
	{ "tap=t,mac=02:00:00:00:00", "six hex bytes" },
	{ "tap=t,mac=02:00:00:00:00:0g", "six hex bytes" },
};

START_TEST(net_errors)
{
	ck_assert_int_lt(config_add_net(&dev, bad_nets[_i][0], &err), 0);
	ck_assert_msg(strstr(err.msg, bad_nets[_i][1]), "'%s' gave '%s'", bad_nets[_i][0], err.msg);
	ck_assert_uint_eq(dev.nr_nets, 0);
}
END_TEST

START_TEST(share_options)
{
	ck_assert_int_eq(config_add_share(&dev, "./src/", &err), 0);
	ck_assert_int_eq(config_add_share(&dev, "/srv/data:d-1,ro,cache=never,transport=mmio", &err), 0);
	ck_assert_int_eq(config_add_share(&dev, "/a:b:out,cache=always", &err), 0);
	ck_assert_int_eq(config_add_share_dir(&dev, "/", "root", true, &err), 0);
	ck_assert_uint_eq(dev.nr_shares, 4);
	ck_assert_str_eq(dev.shares[0].fs.path, "./src/");
	ck_assert_str_eq(dev.shares[0].fs.tag, "src");
	ck_assert(!dev.shares[0].fs.readonly);
	ck_assert_int_eq(dev.shares[0].fs.cache, FUSE_CACHE_AUTO);
	ck_assert_str_eq(dev.shares[1].fs.path, "/srv/data");
	ck_assert_str_eq(dev.shares[1].fs.tag, "d-1");
	ck_assert(dev.shares[1].fs.readonly);
	ck_assert_int_eq(dev.shares[1].fs.cache, FUSE_CACHE_NEVER);
	ck_assert_int_eq(dev.shares[1].transport, VIRTIO_TRANSPORT_MMIO);
	/* The last ':' starts the tag. */
	ck_assert_str_eq(dev.shares[2].fs.path, "/a:b");
	ck_assert_str_eq(dev.shares[2].fs.tag, "out");
	ck_assert_int_eq(dev.shares[2].fs.cache, FUSE_CACHE_ALWAYS);
	ck_assert(dev.shares[3].fs.readonly);
	ck_assert_uint_eq(dev.shares[3].fs.index, 3);
	ck_assert_uint_eq(config_nr_mmio(&dev), 1);
}
END_TEST

static const char *const bad_shares[][2] = {
	{ "", "expected HOSTDIR" },
	{ ",ro", "expected HOSTDIR" },
	{ ":tag", "expected HOSTDIR" },
	{ "/", "no usable tag" },
	{ "/x/..", "no usable tag" },
	{ "/tmp:", "tag ''" },
	{ "/tmp:a/b", "tag 'a/b'" },
	{ "/tmp:.hidden", "tag '.hidden'" },
	{ "/tmp:0123456789012345678901234567890123456", "1 to 36" },
	{ "/tmp,rx", "unknown option 'rx'" },
	{ "/tmp,cache=sometimes", "use cache=auto" },
	{ "/tmp,transport=usb", "transport 'usb'" },
};

START_TEST(share_errors)
{
	ck_assert_int_eq(config_add_share(&dev, bad_shares[_i][0], &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, bad_shares[_i][1]), "'%s' -> '%s'", bad_shares[_i][0], err.msg);
	ck_assert_uint_eq(dev.nr_shares, 0);
}
END_TEST

START_TEST(share_tags_unique_and_bounded)
{
	char arg[64];

	ck_assert_int_eq(config_add_share(&dev, "/srv/a:t", &err), 0);
	ck_assert_int_eq(config_add_share(&dev, "/srv/b:t", &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "already /srv/a's"));
	for (unsigned i = 1; i < CONFIG_MAX_SHARES; i++) {
		snprintf(arg, sizeof(arg), "/srv/%u", i);
		ck_assert_int_eq(config_add_share(&dev, arg, &err), 0);
	}
	ck_assert_int_eq(config_add_share(&dev, "/srv/last", &err), -E2BIG);
	ck_assert_uint_eq(dev.nr_shares, CONFIG_MAX_SHARES);
}
END_TEST

START_TEST(console_kinds)
{
	ck_assert_int_eq(config_set_console(&dev, "virtio", &err), 0);
	ck_assert_int_eq(dev.console, CONSOLE_VIRTIO);
	ck_assert_int_eq(dev.console_transport, VIRTIO_TRANSPORT_PCI);
	ck_assert_int_eq(config_set_console(&dev, "virtio,transport=mmio", &err), 0);
	ck_assert_int_eq(dev.console_transport, VIRTIO_TRANSPORT_MMIO);
	ck_assert_uint_eq(config_nr_mmio(&dev), 1);
	ck_assert_int_eq(config_set_console(&dev, "serial", &err), 0);
	ck_assert_int_eq(dev.console, CONSOLE_SERIAL);
	ck_assert_int_lt(config_set_console(&dev, "hvc", &err), 0);
	ck_assert_int_lt(config_set_console(&dev, "virtio,mmio", &err), 0);
	ck_assert_int_lt(config_set_console(&dev, "virtio,transport=x", &err), 0);
}
END_TEST

START_TEST(slot_limits)
{
	for (int i = 0; i < CONFIG_MAX_DISKS; i++)
		ck_assert_int_eq(config_add_disk(&dev, "x.img", &err), 0);
	ck_assert_int_eq(config_check_devices(&dev, &err), 0); /* 8 PCI slots */
	ck_assert_int_eq(config_add_net(&dev, "tap=t0", &err), 0);
	ck_assert_int_eq(config_check_devices(&dev, &err), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "PCI slots"));
	dev.nets[0].transport = VIRTIO_TRANSPORT_MMIO;
	ck_assert_int_eq(config_check_devices(&dev, &err), 0);
}
END_TEST

/* Through the whole command line: options land in cfg.dev, the
 * console default follows --console (and the kernel parameter defaults
 * follow it). */
START_TEST(via_config_parse)
{
	char *argv[] = { "kvmini", "run", "--kernel", "k", "--disk", "a.img,ro", "--console", "virtio",
			 "--net", "tap=t0", NULL };
	struct kv_config cfg;
	char line[256];

	ck_assert_int_eq(config_parse(10, argv, &cfg, &err), 0);
	ck_assert_uint_eq(cfg.dev.nr_disks, 1);
	ck_assert_uint_eq(cfg.dev.nr_nets, 1);
	ck_assert_int_eq(config_build_cmdline(&cfg, line, sizeof(line)), 0);
	ck_assert_str_eq(line, "console=hvc0 pci=noearly iommu=noaperture");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_devices");
	TCase *tc = tcase_create("parse");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, disk_options);
	tcase_add_loop_test(tc, disk_errors, 0, sizeof(bad_disks) / sizeof(bad_disks[0]));
	tcase_add_test(tc, too_many_disks);
	tcase_add_test(tc, net_options);
	tcase_add_test(tc, net_user_options);
	tcase_add_loop_test(tc, net_errors, 0, sizeof(bad_nets) / sizeof(bad_nets[0]));
	tcase_add_test(tc, share_options);
	tcase_add_loop_test(tc, share_errors, 0, sizeof(bad_shares) / sizeof(bad_shares[0]));
	tcase_add_test(tc, share_tags_unique_and_bounded);
	tcase_add_test(tc, console_kinds);
	tcase_add_test(tc, slot_limits);
	tcase_add_test(tc, via_config_parse);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
