/* The gate passes for one floating type: included twice by _gates.h with GRUCY_R = float and
   double. No include guard on purpose. Numbers (1)-(4) are the equations in _gru.pyx.
   Row strides: G = 3H for a, hp, g, da, dgs; H for everything else. */

#define R GRUCY_R
#define SIG GRUCY_SIGMOID
#define TNH GRUCY_TANH
#define P ptrdiff_t

/* ---- forward ---------------------------------------------------------------------------- */

/* reset_after=True, inference: a = xp rows, hp = h W_hhᵀ rows; h (in/out) and out := h'.
   hp's r|z columns are overwritten with r|z: (1) and (2) run first as one loop over the 2H
   contiguous columns, then (3) and (4). One loop for all four was 10-24% slower (C
   microbenchmark, AVX2, B·H from 512 to 16384 units): the pass waits on its longest chain
   of dependent operations (σ, then tanh through r, then h'), and split, the σ loop has
   independent chains half as long. r and z pass through memory unrounded: same bits. */
GRUCY_INLINE void GRUCY_FN(after_infer_body)(P n, P H, const R *restrict a,
        R *restrict hp, const R *restrict bhn, R *restrict h, R *restrict out) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        const R *ab = a + b * G;
        R *hb = hp + b * G, *hh = h + b * H, *o = out + b * H;
        for (P j = 0; j < 2 * H; j++)
            hb[j] = SIG(ab[j] + hb[j]);                                 /* (1), (2) */
        for (P j = 0; j < H; j++) {
            R r = hb[j], z = hb[H + j];
            R nn = TNH(ab[2 * H + j] + r * (hb[2 * H + j] + bhn[j]));   /* (3) */
            /* (4) as written, not h + z(n - h): that is one operation fewer, but for h = ±inf
               and z = 0 it reads inf + 0·(-inf) = NaN where (1 - z)h + zn keeps the state,
               as the reference and torch.nn.GRU do (tests/test_kernels_torch.py) */
            R v = (1 - z) * hh[j] + z * nn;
            hh[j] = v;
            o[j] = v;
        }
    }
}
GRUCY_ENTRY(GRUCY_FN(after_infer), GRUCY_FN(after_infer_body),
    (P n, P H, const R *restrict a, R *restrict hp, const R *restrict bhn,
     R *restrict h, R *restrict out), (n, H, a, hp, bhn, h, out))

/* reset_after=True, training: g holds xp rows on entry, [r | z | n] on exit; h (in/out) and
   out := h'. σ first over r|z, then tanh, as in after_infer. (Backward reads the state
   before each step back from out and h0, and recomputes W_hn h: the cache holds no state
   plane of its own.) */
GRUCY_INLINE void GRUCY_FN(after_train_body)(P n, P H, R *restrict g, const R *restrict hp,
        const R *restrict bhn, R *restrict h, R *restrict out) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        R *gb = g + b * G;
        const R *hb = hp + b * G;
        R *hh = h + b * H, *o = out + b * H;
        for (P j = 0; j < 2 * H; j++)
            gb[j] = SIG(gb[j] + hb[j]);                                 /* (1), (2) */
        for (P j = 0; j < H; j++) {
            R hj = hh[j], r = gb[j], z = gb[H + j];
            R nn = TNH(gb[2 * H + j] + r * (hb[2 * H + j] + bhn[j]));   /* (3) */
            R v = (1 - z) * hj + z * nn;                                /* (4), as above */
            gb[2 * H + j] = nn;
            hh[j] = v;
            o[j] = v;
        }
    }
}
GRUCY_ENTRY(GRUCY_FN(after_train), GRUCY_FN(after_train_body),
    (P n, P H, R *restrict g, const R *restrict hp, const R *restrict bhn, R *restrict h,
     R *restrict out), (n, H, g, hp, bhn, h, out))

/* reset_after=False, first half: rz (2H of each row, in place) := σ(a + rz) [(1), (2)];
   rh := r ⊙ h. Inference: a = xp rows, rz = hp rows; training: a = hp rows, rz = gates rows. */
