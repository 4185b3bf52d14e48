/* 16550A UART: what Linux's 8250 driver needs for a console and an
 * interactive tty. Transmission is instantaneous (THR is always empty
 * again by the time the guest looks), the RX FIFO is filled by the
 * terminal reader through serial8250_receive, and the interrupt line is
 * driven as a level through the irq_sink. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmini/serial8250.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"

enum { REG_RBR_THR, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

/* Register bits, named as in Linux's include/uapi/linux/serial_reg.h. */
enum {
	IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08,
	IIR_NO_INT = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04,
	IIR_RLSI = 0x06, IIR_CTI = 0x0c /* character timeout */, IIR_FIFO = 0xc0,
	FCR_ENABLE = 0x01, FCR_CLR_RX = 0x02, FCR_TRIG = 0xc0,
	LCR_DLAB = 0x80,
	MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08,
	MCR_LOOP = 0x10, MCR_MASK = 0x1f,
	LSR_DR = 0x01, LSR_OE = 0x02, LSR_ERRORS = 0x1e /* OE PE FE BI */,
	LSR_THRE = 0x20, LSR_TEMT = 0x40,
	MSR_TERI = 0x04, MSR_DELTAS = 0x0f,
	MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80,
};

/* Larger than a real 16550A's 16 bytes: the guest cannot tell (it reads
 * while LSR.DR is set) and pasted input arrives in fewer interrupts. */
#define RX_FIFO_SIZE 64

struct serial8250 {
	struct bus *pio;
	pthread_mutex_t lock;
	struct serial8250_cfg cfg;
	uint8_t rx[RX_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint8_t rbr;         /* last byte read: what RBR shows when empty */
	uint16_t divisor;
	uint8_t ier, fcr, lcr, mcr, lsr_err, msr, scr;
	bool thr_ipending;   /* THRE interrupt armed and not yet acknowledged */
	bool rx_open;        /* a driver has opened the receiver: see note_access */
	int irq_level;       /* what we last told the irq_sink */
	bool first_byte_seen;
	bool out_failed;     /* host write error already logged */
	struct log_ratelimit rl;
};

static unsigned rx_capacity(const struct serial8250 *s)
{
	/* With the FIFO off the 16550A behaves as a 16450: one holding byte. */
	return (s->fcr & FCR_ENABLE) ? RX_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct serial8250 *s)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };

	return (s->fcr & FCR_ENABLE) ? levels[s->fcr >> 6] : 1;
}

static bool rx_push(struct serial8250 *s, uint8_t byte)
{
	if (s->rx_count >= rx_capacity(s))
		return false;
	s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

/* The highest-priority pending interrupt, as IIR bits 0-3. Received data
 * below the trigger level is reported as a character timeout at once:
 * real hardware would do so after four character times, and Linux
 * handles both identically. */
static uint8_t iir_id(const struct serial8250 *s)
{
	if ((s->ier & IER_RLSI) && (s->lsr_err & LSR_ERRORS))
		return IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_count)
		return (s->fcr & FCR_ENABLE) && s->rx_count < rx_trigger(s) ? IIR_CTI : IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

/* On a PC, OUT2 gates the UART's interrupt output onto the ISA line;
 * Linux sets it when it wants interrupts. Only changes are passed on, so
 * the sink sees clean edges. Called with the lock held, which keeps the
 * level changes of concurrent callers in order. */
static void update_irq(struct serial8250 *s)
{
	int level = iir_id(s) != IIR_NO_INT && (s->mcr & MCR_OUT2);

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_set(s->cfg.irq, s->cfg.gsi, level);
	}
}

/* MSR status bits: in loopback the MCR outputs feed the modem inputs
 * (DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD), which Linux's autoconfig
 * checks; otherwise a null-modem cable with the far end ready. */
