/*
 * Calls every function and uses every constant of adamw.h from C, checks
 * the return code of each rejected call and that it wrote nothing, and
 * prints "N passed, M failed". .ci/c_abi.sh builds it with -Werror on the
 * host and for the Cortex-M4, and fails when a function or a #define of the
 * header does not appear in this file, so the header, this program and the
 * library's symbols cannot drift apart unnoticed.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "adamw.h"

#define LEN 5

static int passed;
static int failed;

static void expect(const char *what, int32_t found, int32_t expected) {
    if (found == expected) {
        passed++;
        return;
    }
    failed++;
    printf("FAILED %s: returned %" PRId32 " (%s), expected %" PRId32 " (%s)\n", what, found,
           adamw_strerror(found), expected, adamw_strerror(expected));
}

static void expect_true(const char *what, int condition) {
    if (condition) {
        passed++;
        return;
    }
    failed++;
    printf("FAILED %s\n", what);
}

/* Five buffers of LEN floats in one block, plus room to shift one by a
   byte. uint32_t storage keeps the block 4-byte aligned. */
static uint32_t block[5 * LEN + 1];
static uint32_t saved[5 * LEN + 1];

static float *buffer(int i) { return (float *)(void *)&block[i * LEN]; }

static void fill(void) {
    for (size_t i = 0; i < sizeof block / sizeof block[0]; i++) {
        block[i] = 0x3e800000u + (uint32_t)i; /* near 0.25 */
    }
    memcpy(saved, block, sizeof block);
}

static int unchanged(void) { return memcmp(saved, block, sizeof block) == 0; }

/* One rejected adamw_step_config call: the code, and no write. */
static void expect_rejected(const char *what, const adamw_config *config, uint64_t step, float *p, const float *g,
                            float *m, float *v, float *x, size_t len, int32_t expected) {
    fill();
    expect(what, adamw_step_config(config, step, p, g, m, v, x, len), expected);
    expect_true(what, unchanged());
}

static void check_messages(void) {
    static const int32_t codes[] = {
        ADAMW_OK,
        ADAMW_ERR_NULL_PARAM,
        ADAMW_ERR_NULL_GRAD,
        ADAMW_ERR_NULL_EXP_AVG,
        ADAMW_ERR_NULL_EXP_AVG_SQ,
        ADAMW_ERR_NULL_MAX_EXP_AVG_SQ,
        ADAMW_ERR_NULL_CONFIG,
        ADAMW_ERR_NULL_SCALARS,
        ADAMW_ERR_NULL_OUT,
        ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ,
        ADAMW_ERR_MISALIGNED_PARAM,
        ADAMW_ERR_MISALIGNED_GRAD,
        ADAMW_ERR_MISALIGNED_EXP_AVG,
        ADAMW_ERR_MISALIGNED_EXP_AVG_SQ,
        ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ,
        ADAMW_ERR_LEN_TOO_LARGE,
        ADAMW_ERR_OVERLAP,
        ADAMW_ERR_STEP_ZERO,
        ADAMW_ERR_INVALID_LR,
        ADAMW_ERR_INVALID_BETA1,
        ADAMW_ERR_INVALID_BETA2,
        ADAMW_ERR_INVALID_EPS,
        ADAMW_ERR_INVALID_WEIGHT_DECAY,
        ADAMW_ERR_INVALID_AMSGRAD,
        ADAMW_ERR_INVALID_MAXIMIZE,
        ADAMW_ERR_INVALID_ROUNDING,
        ADAMW_ERR_INVALID_DECAY_MODE,
        ADAMW_ERR_INTERNAL,
    };
    const size_t count = sizeof codes / sizeof codes[0];
    const char *unknown = adamw_strerror(1);
    expect_true("strerror(1) is the unknown-code message", strcmp(unknown, "unknown error code") == 0);
    for (size_t i = 0; i < count; i++) {
        char what[64];
        snprintf(what, sizeof what, "code %" PRId32 " has a message", codes[i]);
        expect_true(what, strcmp(adamw_strerror(codes[i]), unknown) != 0);
        for (size_t j = i + 1; j < count; j++) {
            snprintf(what, sizeof what, "codes %" PRId32 " and %" PRId32 " differ", codes[i], codes[j]);
            expect_true(what, codes[i] != codes[j]);
        }
    }
    expect_true("rounding modes differ", ADAMW_ROUNDING_FUSED != ADAMW_ROUNDING_UNFUSED);
    expect_true("decay modes differ", ADAMW_DECAY_DECOUPLED != ADAMW_DECAY_COUPLED_L2);
}