GRUCY_INLINE void GRUCY_FN(seed_rz_body)(P n, P H, const R *restrict a, R *restrict rz,
        const R *restrict h, R *restrict rh) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        const R *ab = a + b * G, *hh = h + b * H;
        R *q = rz + b * G, *o = rh + b * H;
        for (P j = 0; j < H; j++) {
            R r = SIG(ab[j] + q[j]);                                    /* (1) */
            q[j] = r;
            o[j] = r * hh[j];
        }
        for (P j = H; j < 2 * H; j++)
            q[j] = SIG(ab[j] + q[j]);                                   /* (2) */
    }
}
GRUCY_ENTRY(GRUCY_FN(seed_rz), GRUCY_FN(seed_rz_body),
    (P n, P H, const R *restrict a, R *restrict rz, const R *restrict h, R *restrict rh),
    (n, H, a, rz, h, rh))

/* reset_after=False, inference, second half: hp = [r | z | W_hn(r ⊙ h)] rows; (3), (4). */
GRUCY_INLINE void GRUCY_FN(seed_n_infer_body)(P n, P H, const R *restrict a,
        const R *restrict hp, R *restrict h, R *restrict out) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        const R *ab = a + b * G, *hb = hp + b * G;
        R *hh = h + b * H, *o = out + b * H;
        for (P j = 0; j < H; j++) {
            R z = hb[H + j];
            R nn = TNH(ab[2 * H + j] + hb[2 * H + j]);                  /* (3) */
            R v = (1 - z) * hh[j] + z * nn;                             /* (4), as above */
            hh[j] = v;
            o[j] = v;
        }
    }
}
GRUCY_ENTRY(GRUCY_FN(seed_n_infer), GRUCY_FN(seed_n_infer_body),
    (P n, P H, const R *restrict a, const R *restrict hp, R *restrict h, R *restrict out),
    (n, H, a, hp, h, out))

/* reset_after=False, training, second half: g = [r | z | xp_n] -> [r | z | n] rows,
   hp rows hold W_hn(r ⊙ h) in their n block; h and out := h'. (Backward rebuilds r ⊙ h
   from r and the state before the step.) */
GRUCY_INLINE void GRUCY_FN(seed_n_train_body)(P n, P H, R *restrict g, const R *restrict hp,
        R *restrict h, R *restrict out) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        R *gb = g + b * G;
        const R *hb = hp + b * G;
        R *hh = h + b * H, *o = out + b * H;
        for (P j = 0; j < H; j++) {
            R hj = hh[j];
            R z = gb[H + j];
            R nn = TNH(gb[2 * H + j] + hb[2 * H + j]);                  /* (3) */
            R v = (1 - z) * hj + z * nn;                                /* (4), as above */
            gb[2 * H + j] = nn;
            hh[j] = v;
            o[j] = v;
        }
    }
}
GRUCY_ENTRY(GRUCY_FN(seed_n_train), GRUCY_FN(seed_n_train_body),
    (P n, P H, R *restrict g, const R *restrict hp, R *restrict h, R *restrict out),
    (n, H, g, hp, h, out))

/* ---- backward --------------------------------------------------------------------------- */

/* reset_after=True: undo (4), (3), (2), (1). dh (in/out) comes in as dL/dh' without this
   step's dout (added here unless dout is NULL) and leaves as the direct part of dL/dh.
   hn holds W_hn h (no bias) on entry and r ⊙ da_n (for dW_hn, db_hn) on exit;
   da := [da_r | da_z | da_n]; dgs := [da_r | da_z | r ⊙ da_n], the rows of the step's
   GEMM dh += dgs W_hh. */
GRUCY_INLINE void GRUCY_FN(back_after_body)(P n, P H, const R *restrict g,
        const R *restrict hprev, const R *restrict bhn, const R *restrict dout,
        R *restrict dh, R *restrict hn, R *restrict da, R *restrict dgs) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        const R *gb = g + b * G, *hv = hprev + b * H;
        const R *dob = dout ? dout + b * H : NULL;
        R *d_h = dh + b * H, *a = da + b * G, *q = hn + b * H, *s = dgs + b * G;
        if (dob)
            for (P j = 0; j < H; j++)
                d_h[j] += dob[j];                    /* out[t] is this step's h' */
        for (P j = 0; j < H; j++) {
            R r = gb[j], z = gb[H + j], nn = gb[2 * H + j], d = d_h[j];
            R dan = d * z * (1 - nn * nn);           /* (4) h' = (1-z)h + zn, (3) tanh */
            R daz = d * (nn - hv[j]) * z * (1 - z);  /* (4), (2) z = σ(a_z) */
            R dar = dan * (q[j] + bhn[j]) * r * (1 - r);  /* (3) through r, (1) r = σ(a_r) */
            R v = r * dan;
            a[j] = dar;
            a[H + j] = daz;
            a[2 * H + j] = dan;
            q[j] = v;
            s[j] = dar;
            s[H + j] = daz;
            s[2 * H + j] = v;
            /* (4) through (1 - z)h. Not d - d·z: with z within a few ulp of 1, d·z rounds to
               about an ulp of d, and the difference kept that error whole; 1 - z is exact for
               z >= 1/2, so d·(1 - z), the reference's form, rounds once. */
            d_h[j] = d * (1 - z);
        }
    }
}
GRUCY_ENTRY(GRUCY_FN(back_after), GRUCY_FN(back_after_body),
    (P n, P H, const R *restrict g, const R *restrict hprev, const R *restrict bhn,
     const R *restrict dout, R *restrict dh, R *restrict hn, R *restrict da, R *restrict dgs),
    (n, H, g, hprev, bhn, dout, dh, hn, da, dgs))

