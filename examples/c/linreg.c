/*
 * Trains three small linear regression models with the adamw C library and
 * prints the final parameters and losses as IEEE 754 bit patterns, so that
 * runs on different machines can be compared with `diff`:
 *
 *   A: adamw_prepare once per step, adamw_apply to the weight and the bias
 *      tensor, with AMSGrad.
 *   B: the basic adamw_step on each tensor.
 *   C: adamw_step_config with unfused rounding and coupled L2 decay.
 *
 * Then it prints the codes and messages of three rejected calls. The data
 * set and every float operation here are exact or correctly rounded in IEEE
 * single precision, so the output is the same on every target as long as
 * the compiler does not contract a * b + c into a fused multiply-add: build
 * with -ffp-contract=off. tests/ffi.rs computes the same output with the
 * Rust API and compares it with examples/c/linreg.expected.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adamw.h"

#define SAMPLES 64
#define FEATURES 3
#define STEPS 200

static float xs[SAMPLES][FEATURES];
static float ys[SAMPLES];

/* Small multiples of 1/8 and 1/64, so every value and the targets are exact. */
static void make_data(void) {
    for (int i = 0; i < SAMPLES; i++) {
        for (int d = 0; d < FEATURES; d++) {
            xs[i][d] = (float)((i * (7 + 2 * d) + 3 * d) % 17 - 8) / 8.0f;
        }
        float noise = (float)((i * 5) % 11 - 5) / 64.0f;
        ys[i] = 1.5f * xs[i][0] - 2.0f * xs[i][1] + 0.25f * xs[i][2] + 0.75f + noise;
    }
}

/* The model's tensors and their optimizer state. */
typedef struct {
    float w[FEATURES], w_grad[FEATURES], w_m[FEATURES], w_v[FEATURES], w_max[FEATURES];
    float b[1], b_grad[1], b_m[1], b_v[1], b_max[1];
} model;

/* Mean squared error; fills the gradients. */
static float loss_and_grad(model *md) {
    float sum_sq = 0.0f;
    float gw[FEATURES] = {0.0f, 0.0f, 0.0f};
    float gb = 0.0f;
    for (int i = 0; i < SAMPLES; i++) {
        float pred = md->w[0] * xs[i][0];
        pred = pred + md->w[1] * xs[i][1];
        pred = pred + md->w[2] * xs[i][2];
        pred = pred + md->b[0];
        float err = pred - ys[i];
        sum_sq = sum_sq + err * err;
        for (int d = 0; d < FEATURES; d++) {
            gw[d] = gw[d] + err * xs[i][d];
        }
        gb = gb + err;
    }
    /* d(mean(err^2))/d(pred) = 2 * err / SAMPLES, and 2 / 64 is exact. */
    const float scale = 2.0f / (float)SAMPLES;
    for (int d = 0; d < FEATURES; d++) {
        md->w_grad[d] = gw[d] * scale;
    }
    md->b_grad[0] = gb * scale;
    return sum_sq / (float)SAMPLES;
}

static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void print_model(const char *name, const model *md, float loss) {
    for (int d = 0; d < FEATURES; d++) {
        printf("%s w[%d] %08" PRIx32 "\n", name, d, bits(md->w[d]));
    }
    printf("%s b %08" PRIx32 "\n", name, bits(md->b[0]));
    printf("%s loss %08" PRIx32 "\n", name, bits(loss));
}

/* Prints the failed call and returns 1, for main's exit status. */
static int fail(const char *what, int32_t code) {
    printf("FAILED %s: %" PRId32 " %s\n", what, code, adamw_strerror(code));
    return 1;
}

static int train_prepare_apply(void) {
    model md = {0};
    adamw_config config = adamw_config_default();
    config.lr = 0.05;
    config.amsgrad = 1;
    for (uint64_t t = 1; t <= STEPS; t++) {
        loss_and_grad(&md);
        adamw_scalars scalars;
        int32_t rc = adamw_prepare(&config, t, &scalars);
        if (rc != ADAMW_OK) {
            return fail("adamw_prepare", rc);
        }
        rc = adamw_apply(&scalars, md.w, md.w_grad, md.w_m, md.w_v, md.w_max, FEATURES);
        if (rc != ADAMW_OK) {
            return fail("adamw_apply(w)", rc);
        }
        rc = adamw_apply(&scalars, md.b, md.b_grad, md.b_m, md.b_v, md.b_max, 1);
        if (rc != ADAMW_OK) {
            return fail("adamw_apply(b)", rc);
        }
    }
    print_model("A", &md, loss_and_grad(&md));
    return 0;
}

static int train_seed_step(void) {
    model md = {0};
    for (uint64_t t = 1; t <= STEPS; t++) {
        loss_and_grad(&md);
        int32_t rc = adamw_step(md.w, md.w_grad, md.w_m, md.w_v, FEATURES, t, 0.05, 0.9, 0.999, 1e-8, 0.0);
        if (rc != ADAMW_OK) {
            return fail("adamw_step(w)", rc);
        }
        rc = adamw_step(md.b, md.b_grad, md.b_m, md.b_v, 1, t, 0.05, 0.9, 0.999, 1e-8, 0.0);
        if (rc != ADAMW_OK) {
            return fail("adamw_step(b)", rc);
        }
    }
    print_model("B", &md, loss_and_grad(&md));
    return 0;
}

static int train_step_config(void) {
    model md = {0};
    adamw_config config = adamw_config_default();
    config.lr = 0.05;
    config.weight_decay = 0.1;
    config.rounding = ADAMW_ROUNDING_UNFUSED;
    config.decay_mode = ADAMW_DECAY_COUPLED_L2;
    for (uint64_t t = 1; t <= STEPS; t++) {
        loss_and_grad(&md);
        int32_t rc = adamw_step_config(&config, t, md.w, md.w_grad, md.w_m, md.w_v, NULL, FEATURES);
        if (rc != ADAMW_OK) {
            return fail("adamw_step_config(w)", rc);
        }
        rc = adamw_step_config(&config, t, md.b, md.b_grad, md.b_m, md.b_v, NULL, 1);
        if (rc != ADAMW_OK) {
            return fail("adamw_step_config(b)", rc);
        }
    }
    print_model("C", &md, loss_and_grad(&md));
    return 0;
}

static void print_error(const char *what, int32_t code) {
    printf("error %s %" PRId32 " %s\n", what, code, adamw_strerror(code));
}

static void show_rejected_calls(void) {
    model md = {0};
    print_error("step0", adamw_step(md.w, md.w_grad, md.w_m, md.w_v, FEATURES, 0, 0.05, 0.9, 0.999, 1e-8, 0.0));

    adamw_config config = adamw_config_default();
    config.rounding = 7;
    adamw_scalars scalars;
    print_error("rounding7", adamw_prepare(&config, 1, &scalars));

    print_error("overlap", adamw_step(md.w, md.w, md.w_m, md.w_v, FEATURES, 1, 0.05, 0.9, 0.999, 1e-8, 0.0));
}

int main(void) {
    make_data();
    int failed = train_prepare_apply();
    failed |= train_seed_step();
    failed |= train_step_config();
    show_rejected_calls();
    return failed;
}
