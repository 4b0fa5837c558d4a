/* Compiled body of eegbench.quantization.Quantization.calibrate_into (issue #9: compressed warm reads).
 *
 * out[i, o0:o0+b-a] = float32(((float64(src[rows[i], a:b]) * scale[r]) + offset[r]) * gain[r])
 *
 * The same float64 operations in the same order as NumPy's reference (Quantization.reconstruct),
 * rounded once to float32: built with -ffp-contract=off (no FMA contraction) and without fast-math,
 * on SSE2/AVX doubles (no x87 excess precision), so every value is bit for bit NumPy's
 * (tests/test_kernels.py). Built with the package (optional: the numba kernel, then NumPy, give the
 * same bits). A call costs ~0.3 us against ~2-3 us for numba's dispatcher: a window decodes 2-5
 * chunks, each calibrated by one call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NOGIL_SAMPLES (64 * 1024)

/* One row: n samples. Written as a plain loop over restrict-qualified rows so that GCC vectorises
 * it, and cloned per instruction set (AVX-512, AVX2, baseline x86-64: chosen once at load through an
 * ifunc), as numba compiles for the host CPU: the baseline SSE2 loop alone was ~4x slower. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define ROW_FN(NAME, T)                                                                            \
    CLONES static void NAME(const T *restrict srow, float *restrict orow, Py_ssize_t n, double s,    \
                            double o, double g)                                                     \
    {                                                                                               \
        for (Py_ssize_t j = 0; j < n; j++)                                                          \
            orow[j] = (float)(((double)srow[j] * s + o) * g);                                       \
    }

ROW_FN(row_int16, int16_t)
ROW_FN(row_int32, int32_t)

#define ROWS_LOOP(T, FN)                                                                   \
    for (Py_ssize_t i = 0; i < nrows; i++) {                                               \
        const int64_t r = rowp[i];                                                         \
        FN((const T *)(sbase + r * sstride0 + a * (Py_ssize_t)sizeof(T)),                  \
           (float *)(obase + i * ostride0) + o0, n, scale[r], offset[r], gain[r]);         \
    }

static int
as_index(PyObject *o, Py_ssize_t *v, const char *name)
{
    *v = PyLong_AsSsize_t(o);
    if (*v == -1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "calibrate: %s must be an int", name);
        return -1;
    }
    return 0;
}

static int
is_format(const Py_buffer *b, const char *codes, Py_ssize_t itemsize)
{
    const char *f = b->format;
    if (f == NULL || b->itemsize != itemsize)
        return 0;
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    return f[0] != '\0' && f[1] == '\0' && strchr(codes, f[0]) != NULL;
}

PyDoc_STRVAR(calibrate_doc,
"calibrate(src, a, b, rows, scale, offset, gain, out, o0) -> None\n\n"
"out[i, o0:o0+b-a] = float32(((float64(src[rows[i], a:b]) * scale[r]) + offset[r]) * gain[r]), r = rows[i].\n"
"src: 2-D int16/int32 counts whose samples are contiguous in a row; rows: int64;\n"
"scale, offset, gain: float64, one per row of src; out: writable 2-D float32, rows contiguous.\n"
"Everything indexed is checked: ValueError (nothing written) when something does not fit;\n"
"TypeError (nothing written) for dtypes or layouts it was not built for (the caller then uses NumPy).");

static PyObject *
calibrate(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 9) {
        PyErr_Format(PyExc_TypeError, "calibrate takes 9 arguments (%zd given)", nargs);
        return NULL;
    }
    Py_ssize_t a, b, o0;
    if (as_index(args[1], &a, "a") || as_index(args[2], &b, "b") || as_index(args[8], &o0, "o0"))
        return NULL;
    Py_buffer bufs[6];
    const int flags[6] = {PyBUF_STRIDES | PyBUF_FORMAT, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT,
                          PyBUF_C_CONTIGUOUS | PyBUF_FORMAT, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT,
                          PyBUF_C_CONTIGUOUS | PyBUF_FORMAT, PyBUF_WRITABLE | PyBUF_STRIDES | PyBUF_FORMAT};
    const int which[6] = {0, 3, 4, 5, 6, 7};
    int got = 0;
    PyObject *result = NULL;
    for (; got < 6; got++) {
        if (PyObject_GetBuffer(args[which[got]], &bufs[got], flags[got]) < 0)
            goto done;
    }
    Py_buffer *src = &bufs[0], *rows = &bufs[1], *sc = &bufs[2], *of = &bufs[3], *gn = &bufs[4], *out = &bufs[5];
    /* the count dtypes a Quantization holds */
    const int kind = is_format(src, "h", 2) ? 1 : is_format(src, "il", 4) ? 2 : 0;
    if (kind == 0) {
        PyErr_SetString(PyExc_TypeError, "calibrate: counts of a dtype this kernel was not built for");
        goto done;
    }
    const Py_ssize_t n = b - a;
    if (src->ndim != 2 || (src->shape[1] > 1 && src->strides[1] != src->itemsize)
        || out->ndim != 2 || !is_format(out, "f", 4) || (out->shape[1] > 1 && out->strides[1] != 4)
        || !is_format(rows, "qlQL", 8) || !is_format(sc, "d", 8) || !is_format(of, "d", 8) || !is_format(gn, "d", 8)) {
        PyErr_SetString(PyExc_TypeError,
                        "calibrate: src and out must be 2-D with contiguous rows (out float32), rows int64, "
                        "scale/offset/gain float64");
        goto done;
    }
    const Py_ssize_t nch = src->shape[0], nrows = rows->len / 8;
    if (!(0 <= a && a <= b && b <= src->shape[1] && sc->len / 8 == nch && of->len / 8 == nch && gn->len / 8 == nch
          && out->shape[0] == nrows && 0 <= o0 && o0 + n <= out->shape[1])) {
        PyErr_Format(PyExc_ValueError, "calibrate: counts (%zd, %zd)[%zd:%zd] do not fit out (%zd, %zd) at %zd "
                     "for %zd rows", nch, src->shape[1], a, b, out->shape[0], out->shape[1], o0, nrows);
        goto done;
    }
    const int64_t *rowp = (const int64_t *)rows->buf;
    for (Py_ssize_t i = 0; i < nrows; i++) {
        if (rowp[i] < 0 || rowp[i] >= nch) {
            PyErr_Format(PyExc_ValueError, "calibrate: row %lld is not a channel of these %zd", (long long)rowp[i], nch);
            goto done;
        }
    }
    {
        const double *scale = (const double *)sc->buf, *offset = (const double *)of->buf, *gain = (const double *)gn->buf;
        const char *sbase = (const char *)src->buf;
        char *obase = (char *)out->buf;
        const Py_ssize_t sstride0 = src->strides[0], ostride0 = out->strides[0];
        PyThreadState *ts = NULL;
        if (nrows * n >= NOGIL_SAMPLES)
            ts = PyEval_SaveThread();
        if (kind == 1) {
            ROWS_LOOP(int16_t, row_int16)
        } else {
            ROWS_LOOP(int32_t, row_int32)
        }
        if (ts != NULL)
            PyEval_RestoreThread(ts);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&bufs[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"calibrate", (PyCFunction)(void (*)(void))calibrate, METH_FASTCALL, calibrate_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_calibrate", "Compiled body of Quantization.calibrate_into (see calibrate).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__calibrate(void)
{
    return PyModule_Create(&module);
}