static void check_rejections(void) {
    float *p = buffer(0), *g = buffer(1), *m = buffer(2), *v = buffer(3), *x = buffer(4);
    const adamw_config plain = adamw_config_default();
    adamw_config ams = plain;
    ams.amsgrad = 1;

    expect_rejected("NULL config", NULL, 1, p, g, m, v, NULL, LEN, ADAMW_ERR_NULL_CONFIG);
    expect_rejected("NULL param", &ams, 1, NULL, g, m, v, x, LEN, ADAMW_ERR_NULL_PARAM);
    expect_rejected("NULL grad", &ams, 1, p, NULL, m, v, x, LEN, ADAMW_ERR_NULL_GRAD);
    expect_rejected("NULL exp_avg", &ams, 1, p, g, NULL, v, x, LEN, ADAMW_ERR_NULL_EXP_AVG);
    expect_rejected("NULL exp_avg_sq", &ams, 1, p, g, m, NULL, x, LEN, ADAMW_ERR_NULL_EXP_AVG_SQ);
    expect_rejected("NULL max_exp_avg_sq", &ams, 1, p, g, m, v, NULL, LEN, ADAMW_ERR_NULL_MAX_EXP_AVG_SQ);
    expect_rejected("max_exp_avg_sq without amsgrad", &plain, 1, p, g, m, v, x, LEN,
                    ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ);
    expect_rejected("len too large", &plain, 1, p, g, m, v, NULL, SIZE_MAX, ADAMW_ERR_LEN_TOO_LARGE);
    expect_rejected("overlap", &plain, 1, p, g, m, p + 1, NULL, LEN, ADAMW_ERR_OVERLAP);
    expect_rejected("step 0", &plain, 0, p, g, m, v, NULL, LEN, ADAMW_ERR_STEP_ZERO);

    /* One byte past a 4-byte boundary: misaligned for float. */
    float *shifted[5];
    for (int i = 0; i < 5; i++) {
        shifted[i] = (float *)(void *)((unsigned char *)buffer(i) + 1);
    }
    expect_rejected("misaligned param", &ams, 1, shifted[0], g, m, v, x, LEN - 1, ADAMW_ERR_MISALIGNED_PARAM);
    expect_rejected("misaligned grad", &ams, 1, p, shifted[1], m, v, x, LEN - 1, ADAMW_ERR_MISALIGNED_GRAD);
    expect_rejected("misaligned exp_avg", &ams, 1, p, g, shifted[2], v, x, LEN - 1, ADAMW_ERR_MISALIGNED_EXP_AVG);
    expect_rejected("misaligned exp_avg_sq", &ams, 1, p, g, m, shifted[3], x, LEN - 1,
                    ADAMW_ERR_MISALIGNED_EXP_AVG_SQ);
    expect_rejected("misaligned max_exp_avg_sq", &ams, 1, p, g, m, v, shifted[4], LEN - 1,
                    ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ);

    struct {
        const char *what;
        adamw_config config;
        int32_t code;
    } bad[] = {
        {"lr -1", plain, ADAMW_ERR_INVALID_LR},
        {"beta1 1", plain, ADAMW_ERR_INVALID_BETA1},
        {"beta2 -0.5", plain, ADAMW_ERR_INVALID_BETA2},
        {"eps -1", plain, ADAMW_ERR_INVALID_EPS},
        {"weight_decay -1", plain, ADAMW_ERR_INVALID_WEIGHT_DECAY},
        {"amsgrad 2", plain, ADAMW_ERR_INVALID_AMSGRAD},
        {"maximize 2", plain, ADAMW_ERR_INVALID_MAXIMIZE},
        {"rounding 7", plain, ADAMW_ERR_INVALID_ROUNDING},
        {"decay_mode 9", plain, ADAMW_ERR_INVALID_DECAY_MODE},
    };
    bad[0].config.lr = -1.0;
    bad[1].config.beta1 = 1.0;
    bad[2].config.beta2 = -0.5;
    bad[3].config.eps = -1.0;
    bad[4].config.weight_decay = -1.0;
    bad[5].config.amsgrad = 2;
    bad[6].config.maximize = 2;
    bad[7].config.rounding = 7;
    bad[8].config.decay_mode = 9;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_rejected(bad[i].what, &bad[i].config, 1, p, g, m, v, NULL, LEN, bad[i].code);

        adamw_scalars out;
        memset(&out, 0xA5, sizeof out);
        adamw_scalars before = out;
        expect(bad[i].what, adamw_prepare(&bad[i].config, 1, &out), bad[i].code);
        expect_true("prepare left out unchanged", memcmp(&out, &before, sizeof out) == 0);
    }

    adamw_scalars scalars;
    expect("prepare NULL out", adamw_prepare(&plain, 1, NULL), ADAMW_ERR_NULL_OUT);
    expect("prepare NULL config", adamw_prepare(NULL, 1, &scalars), ADAMW_ERR_NULL_CONFIG);
    fill();
    expect("apply NULL scalars", adamw_apply(NULL, p, g, m, v, NULL, LEN), ADAMW_ERR_NULL_SCALARS);
    expect_true("apply NULL scalars wrote nothing", unchanged());

    /* The seed entry point: an invalid value and a valid step. */
    fill();
    expect("adamw_step beta2 1", adamw_step(p, g, m, v, LEN, 1, 1e-3, 0.9, 1.0, 1e-8, 0.0), ADAMW_ERR_INVALID_BETA2);
    expect_true("adamw_step beta2 1 wrote nothing", unchanged());
    expect("adamw_step valid", adamw_step(p, g, m, v, LEN, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0), ADAMW_OK);
    expect_true("adamw_step valid wrote param", !unchanged());

    /* The config variant, and prepare/apply with every option set. */
    adamw_config all = plain;
    all.amsgrad = 1;
    all.maximize = 1;
    all.rounding = ADAMW_ROUNDING_UNFUSED;
    all.decay_mode = ADAMW_DECAY_COUPLED_L2;
    fill();
    expect("adamw_step_config valid", adamw_step_config(&all, 3, p, g, m, v, x, LEN), ADAMW_OK);
    expect("adamw_prepare valid", adamw_prepare(&all, 3, &scalars), ADAMW_OK);
    expect("adamw_apply valid", adamw_apply(&scalars, p, g, m, v, x, LEN), ADAMW_OK);
    expect("adamw_apply len 0 with NULL", adamw_apply(&scalars, NULL, NULL, NULL, NULL, NULL, 0), ADAMW_OK);
    scalars.rounding = 7;
    fill();
    expect("adamw_apply rounding 7", adamw_apply(&scalars, p, g, m, v, x, LEN), ADAMW_ERR_INVALID_ROUNDING);
    expect_true("adamw_apply rounding 7 wrote nothing", unchanged());
}

int main(void) {
    check_messages();
    check_rejections();
    printf("abi_check: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
