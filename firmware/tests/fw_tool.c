/* Native tools around the firmware core, for the Python tests and for bring-up.
 *
 *   fw_tool decode            raw bytes on stdin -> one line per event on stdout:
 *                             "F <type> <address> <seq> <payload hex>" (a frame),
 *                             "R <type> <address> <seq>" (header valid, CRC-16 failed), and at
 *                             the end (after a flush, like hardware.protocol.decode) the
 *                             counters "C <frames> <discarded> <bad_header> <bad_crc> <pending>"
 *   fw_tool device [config]   the protocol core with the model driver, driven by lines on
 *                             stdin: "<t_ms> <hex bytes>" (bytes received at t_ms; no bytes:
 *                             just run the clock) or "I <bits>" (fault inputs of the model:
 *                             1 device, 2 e-stop); prints one line per input line: the hex
 *                             of everything the device wrote (possibly empty)
 *   fw_tool config [config] [--ihex]
 *                             the EEPROM configuration block, as hex or Intel HEX (avrdude)
 *
 * [config]: the options of host/fw_options.c (--address N, --watchdog-ms N, ...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_options.h"
#include "fw_test_support.h"

static void print_hex(const uint8_t *b, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        printf("%02x", b[k]);
}

static void on_frame(void *ctx, const fw_frame_t *f, uint8_t rejected)
{
    (void)ctx;
    if (rejected) {
        printf("R %u %u %u\n", f->type, f->address, f->seq);
        return;
    }
    printf("F %u %u %u ", f->type, f->address, f->seq);
    print_hex(f->payload, f->len);
    printf("\n");
}

static int decode(void)
{
    fw_decoder_t d;
    int c;
    fw_decoder_init(&d);
    while ((c = getchar()) != EOF)
        fw_decoder_push(&d, (uint8_t)c, on_frame, NULL);
    fw_decoder_flush(&d, on_frame, NULL);
    printf("C %lu %lu %lu %lu %u\n", (unsigned long)d.frames, (unsigned long)d.discarded,
           (unsigned long)d.bad_header, (unsigned long)d.bad_crc, d.n);
    return 0;
}

static int device(const fw_config_t *cfg)
{
    static fw_bench_t b;
    char line[4096];
    uint8_t data[2048];
    int started = 0;
    while (fgets(line, sizeof line, stdin)) {
        char *end;
        unsigned long t;
        int n;
        if (line[0] == 'I') {
            b.model.fault_inputs = (uint8_t)strtoul(line + 1, NULL, 0);
            printf("\n");
            fflush(stdout);
            continue;
        }
        t = strtoul(line, &end, 10);
        if (end == line) {
            fprintf(stderr, "fw_tool device: bad line: %s", line);
            return 2;
        }
        n = fw_parse_hex(end, data, (int)sizeof data);
        if (n < 0) {
            fprintf(stderr, "fw_tool device: bad hex: %s", line);
            return 2;
        }
        if (!started) {
            fw_bench_init(&b, cfg, (uint32_t)t);
            started = 1;
        }
        fw_device_poll(&b.dev, (uint32_t)t);
        if (n)
            fw_device_rx(&b.dev, data, (uint16_t)n, (uint32_t)t);
        print_hex(b.sink.bytes, b.sink.n);
        b.sink.n = 0;
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    fw_config_t cfg;
    int ihex = 0;
    const char *mode = argc > 1 ? argv[1] : "";
    fw_config_defaults(&cfg);
    for (int i = 2; i < argc; i++) {
        int r = fw_parse_config_option(&cfg, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r == 0 && !strcmp(argv[i], "--ihex")) {
            ihex = 1;
        } else if (r == 0) {
            fprintf(stderr, "fw_tool: unknown option %s; options:\n%s", argv[i], fw_config_usage);
            return 2;
        }
    }
    if (fw_config_check(&cfg) != 0) {
        fprintf(stderr, "fw_tool: inconsistent configuration (watchdog, baud, tau and step rate "
                        "must be > 0, cmin <= park <= cmax)\n");
        return 2;
    }
    if (!strcmp(mode, "decode"))
        return decode();
    if (!strcmp(mode, "device"))
        return device(&cfg);
    if (!strcmp(mode, "config")) {
        uint8_t blk[FW_CONFIG_BYTES];
        fw_config_pack(&cfg, blk);
        if (ihex) {
            fw_write_ihex(stdout, blk, sizeof blk);
        } else {
            print_hex(blk, sizeof blk);
            printf("\n");
        }
        return 0;
    }
    fprintf(stderr, "usage: fw_tool decode | device [config] | config [config] [--ihex]\n%s",
            fw_config_usage);
    return 2;
}