static void update_msr(struct serial8250 *s)
{
	uint8_t lines, changed;

	if (s->mcr & MCR_LOOP)
		lines = ((s->mcr & MCR_DTR) ? MSR_DSR : 0) | ((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
			((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
	else
		lines = MSR_DCD | MSR_DSR | MSR_CTS;
	changed = (uint8_t)(lines ^ (s->msr & 0xf0));
	s->msr = (uint8_t)(lines | (s->msr & MSR_DELTAS) |
			   ((changed & (MSR_CTS | MSR_DSR | MSR_DCD)) >> 4));
	if ((changed & MSR_RI) && !(lines & MSR_RI)) /* trailing edge only */
		s->msr |= MSR_TERI;
}

static void output_byte(struct serial8250 *s, uint8_t byte)
{
	ssize_t n;

	if (s->cfg.out_fd < 0)
		return;
	do
		n = write(s->cfg.out_fd, &byte, 1);
	while (n < 0 && errno == EINTR);
	/* A full non-blocking terminal drops output rather than stalling the
	 * vCPU; a broken one is reported once and then ignored. */
	if (n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
		return;
	if (!s->out_failed) {
		s->out_failed = true;
		LOG_WARN("serial8250 at 0x%x: writing output failed (%s); dropping output",
			 s->cfg.base, n < 0 ? strerror(errno) : "short write");
	}
}

/* Returns true when this was the first byte that left the UART. */
static bool write_thr(struct serial8250 *s, uint8_t byte)
{
	bool first = false;

	/* THR fills: the THRE interrupt is acknowledged (line may drop)... */
	s->thr_ipending = false;
	update_irq(s);
	if (s->mcr & MCR_LOOP) {
		if (!rx_push(s, byte))
			s->lsr_err |= LSR_OE;
	} else {
		output_byte(s, byte);
		first = !s->first_byte_seen;
		s->first_byte_seen = true;
	}
	/* ...and empties at once, re-arming it: the low-high transition gives
	 * an edge-triggered IOAPIC pin one interrupt per byte written. */
	s->thr_ipending = true;
	update_irq(s);
	return first;
}

static uint8_t read_reg(struct serial8250 *s, unsigned reg)
{
	uint8_t v;

	if ((s->lcr & LCR_DLAB) && reg <= REG_IER) /* divisor latch, low then high */
		return (uint8_t)(s->divisor >> (8 * reg));
	switch (reg) {
	case REG_RBR_THR:
		if (s->rx_count) {
			s->rbr = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
			s->rx_count--;
			update_irq(s);
		}
		return s->rbr;
	case REG_IER:
		return s->ier;
	case REG_IIR_FCR:
		v = iir_id(s);
		if (v == IIR_THRI) /* reading IIR acknowledges THRE */
			s->thr_ipending = false;
		update_irq(s);
		return (uint8_t)(v | ((s->fcr & FCR_ENABLE) ? IIR_FIFO : 0));
	case REG_LCR: return s->lcr;
	case REG_MCR: return s->mcr;
	case REG_LSR:
		v = (uint8_t)(s->lsr_err | LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0));
		s->lsr_err = 0; /* reading LSR clears the error bits */
		update_irq(s);
		return v;
	case REG_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTAS; /* and MSR the deltas */
		update_irq(s);
		return v;
	default: return s->scr;
	}
}

/* Returns true when the first output byte was written. */
static bool write_reg(struct serial8250 *s, unsigned reg, uint8_t v)
{
	uint8_t changed;

	if ((s->lcr & LCR_DLAB) && reg <= REG_IER) {
		s->divisor = reg ? (uint16_t)((s->divisor & 0x00ff) | v << 8)
				 : (uint16_t)((s->divisor & 0xff00) | v);
		return false;
	}
	switch (reg) {
	case REG_RBR_THR:
		return write_thr(s, v);
	case REG_IER:
		/* Bits 4-7 do not exist on a 16550A (Linux probes bit 6 for XScale). */
		changed = (uint8_t)((s->ier ^ v) & 0x0f);
		s->ier = v & 0x0f;
		/* Enabling THRI while THR is empty raises THRE again even if it
		 * was acknowledged before; Linux's startup test toggles IER to
		 * check exactly that. */
		if (changed & IER_THRI)
			s->thr_ipending = (s->ier & IER_THRI) != 0;
		update_irq(s);
		return false;
	case REG_IIR_FCR:
		/* Only the explicit clear bit empties the RX FIFO. The chip also
		 * clears it when the enable bit changes, but Linux enables the
		 * FIFO in set_termios right after turning on the RX interrupt,
		 * which would drop the first byte of input typed (or piped)
		 * ahead; its own clear (with FCR_CLR_RX) comes earlier, at open. */
		if (v & FCR_CLR_RX) {
			s->rx_count = 0;
			s->rx_open = false; /* a driver closing or reopening the port */
		}
		/* Keep enable and trigger only: IIR must not show bit 5 (64-byte
		 * FIFO), or Linux would take us for a 16750. */
		s->fcr = v & (FCR_ENABLE | FCR_TRIG);
		update_irq(s);
		return false;
	case REG_LCR: s->lcr = v; return false;
	case REG_MCR:
		s->mcr = v & MCR_MASK;
		update_msr(s);
		update_irq(s);
		return false;
	case REG_LSR:
	case REG_MSR:
		LOG_GUEST(&s->rl, "serial8250 at 0x%x: write 0x%02x to read-only %s ignored",
			  s->cfg.base, v, reg == REG_LSR ? "LSR" : "MSR");
		return false;
	default: s->scr = v; return false;
	}
}

/* Host input is held back until a driver has really opened the receiver,
 * because a byte handed over too early is thrown away by the driver
 * itself. Linux's probe (autoconfig) writes IER 0x0f between two reads of
 * IER and then clears the FIFO and reads RBR; startup clears the FIFO
 * again; only set_termios turns RX interrupts on for good, and goes on to
 * program LCR and the divisor. So the receiver counts as open once RDI is
 * enabled and the guest then touches any register other than IER; an
 * explicit RX FIFO clear (close, reopen) shuts it again. Turning RDI off
 * later (console writes, throttling) only pauses input. */
static void note_access(struct serial8250 *s, unsigned reg)
{
	bool ier = reg == REG_IER && !(s->lcr & LCR_DLAB);

	if (!ier && (s->ier & IER_RDI))
		s->rx_open = true;
}

/* A wider access to these byte registers is split into consecutive byte
 * accesses, as the ISA bus does; the bus never lets one run past the end. */
static void serial_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct serial8250 *s = opaque;
	uint8_t *p = data;

	assert(off + len <= PORT_COM_LEN);
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < len; i++) {
		note_access(s, (unsigned)off + i);
		p[i] = read_reg(s, (unsigned)off + i);
	}
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct serial8250 *s = opaque;
	const uint8_t *p = data;
	bool first = false;

	assert(off + len <= PORT_COM_LEN);
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < len; i++) {
		note_access(s, (unsigned)off + i);
		first |= write_reg(s, (unsigned)off + i, p[i]);
	}
	pthread_mutex_unlock(&s->lock);
	/* Outside the lock: the callback may take locks of its own. */
	if (first && s->cfg.on_first_byte)
		s->cfg.on_first_byte(s->cfg.ctx);
}

static const struct bus_ops serial_ops = { .read = serial_read, .write = serial_write };

int serial8250_create(struct bus *pio, const struct serial8250_cfg *cfg,
		      struct serial8250 **out, struct kv_err *e)
{
	struct serial8250 *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return kv_err_set(e, -ENOMEM, "serial8250: out of memory");
	ret = pthread_mutex_init(&s->lock, NULL);
	if (ret) {
		free(s);
		return kv_err_set(e, -ret, "serial8250: mutex: %s", strerror(ret));
	}
	s->cfg = *cfg;
	s->pio = pio;
	s->divisor = 12;          /* 9600 baud, as firmware leaves it */
	s->lcr = 0x03;            /* 8N1 */
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	ret = bus_register(pio, cfg->base, PORT_COM_LEN, &serial_ops, s, "serial8250", e);
	if (ret) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void serial8250_destroy(struct serial8250 *s)
{
	if (!s)
		return;
	bus_unregister_all(s->pio, s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t n)
{
	size_t done = 0;

	pthread_mutex_lock(&s->lock);
	/* In loopback the receiver is disconnected from the line: input waits
	 * in the terminal until the guest leaves loopback. */
	if (!(s->mcr & MCR_LOOP)) {
		while (done < n && rx_push(s, buf[done]))
			done++;
		if (done)
			update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return done;
}

size_t serial8250_rx_space(struct serial8250 *s)
{
	size_t space;

	pthread_mutex_lock(&s->lock);
	/* The FIFO may hold more than a non-FIFO UART's one byte: the guest
	 * turned the FIFO off with input queued (it drains as it reads). */
	space = (s->mcr & MCR_LOOP) || s->rx_count >= rx_capacity(s)
		? 0 : rx_capacity(s) - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return space;
}

bool serial8250_rx_ready(struct serial8250 *s)
{
	bool ready;

	pthread_mutex_lock(&s->lock);
	ready = s->rx_open && (s->ier & IER_RDI) && !(s->mcr & MCR_LOOP);
	pthread_mutex_unlock(&s->lock);
	return ready;
}
