#include "fw_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char fw_config_usage[] =
    "  --address N  --watchdog-ms N  --baud N  --device-id N  --max-step N (0: off)\n"
    "  --cmin C[,C2..C6]  --cmax C[,..]  --park C[,..]  --step-hz N  --tau-ms N  --flags N\n";

static int parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_six(const char *s, int32_t *out)
{
    long long v[6];
    int n = 0;
    char buf[256], *tok, *save = NULL;
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == 6 || parse_long(tok, INT32_MIN, INT32_MAX, &v[n]) != 0)
            return -1;
        n++;
    }
    if (n != 1 && n != 6)
        return -1;
    for (int k = 0; k < 6; k++)
        out[k] = (int32_t)v[n == 1 ? 0 : k];
    return 0;
}

int fw_parse_config_option(fw_config_t *c, int argc, char **argv, int *i)
{
    static const struct { const char *name; long long hi; } ints[] = {
        {"--address", 255}, {"--watchdog-ms", 65535}, {"--baud", 4000000},
        {"--device-id", 0xFFFFFFFFll}, {"--max-step", 0x7FFFFFFFll}, {"--step-hz", 65535},
        {"--tau-ms", 65535}, {"--flags", 255},
    };
    const char *opt = argv[*i], *val;
    long long v;
    int k;
    int six = !strcmp(opt, "--cmin") || !strcmp(opt, "--cmax") || !strcmp(opt, "--park");
    for (k = 0; !six && k < (int)(sizeof ints / sizeof ints[0]); k++)
        if (!strcmp(opt, ints[k].name))
            break;
    if (!six && k == (int)(sizeof ints / sizeof ints[0]))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", opt);
        return -1;
    }
    val = argv[++*i];
    if (six) {
        int32_t *dst = !strcmp(opt, "--cmin") ? c->cmin : !strcmp(opt, "--cmax") ? c->cmax : c->park;
        if (parse_six(val, dst) != 0) {
            fprintf(stderr, "error: %s %s: expected one or six int32 counts, comma-separated\n",
                    opt, val);
            return -1;
        }
        return 1;
    }
    if (parse_long(val, 0, ints[k].hi, &v) != 0) {
        fprintf(stderr, "error: %s %s: expected an integer in 0..%lld\n", opt, val, ints[k].hi);
        return -1;
    }
    switch (k) {
    case 0: c->address = (uint8_t)v; break;
    case 1: c->watchdog_ms = (uint16_t)v; break;
    case 2: c->baud = (uint32_t)v; break;
    case 3: c->device_id = (uint32_t)v; break;
    case 4: c->max_step = (uint32_t)v; break;
    case 5: c->step_hz = (uint16_t)v; break;
    case 6: c->tau_ms = (uint16_t)v; break;
    default: c->flags = (uint8_t)v; break;
    }
    return 1;
}

void fw_write_ihex(FILE *out, const uint8_t *data, unsigned n)
{
    unsigned a, k;
    for (a = 0; a < n; a += 16) {
        unsigned len = n - a < 16 ? n - a : 16;
        unsigned sum = len + (a >> 8) + (a & 0xFF);
        fprintf(out, ":%02X%04X00", len, a);
        for (k = 0; k < len; k++) {
            fprintf(out, "%02X", data[a + k]);
            sum += data[a + k];
        }
        fprintf(out, "%02X\n", (unsigned)(-sum) & 0xFFu);
    }
    fprintf(out, ":00000001FF\n");
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int fw_parse_hex(const char *s, uint8_t *out, int max)
{
    int n = 0, hi = -1;
    for (; *s; s++) {
        int v;
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '|')
            continue;
        v = hexval(*s);
        if (v < 0)
            return -1;
        if (hi < 0) {
            hi = v;
        } else {
            if (n == max)
                return -1;
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return hi < 0 ? n : -1;
}
