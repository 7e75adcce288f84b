/* Step/dir driver for the reference board (fw_board.h pins). Timer1 interrupts at step_hz;
 * each interrupt ends the step pulses it started last time and starts a step on every axis
 * that is away from its target, whose step accumulator says one is due, and that was not
 * pulsed last time, so a pulse is high for one period and low for at least one: at most
 * step_hz / 2 steps per second per axis (10 kHz at the default 20 kHz: 0.1 m/s at 1e5 counts
 * per metre). Each new target sets every axis's rate so that its steps are spread over the
 * interval between the last two set-points (smooth motion at the stream's speed, one interval
 * behind it); an axis that cannot make it runs at the largest rate. A direction change costs
 * one period (DIR settles before the next edge). The timer stops while every axis is at its
 * target.
 *
 * Open loop: the measured position is the step count (FW_ENCODER_POSITION lets an encoder
 * reading replace it; see fw_stepdir.c). End stops and the e-stop input are read with a 3 ms
 * debounce. */
#ifndef FW_STEPDIR_H
#define FW_STEPDIR_H

#include "../core/fw_driver.h"

FW_EXTERN_C_BEGIN

typedef struct {
    fw_driver_t base;
    uint8_t flags;      /* FW_CFG_ENDSTOPS / FW_CFG_ESTOP_INPUT */
    uint8_t open_count; /* debounce: consecutive milliseconds with an input open */
    uint8_t open_bits;  /* FW_DRV_FAULT_* after the debounce */
    uint32_t last_ms;
    uint32_t last_target_ms; /* when the last target came (the set-point interval) */
    uint16_t step_hz;
} fw_stepdir_t;

fw_driver_t *fw_stepdir_init(fw_stepdir_t *s, const int32_t *start, uint16_t step_hz,
                             uint8_t flags, uint32_t now_ms);

FW_EXTERN_C_END

#endif