/* reset_after=False: rh := r ⊙ h for n rows (the operand of dW_hn), from the gates' r block
   and hprev. */
GRUCY_INLINE void GRUCY_FN(reset_state_body)(P n, P H, const R *restrict g,
        const R *restrict hprev, R *restrict rh) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        const R *gb = g + b * G, *hv = hprev + b * H;
        R *o = rh + b * H;
        for (P j = 0; j < H; j++)
            o[j] = gb[j] * hv[j];
    }
}
GRUCY_ENTRY(GRUCY_FN(reset_state), GRUCY_FN(reset_state_body),
    (P n, P H, const R *restrict g, const R *restrict hprev, R *restrict rh),
    (n, H, g, hprev, rh))

/* reset_after=False, first half: undo (4), (3), (2); dout as in back_after. Writes da_z,
   da_n and dgs's n block (da_n, the rows of drh = da_n W_hn). */
GRUCY_INLINE void GRUCY_FN(back_seed_nz_body)(P n, P H, const R *restrict g,
        const R *restrict hprev, const R *restrict dout, R *restrict dh, R *restrict da,
        R *restrict dgs) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        const R *gb = g + b * G, *hv = hprev + b * H;
        const R *dob = dout ? dout + b * H : NULL;
        R *d_h = dh + b * H, *a = da + b * G, *s = dgs + b * G;
        if (dob)
            for (P j = 0; j < H; j++)
                d_h[j] += dob[j];
        for (P j = 0; j < H; j++) {
            R z = gb[H + j], nn = gb[2 * H + j], d = d_h[j];
            R dan = d * z * (1 - nn * nn);           /* (4), (3) n = tanh(a_n + W_hn(r ⊙ h)) */
            a[2 * H + j] = dan;
            a[H + j] = d * (nn - hv[j]) * z * (1 - z);  /* (4), (2) z = σ(a_z) */
            s[2 * H + j] = dan;
            d_h[j] = d * (1 - z);                   /* (4), as above */
        }
    }
}
GRUCY_ENTRY(GRUCY_FN(back_seed_nz), GRUCY_FN(back_seed_nz_body),
    (P n, P H, const R *restrict g, const R *restrict hprev, const R *restrict dout,
     R *restrict dh, R *restrict da, R *restrict dgs), (n, H, g, hprev, dout, dh, da, dgs))

/* reset_after=False, second half: undo (1) given drh = dL/d(r ⊙ h) = da_n W_hn. Writes da_r
   and dgs's r|z blocks (the rows of dh += dgs[:, :2H] W_hh[:2H]). */
GRUCY_INLINE void GRUCY_FN(back_seed_r_body)(P n, P H, const R *restrict g,
        const R *restrict hprev, const R *restrict drh, R *restrict dh, R *restrict da,
        R *restrict dgs) {
    const P G = 3 * H;
    for (P b = 0; b < n; b++) {
        const R *gb = g + b * G, *hv = hprev + b * H, *e = drh + b * H;
        R *d_h = dh + b * H, *a = da + b * G, *s = dgs + b * G;
        for (P j = 0; j < H; j++) {
            R r = gb[j];
            R dar = e[j] * hv[j] * r * (1 - r);      /* (1) r = σ(a_r) */
            d_h[j] += e[j] * r;                      /* (3) through r ⊙ h */
            a[j] = dar;
            s[j] = dar;
            s[H + j] = a[H + j];
        }
    }
}
GRUCY_ENTRY(GRUCY_FN(back_seed_r), GRUCY_FN(back_seed_r_body),
    (P n, P H, const R *restrict g, const R *restrict hprev, const R *restrict drh,
     R *restrict dh, R *restrict da, R *restrict dgs), (n, H, g, hprev, drh, dh, da, dgs))

