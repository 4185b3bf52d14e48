/* How a device raises an interrupt line without knowing about KVM: the
 * VM hands it an irq_sink (KVM_IRQ_LINE underneath), tests hand a fake. */
#ifndef KVMINI_IRQ_H
#define KVMINI_IRQ_H

struct irq_sink {
	int (*set_level)(void *ctx, unsigned gsi, int level);
	void *ctx;
};

static inline int irq_set(const struct irq_sink *s, unsigned gsi, int level)
{
	return s && s->set_level ? s->set_level(s->ctx, gsi, level) : 0;
}

#endif
