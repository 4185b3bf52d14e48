/* i8042: the command sequences of Linux's i8042 probe and reboot paths. */
#include <check.h>
#include <errno.h>

#include "kvmini/i8042.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "fakes.h"

#define STR_OBF     0x01
#define STR_IBF     0x02
#define STR_CMD     0x08
#define STR_UNLOCK  0x10
#define STR_AUXDATA 0x20

static struct bus pio;
static struct i8042 *kbc;
static struct fake_stop stops;

static void setup(void)
{
	struct vm_stopper stop = fake_stopper(&stops);
	struct kv_err e = { 0 };

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(i8042_create(&pio, &stop, &kbc, &e), 0);
}

static void teardown(void)
{
	i8042_destroy(kbc);
	bus_destroy(&pio);
}

static uint8_t inb(uint16_t port)
{
	return pio_inb(&pio, port);
}

static void outb(uint16_t port, uint8_t v)
{
	pio_outb(&pio, port, v);
}

/* What Linux's i8042_command does: write the command, then parameter
 * bytes, then poll OBF for each result byte. */
static int command(uint8_t cmd, int param, uint8_t *result)
{
	outb(PORT_I8042_CMD, cmd);
	if (param >= 0) {
		ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_IBF, 0);
		outb(PORT_I8042_DATA, (uint8_t)param);
	}
	if (!result)
		return 0;
	if (!(inb(PORT_I8042_CMD) & STR_OBF))
		return -ETIMEDOUT;
	*result = inb(PORT_I8042_DATA);
	return 0;
}

START_TEST(idle_status)
{
	uint8_t st = inb(PORT_I8042_CMD);

	ck_assert_uint_eq(st & (STR_OBF | STR_IBF), 0); /* i8042_flush finds nothing */
	ck_assert_uint_eq(st & STR_UNLOCK, STR_UNLOCK); /* no "Keylock active" */
}
END_TEST

START_TEST(self_test)
{
	uint8_t r = 0;

	ck_assert_int_eq(command(0xaa, -1, &r), 0);
	ck_assert_uint_eq(r, 0x55);
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_OBF, 0);
	ck_assert_int_eq(command(0xab, -1, &r), 0);
	ck_assert_uint_eq(r, 0x00);
	ck_assert_int_eq(command(0xa9, -1, &r), 0);
	ck_assert_uint_eq(r, 0x00);
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_CMD, STR_CMD);
}
END_TEST

START_TEST(ctr_read_write)
{
	uint8_t ctr = 0, r = 0;

	/* i8042_controller_init reads the CTR until two reads agree. */
	ck_assert_int_eq(command(0x20, -1, &ctr), 0);
	ck_assert_int_eq(command(0x20, -1, &r), 0);
	ck_assert_uint_eq(ctr, r);
	ck_assert_uint_eq(ctr & 0x04, 0x04); /* system flag, as after POST */
	ck_assert_int_eq(command(0x60, 0x47, NULL), 0);
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_OBF, 0);
	ck_assert_int_eq(command(0x20, -1, &r), 0);
	ck_assert_uint_eq(r, 0x47);
	/* Enable/disable commands flip the interface bits. */
	command(0xad, -1, NULL);
	command(0xa7, -1, NULL);
	command(0x20, -1, &r);
	ck_assert_uint_eq(r & 0x30, 0x30);
	command(0xae, -1, NULL);
	command(0xa8, -1, NULL);
	command(0x20, -1, &r);
	ck_assert_uint_eq(r & 0x30, 0x00);
	/* Other internal RAM bytes round-trip too. */
	command(0x65, 0x99, NULL);
	command(0x25, -1, &r);
	ck_assert_uint_eq(r, 0x99);
}
END_TEST

/* i8042_check_aux: the AUX loop echoes, and i8042_toggle_aux's CTR
 * write/read-back test passes. */
START_TEST(aux_loop_and_toggle)
{
	uint8_t r = 0, ctr = 0;

	ck_assert_int_eq(command(0xd3, 0x5a, NULL), 0);
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
	ck_assert_uint_eq(inb(PORT_I8042_DATA), 0x5a);
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_OBF, 0);
	command(0x20, -1, &ctr);
	command(0x60, ctr | 0x20, NULL);
	command(0x20, -1, &r);
	ck_assert_uint_eq(r & 0x20, 0x20);
	command(0x60, ctr & ~0x20, NULL);
	command(0x20, -1, &r);
	ck_assert_uint_eq(r & 0x20, 0x00);
	/* Keyboard output buffer write comes back without the AUX flag. */
	command(0xd2, 0xab, NULL);
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & (STR_OBF | STR_AUXDATA), STR_OBF);
	ck_assert_uint_eq(inb(PORT_I8042_DATA), 0xab);
}
END_TEST