/* ---- the passes over row blocks on the pool ---------------------------------------------

   name_par(parts, n, H, ...) runs the pass `name` over its n rows split into `parts`
   contiguous blocks at once on grucy's pool (grucy/_pool.h), or directly when parts <= 1.
   Rows are independent in every pass, so the split changes no result. */

#define GRUCY_PAR_BEGIN(name, fields)                                                  \
    typedef struct { P H; fields } GRUCY_FN(name##_job);                               \
    static void GRUCY_FN(name##_rows)(const void *job_, P b0, P n) {                   \
        const GRUCY_FN(name##_job) *j = (const GRUCY_FN(name##_job) *)job_;            \
        const P H = j->H, G = 3 * H;                                                   \
        (void)G;
#define GRUCY_ROWS(p, stride) ((p) ? (p) + b0 * (stride) : (p))

GRUCY_PAR_BEGIN(after_infer, const R *a; R *hp; const R *bhn; R *h; R *out;)
    GRUCY_FN(after_infer)(n, H, j->a + b0 * G, j->hp + b0 * G, j->bhn, j->h + b0 * H,
                          j->out + b0 * H);
}
static inline void GRUCY_FN(after_infer_par)(int parts, P n, P H, const R *a, R *hp,
        const R *bhn, R *h, R *out) {
    GRUCY_FN(after_infer_job) j = {H, a, hp, bhn, h, out};
    grucy_split(parts, n, GRUCY_FN(after_infer_rows), &j);
}

GRUCY_PAR_BEGIN(after_train, R *g; const R *hp; const R *bhn; R *h; R *out;)
    GRUCY_FN(after_train)(n, H, j->g + b0 * G, j->hp + b0 * G, j->bhn, j->h + b0 * H,
                          j->out + b0 * H);
}
static inline void GRUCY_FN(after_train_par)(int parts, P n, P H, R *g, const R *hp,
        const R *bhn, R *h, R *out) {
    GRUCY_FN(after_train_job) j = {H, g, hp, bhn, h, out};
    grucy_split(parts, n, GRUCY_FN(after_train_rows), &j);
}

GRUCY_PAR_BEGIN(seed_rz, const R *a; R *rz; const R *h; R *rh;)
    GRUCY_FN(seed_rz)(n, H, j->a + b0 * G, j->rz + b0 * G, j->h + b0 * H, j->rh + b0 * H);
}
static inline void GRUCY_FN(seed_rz_par)(int parts, P n, P H, const R *a, R *rz,
        const R *h, R *rh) {
    GRUCY_FN(seed_rz_job) j = {H, a, rz, h, rh};
    grucy_split(parts, n, GRUCY_FN(seed_rz_rows), &j);
}

GRUCY_PAR_BEGIN(seed_n_infer, const R *a; const R *hp; R *h; R *out;)
    GRUCY_FN(seed_n_infer)(n, H, j->a + b0 * G, j->hp + b0 * G, j->h + b0 * H,
                           j->out + b0 * H);
}
static inline void GRUCY_FN(seed_n_infer_par)(int parts, P n, P H, const R *a,
        const R *hp, R *h, R *out) {
    GRUCY_FN(seed_n_infer_job) j = {H, a, hp, h, out};
    grucy_split(parts, n, GRUCY_FN(seed_n_infer_rows), &j);
}

GRUCY_PAR_BEGIN(seed_n_train, R *g; const R *hp; R *h; R *out;)
    GRUCY_FN(seed_n_train)(n, H, j->g + b0 * G, j->hp + b0 * G, j->h + b0 * H,
                           j->out + b0 * H);
}
static inline void GRUCY_FN(seed_n_train_par)(int parts, P n, P H, R *g, const R *hp,
        R *h, R *out) {
    GRUCY_FN(seed_n_train_job) j = {H, g, hp, h, out};
    grucy_split(parts, n, GRUCY_FN(seed_n_train_rows), &j);
}

