/* Native unit tests of the protocol layer: CRC check values, the docs/protocol.md hex
 * examples byte for byte, and the decoder (resynchronisation, accounting, a time-bounded fuzz
 * that never lets a corrupt frame through, pure noise). */
#include <string.h>
#include <time.h>

#include "fw_crc.h"
#include "fw_test_support.h"

static void setpoint_payload(uint8_t *p, uint32_t tick, const int32_t *c)
{
    fw_put_u32(p, tick);
    for (int k = 0; k < 6; k++)
        fw_put_i32(p + 4 + 4 * k, c[k]);
}

/* ------------------------------------------------------------------ CRCs */

void test_crc(void)
{
    const uint8_t check[] = "123456789";
    fw_rng_t r;
    uint8_t buf[300];
    CHECK(fw_crc16(check, 9) == 0x29B1);
    CHECK(fw_crc8(check, 9) == 0xF4);
    CHECK(ref_crc16(check, 9) == 0x29B1 && ref_crc8(check, 9) == 0xF4);
    CHECK(fw_crc16(check, 0) == 0xFFFF && fw_crc8(check, 0) == 0);
    CHECK(fw_crc16_update(fw_crc16(check, 4), check + 4, 5) == 0x29B1);
    fw_rng_seed(&r, 1);
    for (int t = 0; t < 2000; t++) {
        unsigned n = fw_rng_below(&r, sizeof buf);
        for (unsigned k = 0; k < n; k++)
            buf[k] = (uint8_t)fw_rng_u32(&r);
        CHECK(fw_crc16(buf, n) == ref_crc16(buf, n));
        CHECK(fw_crc8(buf, n) == ref_crc8(buf, n));
    }
}

/* ------------------------------------------------------------------ docs/protocol.md examples */

void test_doc_examples(void)
{
    /* SETPOINT, address 1, seq 5, tick 5, counts 26000, 26001, 26002, 25999, 26000, -1 */
    static const uint8_t sp[] = {
        0xa5, 0x5a, 0x01, 0x01, 0x05, 0x00, 0x1c, 0xe0, 0x05, 0x00, 0x00, 0x00,
        0x90, 0x65, 0x00, 0x00, 0x91, 0x65, 0x00, 0x00, 0x92, 0x65, 0x00, 0x00,
        0x8f, 0x65, 0x00, 0x00, 0x90, 0x65, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xfa, 0xf7};
    static const uint8_t ack[] = {0xa5, 0x5a, 0x81, 0x01, 0x05, 0x00, 0x04, 0x3f,
                                  0x01, 0x01, 0x00, 0x00, 0xe7, 0xe7};
    static const uint8_t nak[] = {0xa5, 0x5a, 0x82, 0x01, 0x06, 0x00, 0x06, 0x2a,
                                  0x01, 0x04, 0x04, 0x00, 0x03, 0x00, 0x33, 0xcd};
    static const uint8_t hb[] = {0xa5, 0x5a, 0x03, 0x02, 0x07, 0x00, 0x00, 0x9c, 0x6b, 0x97};
    static const uint8_t sq[] = {0xa5, 0x5a, 0x02, 0x01, 0x00, 0x00, 0x00, 0xd2, 0x3e, 0xc4};
    const int32_t counts[6] = {26000, 26001, 26002, 25999, 26000, -1};
    uint8_t p[FW_LEN_SETPOINT], out[FW_MAX_FRAME];
    fw_decoder_t d;
    frames_t fs;

    setpoint_payload(p, 5, counts);
    CHECK(fw_encode(out, FW_SETPOINT, 1, 5, p, sizeof p) == sizeof sp);
    CHECK(memcmp(out, sp, sizeof sp) == 0);
    {
        const uint8_t a[4] = {0x01, FW_RUNNING, 0x00, 0x00};
        CHECK(fw_encode(out, FW_ACK, 1, 5, a, 4) == sizeof ack && !memcmp(out, ack, sizeof ack));
    }
    {
        const uint8_t n[6] = {0x01, FW_FAULTED, FW_F_DEVICE, 0x00, FW_NAK_DEVICE_FAULT, 0};
        CHECK(fw_encode(out, FW_NAK, 1, 6, n, 6) == sizeof nak && !memcmp(out, nak, sizeof nak));
    }
    CHECK(fw_encode(out, FW_HEARTBEAT, 2, 7, NULL, 0) == sizeof hb && !memcmp(out, hb, sizeof hb));
    CHECK(fw_encode(out, FW_STATUS_QUERY, 1, 0, NULL, 0) == sizeof sq
          && !memcmp(out, sq, sizeof sq));
    /* wrong lengths and unknown types are refused */
    CHECK(fw_encode(out, FW_ACK, 1, 0, p, 3) == 0 && fw_encode(out, 0x55, 1, 0, NULL, 0) == 0);

    fw_decoder_init(&d);
    memset(&fs, 0, sizeof fs);
    fw_feed(&d, sp, sizeof sp, &fs);
    fw_feed(&d, ack, sizeof ack, &fs);
    fw_feed(&d, nak, sizeof nak, &fs);
    fw_feed(&d, hb, sizeof hb, &fs);
    fw_feed(&d, sq, sizeof sq, &fs);
    CHECK(fs.n == 5 && d.frames == 5 && d.discarded == 0 && d.n == 0);
    CHECK(fs.f[0].type == FW_SETPOINT && fs.f[0].address == 1 && fs.f[0].seq == 5);
    CHECK(fw_get_u32(fs.payload[0]) == 5 && fw_get_i32(fs.payload[0] + 24) == -1);
    CHECK(fw_get_i32(fs.payload[0] + 16) == 25999);
    CHECK(fs.f[1].type == FW_ACK && fs.payload[1][1] == FW_RUNNING);
    CHECK(fs.f[2].type == FW_NAK && fs.payload[2][4] == FW_NAK_DEVICE_FAULT);
    CHECK(fs.f[3].type == FW_HEARTBEAT && fs.f[3].address == 2 && fs.f[3].seq == 7);
    CHECK(fs.f[4].type == FW_STATUS_QUERY && fs.f[4].seq == 0);
}