START_TEST(bytes_for_missing_devices_vanish)
{
	outb(PORT_I8042_DATA, 0xf2);      /* keyboard GETID */
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_OBF, 0);
	ck_assert_int_eq(command(0xd4, 0xf2, NULL), 0); /* mouse GETID */
	ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_OBF, 0);
	ck_assert_int_eq(stops.resets, 0);
}
END_TEST

START_TEST(reset_requests_stop)
{
	/* Linux's BOOT_KBD: wait for IBF clear, write 0xfe, ten times. */
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_eq(inb(PORT_I8042_CMD) & STR_IBF, 0);
		outb(PORT_I8042_CMD, 0xfe);
	}
	ck_assert_int_eq(stops.resets, 10);
	ck_assert_int_eq(stops.poweroffs, 0);
}
END_TEST

START_TEST(pulse_commands)
{
	for (unsigned cmd = 0xf0; cmd <= 0xff; cmd++) {
		int before = stops.resets;

		outb(PORT_I8042_CMD, (uint8_t)cmd);
		ck_assert_int_eq(stops.resets - before, (cmd & 1) ? 0 : 1);
	}
	/* Writing the output port with bit 0 clear also pulls reset. */
	command(0xd1, 0x03, NULL);
	ck_assert_int_eq(stops.resets, 8);
	command(0xd1, 0x02, NULL);
	ck_assert_int_eq(stops.resets, 9);
	uint8_t r = 0;
	command(0xd0, -1, &r);
	ck_assert_uint_eq(r, 0x02);
}
END_TEST

START_TEST(no_stopper_is_fine)
{
	struct bus b;
	struct i8042 *k;
	uint8_t v = 0xfe;

	bus_init(&b, BUS_PIO);
	ck_assert_int_eq(i8042_create(&b, NULL, &k, NULL), 0);
	ck_assert_int_eq(bus_dispatch(&b, PORT_I8042_CMD, &v, 1, true), 0);
	i8042_destroy(k);
	bus_destroy(&b);
}
END_TEST

START_TEST(port_0x61_not_registered)
{
	uint8_t v;

	/* KVM's in-kernel PIT owns it (KVM_PIT_SPEAKER_DUMMY). */
	ck_assert_int_eq(bus_dispatch(&pio, 0x61, &v, 1, false), -ENOENT);
}
END_TEST

START_TEST(hostile_every_command_and_size)
{
	static const unsigned sizes[] = { 2, 4, 8 };
	uint64_t v = ~0ULL;
	uint8_t r = 0;

	for (unsigned cmd = 0; cmd < 256; cmd++) {
		for (unsigned d = 0; d < 256; d += 17) {
			outb(PORT_I8042_CMD, (uint8_t)cmd);
			outb(PORT_I8042_DATA, (uint8_t)d);
			inb(PORT_I8042_DATA);
			inb(PORT_I8042_CMD);
		}
	}
	/* Wider accesses run into ports that are not ours: unclaimed. */
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(bus_dispatch(&pio, PORT_I8042_DATA, &v, sizes[i], true), -ENOENT);
		ck_assert_int_eq(bus_dispatch(&pio, PORT_I8042_CMD, &v, sizes[i], false), -ENOENT);
	}
	/* The controller still answers. */
	while (inb(PORT_I8042_CMD) & STR_OBF)
		inb(PORT_I8042_DATA);
	ck_assert_int_eq(command(0xaa, -1, &r), 0);
	ck_assert_uint_eq(r, 0x55);
}
END_TEST

static Suite *i8042_suite(void)
{
	Suite *s = suite_create("i8042");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, idle_status);
	tcase_add_test(tc, self_test);
	tcase_add_test(tc, ctr_read_write);
	tcase_add_test(tc, aux_loop_and_toggle);
	tcase_add_test(tc, bytes_for_missing_devices_vanish);
	tcase_add_test(tc, reset_requests_stop);
	tcase_add_test(tc, pulse_commands);
	tcase_add_test(tc, no_stopper_is_fine);
	tcase_add_test(tc, port_0x61_not_registered);
	tcase_add_test(tc, hostile_every_command_and_size);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(i8042_suite());
}
