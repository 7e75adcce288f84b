/* The reference board: an Arduino Mega 2560 (ATmega2560, 16 MHz), one per platform, driving
 * six step/dir stepper drivers. Pin map (docs/firmware.md "Wiring"):
 *
 *   STEP k   PA0..PA5   D22..D27    pulse high for one step period, rising edge = one step
 *   DIR k    PC0..PC5   D37..D32    high: counts increase (the calibration's sign maps it)
 *   ENABLE   PC7        D30         low: drives on (A4988/DRV8825/TB6600 style, active low)
 *   END k    PK0..PK5   A8..A13     min and max switches of actuator k in series, normally
 *                                   closed to GND, internal pull-up: open = fault
 *   E-STOP   PK6        A14         normally-closed button to GND: open = emergency stop
 *   LED      PB7        D13         on: RUNNING, blinking: ESTOP/FAULT, off: IDLE/HOLD
 *   serial   UART0 (USB)            the host link, FW_DEFAULT_BAUD or the EEPROM's baud
 */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include "../core/fw_config.h"
#include "../core/fw_port.h"

FW_EXTERN_C_BEGIN

#define FW_STEP_MASK 0x3Fu   /* PORTA */
#define FW_DIR_MASK 0x3Fu    /* PORTC */
#define FW_ENABLE_BIT 0x80u  /* PORTC */
#define FW_END_MASK 0x3Fu    /* PINK */
#define FW_ESTOP_BIT 0x40u   /* PINK */
#define FW_LED_BIT 0x80u     /* PORTB */

/* The EEPROM block if it is valid (fw_config_unpack), else the build's defaults. Returns 1
 * when the EEPROM block was used. */
uint8_t fw_board_load_config(fw_config_t *c);
/* Stop what the Arduino core's init() started and this firmware does not use: the PWM timers
 * 2..5 and Timer0's PWM mode (millis() needs only its overflow). Fewer interrupts and wake-ups,
 * on the board and in the simulator (each timer event wakes simavr). */
void fw_board_quiet_timers(void);
/* LED: on, off or blinking (~2 Hz) from the device state. */
void fw_board_led(uint8_t state, uint32_t now_ms);

FW_EXTERN_C_END

#endif
