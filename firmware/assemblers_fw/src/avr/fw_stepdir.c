#ifdef __AVR__
#include "fw_stepdir.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#include "../core/fw_config.h"
#include "fw_board.h"

#define TIMER1_CLOCK _BV(CS11) /* clk / 8 */

/* Shared with the interrupt: written by the main loop inside ATOMIC_BLOCKs only. */
static volatile int32_t pos[6];
static volatile int32_t target[6];
static volatile uint16_t rate[6]; /* steps per interrupt, in 1/65536 (at most 1/2) */
static uint16_t phase[6];         /* the interrupt's step accumulators */
static volatile uint8_t enabled;

ISR(TIMER1_COMPA_vect)
{
    uint8_t high = PORTA & FW_STEP_MASK; /* pulses started last period */
    uint8_t dir = PORTC;
    uint8_t step = 0, busy = 0, k, bit;
    PORTA &= (uint8_t)~FW_STEP_MASK;
    for (k = 0, bit = 1; k < 6; k++, bit <<= 1) {
        int32_t p = pos[k], t = target[k];
        uint8_t up;
        if (p == t)
            continue;
        busy = 1;
        {
            uint16_t a = (uint16_t)(phase[k] + rate[k]);
            uint8_t due = a < phase[k]; /* the accumulator wrapped: a step is due */
            phase[k] = a;
            if (!due)
                continue;
        }
        if (high & bit) {
            phase[k] = 0xFFFFu; /* keep the line low for a period; step at the next chance */
            continue;
        }
        up = t > p;
        if (((dir & bit) != 0) != up) {
            dir ^= bit; /* set DIR now, step next period */
            phase[k] = 0xFFFFu;
            continue;
        }
        step |= bit;
        pos[k] = up ? p + 1 : p - 1;
    }
    PORTC = dir;
    PORTA |= step;
    if (!busy && !high)
        TCCR1B &= (uint8_t)~TIMER1_CLOCK; /* all there: timer stopped until the next target */
}

/* Spread each axis's steps over the time the host takes between set-points (the last interval,
 * 1..100 ms), so an actuator moves smoothly at the set-points' speed instead of running at the
 * largest step rate and waiting. An axis that cannot make it in time runs at the largest rate. */
static void sd_set_target(fw_driver_t *d, const int32_t *t)
{
    fw_stepdir_t *s = (fw_stepdir_t *)d;
    uint32_t period_ms = s->last_ms - s->last_target_ms;
    uint32_t ticks;
    uint16_t r[6];
    uint8_t k;
    int32_t now_pos[6];
    s->last_target_ms = s->last_ms;
    if (period_ms < 1u)
        period_ms = 1u;
    if (period_ms > 100u)
        period_ms = 100u;
    ticks = period_ms * s->step_hz / 1000u;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        for (k = 0; k < 6; k++)
            now_pos[k] = pos[k];
    }
    for (k = 0; k < 6; k++) {
        int32_t delta = t[k] - now_pos[k];
        uint32_t m = (uint32_t)(delta < 0 ? -delta : delta);
        /* m / ticks steps per interrupt, at most one every other interrupt */
        r[k] = m * 2u >= ticks ? 0x8000u : (uint16_t)((m << 16) / (ticks ? ticks : 1u));
        if (r[k] == 0 && m)
            r[k] = 1;
    }
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        for (k = 0; k < 6; k++) {
            target[k] = enabled ? t[k] : pos[k];
            rate[k] = r[k];
        }
        if (!(TCCR1B & TIMER1_CLOCK)) { /* stopped: restart a full period from now */
            TCNT1 = 0;
            TCCR1B |= TIMER1_CLOCK;
        }
    }
}

static void sd_hold(fw_driver_t *d, int32_t *out)
{
    uint8_t k;
    (void)d;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        for (k = 0; k < 6; k++) {
            target[k] = pos[k]; /* the interrupt sees every axis arrived */
            out[k] = pos[k];
        }
    }
}

/* An encoder would be read here (FW_ENCODER_POSITION = 1 and a function
 * fw_encoder_read(int32_t *counts)); without one the step count is the position. */
static void sd_position(fw_driver_t *d, int32_t *out)
{
    uint8_t k;
    (void)d;
#if defined(FW_ENCODER_POSITION) && FW_ENCODER_POSITION
    extern void fw_encoder_read(int32_t *counts);
    fw_encoder_read(out);
#else
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        for (k = 0; k < 6; k++)
            out[k] = pos[k];
    }
#endif
}

static void sd_enable(fw_driver_t *d, uint8_t on)
{
    uint8_t k;
    (void)d;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        enabled = on;
        if (!on)
            for (k = 0; k < 6; k++)
                target[k] = pos[k];
        if (on)
            PORTC &= (uint8_t)~FW_ENABLE_BIT;
        else
            PORTC |= FW_ENABLE_BIT;
    }
}

static void sd_update(fw_driver_t *d, uint32_t now_ms)
{
    fw_stepdir_t *s = (fw_stepdir_t *)d;
    uint8_t in = PINK, bits = 0;
    if (now_ms == s->last_ms)
        return;
    s->last_ms = now_ms;
    if ((s->flags & FW_CFG_ENDSTOPS) && (in & FW_END_MASK))
        bits |= FW_DRV_FAULT_DEVICE;
    if ((s->flags & FW_CFG_ESTOP_INPUT) && (in & FW_ESTOP_BIT))
        bits |= FW_DRV_FAULT_ESTOP;
    if (!bits) {
        s->open_count = 0;
        s->open_bits = 0;
    } else if (s->open_count < 3) {
        s->open_count++;
    } else {
        s->open_bits = bits;
    }
}

static uint8_t sd_faults(fw_driver_t *d) { return ((fw_stepdir_t *)d)->open_bits; }

fw_driver_t *fw_stepdir_init(fw_stepdir_t *s, const int32_t *start, uint16_t step_hz,
                             uint8_t flags, uint32_t now_ms)
{
    uint8_t k;
    uint32_t top = F_CPU / 8u / (step_hz ? step_hz : 1u);
    s->base = (fw_driver_t){.set_target = sd_set_target, .hold = sd_hold,
                            .position = sd_position, .enable = sd_enable,
                            .update = sd_update, .faults = sd_faults};
    s->flags = flags;
    s->step_hz = step_hz ? step_hz : 1u;
    s->last_target_ms = now_ms - 100u;
    s->open_count = 0;
    s->open_bits = 0;
    s->last_ms = now_ms;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        for (k = 0; k < 6; k++)
            pos[k] = target[k] = start[k];
        enabled = 0;
    }
    PORTC |= FW_ENABLE_BIT; /* drives off until the core enables them */
    DDRC |= FW_DIR_MASK | FW_ENABLE_BIT;
    PORTA &= (uint8_t)~FW_STEP_MASK;
    DDRA |= FW_STEP_MASK;
    DDRK &= (uint8_t)~(FW_END_MASK | FW_ESTOP_BIT);
    PORTK |= FW_END_MASK | FW_ESTOP_BIT; /* pull-ups: an open switch or a cut wire reads 1 */
    if (top < 2u)
        top = 2u;
    if (top > 65536u)
        top = 65536u;
    TCCR1A = 0;
    TCCR1B = _BV(WGM12); /* CTC on OCR1A, stopped (set_target starts it) */
    OCR1A = (uint16_t)(top - 1u);
    TCNT1 = 0;
    TIMSK1 |= _BV(OCIE1A);
    return &s->base;
}
#endif