GRUCY_PAR_BEGIN(back_after, const R *g; const R *hprev; const R *bhn; const R *dout; R *dh;
                R *hn; R *da; R *dgs;)
    GRUCY_FN(back_after)(n, H, j->g + b0 * G, j->hprev + b0 * H, j->bhn,
                         GRUCY_ROWS(j->dout, H), j->dh + b0 * H, j->hn + b0 * H,
                         j->da + b0 * G, j->dgs + b0 * G);
}
static inline void GRUCY_FN(back_after_par)(int parts, P n, P H, const R *g,
        const R *hprev, const R *bhn, const R *dout, R *dh, R *hn, R *da, R *dgs) {
    GRUCY_FN(back_after_job) j = {H, g, hprev, bhn, dout, dh, hn, da, dgs};
    grucy_split(parts, n, GRUCY_FN(back_after_rows), &j);
}

GRUCY_PAR_BEGIN(back_seed_nz, const R *g; const R *hprev; const R *dout; R *dh; R *da;
                R *dgs;)
    GRUCY_FN(back_seed_nz)(n, H, j->g + b0 * G, j->hprev + b0 * H, GRUCY_ROWS(j->dout, H),
                           j->dh + b0 * H, j->da + b0 * G, j->dgs + b0 * G);
}
static inline void GRUCY_FN(back_seed_nz_par)(int parts, P n, P H, const R *g,
        const R *hprev, const R *dout, R *dh, R *da, R *dgs) {
    GRUCY_FN(back_seed_nz_job) j = {H, g, hprev, dout, dh, da, dgs};
    grucy_split(parts, n, GRUCY_FN(back_seed_nz_rows), &j);
}

GRUCY_PAR_BEGIN(back_seed_r, const R *g; const R *hprev; const R *drh; R *dh; R *da;
                R *dgs;)
    GRUCY_FN(back_seed_r)(n, H, j->g + b0 * G, j->hprev + b0 * H, j->drh + b0 * H,
                          j->dh + b0 * H, j->da + b0 * G, j->dgs + b0 * G);
}
static inline void GRUCY_FN(back_seed_r_par)(int parts, P n, P H, const R *g,
        const R *hprev, const R *drh, R *dh, R *da, R *dgs) {
    GRUCY_FN(back_seed_r_job) j = {H, g, hprev, drh, dh, da, dgs};
    grucy_split(parts, n, GRUCY_FN(back_seed_r_rows), &j);
}

#undef GRUCY_PAR_BEGIN
#undef GRUCY_ROWS

/* Bias gradients: out (cols,) += the rows of a (rows, cols; row stride ld) summed, row by
   row in order (vectorised across columns), in double whatever R is: a backward adds one
   chunk of about 128 rows at a time into the same sums, and float sums carried over
   thousands of chunks were 10-50x further from the truth than torch's bias gradients
   (2.7e-6 to 8.5e-6 of the largest entry at 8,000 to 256,000 rows). */
GRUCY_INLINE void GRUCY_FN(colsum_body)(P rows, P cols, P ld, const R *restrict a,
        double *restrict out) {
    for (P i = 0; i < rows; i++) {
        const R *row = a + i * ld;
        for (P j = 0; j < cols; j++)
            out[j] += (double)row[j];
    }
}
GRUCY_ENTRY(GRUCY_FN(colsum), GRUCY_FN(colsum_body),
    (P rows, P cols, P ld, const R *restrict a, double *restrict out), (rows, cols, ld, a, out))

/* ---- test hook: the point functions over an array, compiled like the passes ------------- */

GRUCY_INLINE void GRUCY_FN(map_sigmoid_body)(P n, const R *restrict a, R *restrict out) {
    for (P i = 0; i < n; i++)
        out[i] = SIG(a[i]);
}
GRUCY_ENTRY(GRUCY_FN(map_sigmoid), GRUCY_FN(map_sigmoid_body),
    (P n, const R *restrict a, R *restrict out), (n, a, out))

GRUCY_INLINE void GRUCY_FN(map_tanh_body)(P n, const R *restrict a, R *restrict out) {
    for (P i = 0; i < n; i++)
        out[i] = TNH(a[i]);
}
GRUCY_ENTRY(GRUCY_FN(map_tanh), GRUCY_FN(map_tanh_body),
    (P n, const R *restrict a, R *restrict out), (n, a, out))

#undef R
#undef SIG
#undef TNH
#undef P
