#include "fw_model.h"

#include <math.h>

static void m_set_target(fw_driver_t *d, const int32_t *target)
{
    fw_model_t *m = (fw_model_t *)d;
    uint8_t k;
    for (k = 0; k < 6; k++)
        m->target[k] = target[k];
}

static void m_position(fw_driver_t *d, int32_t *pos)
{
    fw_model_t *m = (fw_model_t *)d;
    uint8_t k;
    for (k = 0; k < 6; k++) { /* to the nearest count, halves away from zero */
        int64_t v = m->pos_q8[k];
        uint64_t mag = (uint64_t)(v < 0 ? -v : v) + 128u;
        pos[k] = (int32_t)(v < 0 ? -(int64_t)(mag >> 8) : (int64_t)(mag >> 8));
    }
}

static void m_hold(fw_driver_t *d, int32_t *pos)
{
    m_position(d, pos);
    m_set_target(d, pos);
}

static void m_enable(fw_driver_t *d, uint8_t on) { ((fw_model_t *)d)->enabled = on; }

static void step_ms(fw_model_t *m)
{
    uint8_t k;
    for (k = 0; k < 6; k++) {
        /* unsigned magnitudes: shifts instead of a 64-bit division (large and slow on AVR),
         * and no right shift of a negative number (implementation-defined in C99) */
        int64_t err = ((int64_t)m->target[k] * 256) - m->pos_q8[k];
        uint64_t mag = (uint64_t)(err < 0 ? -err : err);
        uint64_t d = (mag * m->alpha_q16) >> 16;
        if (d == 0)
            d = mag; /* closer than one step resolves: arrive */
        m->pos_q8[k] += err < 0 ? -(int64_t)d : (int64_t)d;
    }
}

static void m_update(fw_driver_t *d, uint32_t now_ms)
{
    fw_model_t *m = (fw_model_t *)d;
    uint32_t dt = now_ms - m->last_ms;
    m->last_ms = now_ms;
    if (!m->enabled)
        return; /* drives cut: nothing moves */
    if (dt > 60000u)
        dt = 60000u; /* after a minute every axis has long arrived */
    while (dt--)
        step_ms(m);
}

static uint8_t m_faults(fw_driver_t *d) { return ((fw_model_t *)d)->fault_inputs; }

fw_driver_t *fw_model_init(fw_model_t *m, const int32_t *start, uint16_t tau_ms, uint32_t now_ms)
{
    uint8_t k;
    double a = 1.0 - exp(-1.0 / (tau_ms ? (double)tau_ms : 1.0));
    m->base = (fw_driver_t){.set_target = m_set_target, .hold = m_hold,
                            .position = m_position, .enable = m_enable,
                            .update = m_update, .faults = m_faults};
    for (k = 0; k < 6; k++) {
        m->pos_q8[k] = (int64_t)start[k] * 256;
        m->target[k] = start[k];
    }
    m->alpha_q16 = (uint32_t)(a * 65536.0 + 0.5);
    if (m->alpha_q16 == 0)
        m->alpha_q16 = 1;
    m->last_ms = now_ms;
    m->enabled = 1;
    m->fault_inputs = 0;
    return &m->base;
}
