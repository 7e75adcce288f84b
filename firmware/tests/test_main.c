/* Native unit tests of the firmware's C core (test_proto.c, test_device.c): CRC check values,
 * the docs/protocol.md hex examples byte for byte, the decoder (resynchronisation, accounting, a time-bounded fuzz that
 * never lets a corrupt frame through), and the state machine's transitions.
 *
 * Usage: fw_tests [fuzz_seconds (default 2)] [seed]. Exit 0 when every check passed. */
#include <stdio.h>
#include <stdlib.h>

#include "fw_test_support.h"

int main(int argc, char **argv)
{
    double fuzz_s = argc > 1 ? atof(argv[1]) : 2.0;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 20240611u;
    test_crc();
    test_doc_examples();
    test_decoder_resync();
    test_decoder_fuzz(fuzz_s, seed);
    test_decoder_noise(seed + 1);
    test_device_all();
    printf("%d checks, %d failures\n", fw_checks, fw_failures);
    return fw_failures ? 1 : 0;
}