/* ------------------------------------------------------------------ decoder */

void test_decoder_resync(void)
{
    uint8_t stream[200], fr[FW_MAX_FRAME];
    unsigned n = 0;
    uint8_t flen;
    fw_decoder_t d;
    frames_t fs;
    /* a false marker whose "header" swallows the start of a real frame */
    flen = fw_encode(fr, FW_HEARTBEAT, 1, 9, NULL, 0);
    stream[n++] = 0x00;
    stream[n++] = FW_SOF0;
    stream[n++] = FW_SOF1;
    stream[n++] = FW_SETPOINT; /* plausible type, but ... */
    memcpy(stream + n, fr, flen);
    n += flen;
    fw_decoder_init(&d);
    memset(&fs, 0, sizeof fs);
    fw_feed(&d, stream, n, &fs);
    CHECK(fs.n == 1 && fs.f[0].type == FW_HEARTBEAT && fs.f[0].seq == 9 && !fs.rejected[0]);
    CHECK(d.bad_header == 1 && d.discarded == 4 && d.n == 0);
    /* a truncated SETPOINT followed by the complete retransmission: the retransmission is
     * found once the truncated candidate fails its CRC */
    {
        uint8_t p[FW_LEN_SETPOINT] = {0};
        uint8_t sp[FW_MAX_FRAME];
        uint8_t splen = fw_encode(sp, FW_SETPOINT, 1, 3, p, sizeof p);
        fw_decoder_init(&d);
        memset(&fs, 0, sizeof fs);
        fw_feed(&d, sp, 20, &fs);
        CHECK(fs.n == 0 && d.n == 20);
        fw_feed(&d, sp, splen, &fs);
        CHECK(fs.n == 2 && fs.rejected[0] && !fs.rejected[1] && fs.f[1].seq == 3);
        CHECK(d.bad_crc == 1 && d.n == 0 && d.discarded == 20);
    }
    /* a trailing A5 is kept (its 5A may come next); flush gives pending bytes up */
    fw_decoder_init(&d);
    memset(&fs, 0, sizeof fs);
    fw_feed(&d, (const uint8_t *)"\x11\x22\xa5", 3, &fs);
    CHECK(d.n == 1 && d.discarded == 2);
    fw_feed(&d, fr + 1, (unsigned)flen - 1, &fs);
    CHECK(fs.n == 1 && d.n == 0);
    fw_feed(&d, fr, 9, &fs);
    CHECK(d.n == 9);
    fw_decoder_flush(&d, fw_collect, &fs);
    CHECK(d.n == 0 && d.discarded == 2 + 9 && fs.n == 1);
}

