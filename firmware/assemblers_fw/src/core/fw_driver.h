/* The actuator driver behind a small interface: the protocol core only sets targets, reads
 * positions, enables/disables the drives and reads the fault inputs. Implementations embed a
 * fw_driver_t as their first member: fw_model.c (first-order position model, portable: native
 * tests and DRIVER=model on the board), avr/fw_stepdir.c (step/dir pulses, ATmega2560). */
#ifndef FW_DRIVER_H
#define FW_DRIVER_H

#include <stdint.h>
#include "fw_port.h"

FW_EXTERN_C_BEGIN

#define FW_DRV_FAULT_DEVICE 0x01u /* an end stop open, a drive alarm: latch DEVICE, FAULT */
#define FW_DRV_FAULT_ESTOP 0x02u  /* the emergency-stop input is open: latch ESTOP */

typedef struct fw_driver fw_driver_t;
struct fw_driver {
    /* move towards target (6,) counts */
    void (*set_target)(fw_driver_t *d, const int32_t *target);
    /* stop where the actuators are now and report that position (6,) counts: the new target
     * (one atomic step, so a moving axis cannot slip past the position read) */
    void (*hold)(fw_driver_t *d, int32_t *pos);
    /* measured (6,) counts (the encoder, or the step count of an open-loop drive) */
    void (*position)(fw_driver_t *d, int32_t *pos);
    /* power the drives (1) or cut them (0: ESTOP; the position is frozen) */
    void (*enable)(fw_driver_t *d, uint8_t on);
    /* advance to now_ms (called from the main loop) */
    void (*update)(fw_driver_t *d, uint32_t now_ms);
    /* FW_DRV_FAULT_* inputs active now */
    uint8_t (*faults)(fw_driver_t *d);
};

FW_EXTERN_C_END

#endif
