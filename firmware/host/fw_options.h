/* Host-side helpers shared by the native tools (tests/fw_tool.c) and the simavr harness
 * (sim/fw_simboard.c): configuration options on the command line, Intel HEX output, hex. */
#ifndef FW_OPTIONS_H
#define FW_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "fw_config.h"

/* If argv[*i] is a configuration option (--address N, --watchdog-ms N, --baud N,
 * --device-id N, --max-step N, --cmin A[,B..F], --cmax .., --park .., --step-hz N, --tau-ms N,
 * --flags N), parse it and its value into c, advance *i past the value and return 1; return
 * 0 when it is not one; print one line naming the option and return -1 on a bad value. */
int fw_parse_config_option(fw_config_t *c, int argc, char **argv, int *i);
/* The options above, for usage messages. */
extern const char fw_config_usage[];
/* Write data as Intel HEX records (16 bytes each, from address 0) and the end record. */
void fw_write_ihex(FILE *out, const uint8_t *data, unsigned n);
/* Parse hex digits (spaces allowed) into out; returns the byte count or -1. */
int fw_parse_hex(const char *s, uint8_t *out, int max);

#endif