/* Random frames of every type, some corrupted, with noise between them. Checks: every frame
 * emitted passes the reference CRCs and the type/length rule; every intact frame is emitted,
 * in order, byte for byte; a frame with a corruption CRC-16 always detects (1..3 flipped
 * bits, or a burst of at most 16 bits, after the marker) is never emitted; a frame with random
 * multi-byte damage is emitted only when it is valid after all (counted); and every byte fed
 * is accounted for (in a frame, discarded or pending). */
void test_decoder_fuzz(double seconds, uint64_t seed)
{
    static const uint8_t types[] = {FW_SETPOINT, FW_STATUS_QUERY, FW_HEARTBEAT, FW_STOP,
                                    FW_ESTOP, FW_CLEAR_FAULTS, FW_IDENTIFY, FW_ACK, FW_NAK,
                                    FW_STATUS, FW_IDENT};
    fw_rng_t r;
    clock_t t0 = clock();
    long rounds = 0, intact = 0, guaranteed = 0, random_damage = 0, collisions = 0;
    long noise_bytes = 0;
    fw_rng_seed(&r, seed);
    while ((double)(clock() - t0) / CLOCKS_PER_SEC < seconds) {
        enum { NF = 24 };
        uint8_t stream[NF * (FW_MAX_FRAME + 40)];
        uint8_t sent[NF][FW_MAX_FRAME], damaged[NF][FW_MAX_FRAME];
        uint8_t sent_len[NF], kind[NF]; /* 0 intact, 1 guaranteed-detectable, 2 random damage */
        unsigned n = 0, fed_in_frames = 0;
        int next = 0;
        fw_decoder_t d;
        frames_t fs;
        for (int i = 0; i < NF; i++) {
            uint8_t p[FW_MAX_PAYLOAD], t = types[fw_rng_below(&r, sizeof types)];
            uint8_t len = (uint8_t)fw_payload_len(t);
            uint8_t fr[FW_MAX_FRAME], flen;
            unsigned noise = fw_rng_below(&r, 4) == 0 ? fw_rng_below(&r, 40) : 0;
            for (unsigned k = 0; k < len; k++)
                p[k] = (uint8_t)fw_rng_u32(&r);
            flen = fw_encode(fr, t, (uint8_t)fw_rng_u32(&r), (uint16_t)fw_rng_u32(&r), p, len);
            memcpy(sent[i], fr, flen);
            sent_len[i] = flen;
            kind[i] = 0;
            switch (fw_rng_below(&r, 6)) {
            case 0: { /* 1..3 bit flips after the marker */
                unsigned flips = 1 + fw_rng_below(&r, 3);
                unsigned pos[3];
                for (unsigned k = 0; k < flips; k++) {
                    unsigned bit;
                    do { /* distinct bits, else two flips cancel */
                        bit = 16 + fw_rng_below(&r, (unsigned)(flen - 2) * 8);
                    } while ((k > 0 && bit == pos[0]) || (k > 1 && bit == pos[1]));
                    pos[k] = bit;
                    fr[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                }
                kind[i] = 1;
                break;
            }
            case 1: { /* one burst of 1..16 bits after the marker, first and last bit flipped */
                unsigned blen = 1 + fw_rng_below(&r, 16);
                unsigned start = 16 + fw_rng_below(&r, (unsigned)(flen - 2) * 8 - blen + 1);
                for (unsigned b = 0; b < blen; b++)
                    if (b == 0 || b == blen - 1 || (fw_rng_u32(&r) & 1))
                        fr[(start + b) / 8] ^= (uint8_t)(1u << ((start + b) % 8));
                kind[i] = 1;
                break;
            }
            case 2: { /* several random bytes anywhere (the marker too) */
                unsigned m = 1 + fw_rng_below(&r, 6);
                for (unsigned k = 0; k < m; k++)
                    fr[fw_rng_below(&r, flen)] = (uint8_t)fw_rng_u32(&r);
                kind[i] = memcmp(fr, sent[i], flen) ? 2 : 0;
                break;
            }
            default:
                break;
            }
            memcpy(damaged[i], fr, flen);
            memcpy(stream + n, fr, flen);
            n += flen;
            for (unsigned k = 0; k < noise; k++)
                stream[n++] = fw_rng_below(&r, 8) == 0 ? FW_SOF0 : (uint8_t)fw_rng_u32(&r);
            noise_bytes += noise;
        }
        fw_decoder_init(&d);
        memset(&fs, 0, sizeof fs);
        fw_feed(&d, stream, n, &fs);
        fw_decoder_flush(&d, fw_collect, &fs);
        for (int j = 0; j < fs.n; j++) {
            const uint8_t *fr = fs.raw[j];
            uint8_t flen = (uint8_t)(FW_HEADER_LEN + fs.f[j].len + FW_CRC_LEN);
            if (fs.rejected[j])
                continue;
            /* the bytes accepted: marker, a known type with its exact length, both CRCs right
             * by the bitwise reference */
            CHECK(fr[0] == FW_SOF0 && fr[1] == FW_SOF1 && fr[6] == fs.f[j].len);
            CHECK(fw_payload_len(fr[2]) == fr[6] && fs.f[j].type == fr[2]);
            CHECK(ref_crc8(fr + 2, 5) == fr[7]);
            CHECK(ref_crc16(fr + 2, (size_t)flen - 4) == fw_get_u16(fr + flen - 2));
            fed_in_frames += flen;
            /* never the bytes of a frame with errors CRC-16 must detect */
            for (int i = 0; i < NF; i++)
                CHECK(!(kind[i] == 1 && sent_len[i] == flen && !memcmp(damaged[i], fr, flen)));
            /* match it against what was sent, in order; frames skipped must be damaged ones */
            {
                int m = next;
                while (m < NF && !(kind[m] != 1 && sent_len[m] == flen
                                   && !memcmp(sent[m], fr, flen)))
                    m++;
                if (m < NF) {
                    for (; next < m; next++)
                        CHECK(kind[next] != 0); /* an intact frame was lost */
                    next = m + 1;
                } else {
                    collisions++; /* valid bytes no one sent (noise or damage that checks out) */
                }
            }
        }
        while (next < NF) { /* the rest must have been damaged */
            CHECK(kind[next] != 0);
            next++;
        }
        CHECK(fed_in_frames + d.discarded == n && d.n == 0);
        for (int i = 0; i < NF; i++) {
            intact += kind[i] == 0;
            guaranteed += kind[i] == 1;
            random_damage += kind[i] == 2;
        }
        rounds++;
    }
    printf("fuzz: %ld streams (seed %llu): %ld intact, %ld with detectable errors, %ld with "
           "random damage, %ld noise bytes; %ld valid frames nobody sent\n",
           rounds, (unsigned long long)seed, intact, guaranteed, random_damage, noise_bytes,
           collisions);
    CHECK(rounds > 0);
    /* with 24-bit protection a collision is a 1-in-16-million event per candidate: a count
     * above a handful means the checks are not being made */
    CHECK(collisions <= 2);
}

/* Pure noise: nothing is ever accepted that fails the reference CRCs, and nothing is lost. */
void test_decoder_noise(uint64_t seed)
{
    fw_rng_t r;
    fw_decoder_t d;
    long accepted = 0;
    unsigned long fed = 0, in_frames = 0;
    fw_rng_seed(&r, seed);
    fw_decoder_init(&d);
    for (int k = 0; k < 2000000; k++) {
        frames_t fs;
        uint8_t b = fw_rng_below(&r, 4) == 0 ? (k & 1 ? FW_SOF1 : FW_SOF0) : (uint8_t)fw_rng_u32(&r);
        fs.n = 0;
        fw_decoder_push(&d, b, fw_collect, &fs);
        fed++;
        for (int j = 0; j < fs.n; j++) {
            const uint8_t *fr = fs.raw[j];
            unsigned flen = FW_HEADER_LEN + fs.f[j].len + FW_CRC_LEN;
            if (fs.rejected[j])
                continue;
            CHECK(fw_payload_len(fr[2]) == fr[6] && ref_crc8(fr + 2, 5) == fr[7]);
            CHECK(ref_crc16(fr + 2, (size_t)flen - 4) == fw_get_u16(fr + flen - 2));
            in_frames += flen;
            accepted++;
        }
    }
    CHECK(in_frames + d.discarded + d.n == fed);
    printf("noise: 2000000 bytes, %lu bad headers, %lu bad CRCs, %ld frames accepted (valid)\n",
           (unsigned long)d.bad_header, (unsigned long)d.bad_crc, accepted);
    CHECK(accepted <= 2);
}

