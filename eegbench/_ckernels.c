/* eegbench's two small C kernels (issue #9), built with the package (optional: without a C compiler
 * the readers fall back to NumPy and numba, with the same bytes and bits):
 *
 * copy_window  a warm window copied out of a map of uncompressed chunks, one call for every row
 *              piece (eegbench.formats._chunks: small windows paid ~10 us of NumPy per read);
 * calibrate    the body of Quantization.calibrate_into: integer counts to float32 volts with the
 *              float64 arithmetic of the NumPy reference, bit for bit.
 *
 * Importing them costs nothing measurable, unlike a JIT (numba's import and code generation took
 * 0.3-0.6 s a process, paid again by every fresh DataLoader worker).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static int
as_index(PyObject *o, Py_ssize_t *v, const char *fn, const char *name)
{
    *v = PyLong_AsSsize_t(o);
    if (*v == -1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be an int", fn, name);
        return -1;
    }
    return 0;
}

/* ---- copy_window ---------------------------------------------------------------------------------
 * A window of C channels spanning k chunks is C * k short row pieces (64 x 3 pieces of 40-640 bytes
 * for a 2-s window of 1-s chunks at 160 Hz). NumPy copies them at ~40 ns a row plus ~1 us of Python
 * per chunk, which on small windows costs as much as the bytes; one call here copies every piece
 * with memcpy. Bytes move unchanged, so the copy is exact for every dtype. */
/* Windows at least this large are copied without the GIL (another thread may decode meanwhile);
 * below it, releasing and taking the GIL back costs more than it frees. */
#define NOGIL_BYTES (64 * 1024)

/* One row piece with non-temporal (streaming) stores: the aligned middle of the destination is
 * written whole lines at a time without being read first; the unaligned head and tail by memcpy.
 * 64-byte AVX-512 stores where the CPU has them (a 129 ch x 1000 window into a 33 MB batch here:
 * 29.6 us against 31.5 with 16-byte SSE2 stores and 35 us with memcpy; 28.2 us into a cached
 * window buffer), else 16-byte SSE2 stores, else memcpy. */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_STREAM 1
/* The unaligned head of a piece (up to the first byte at a multiple of align) by memcpy. */
static inline void
copy_head(char **d, const char **s, size_t *n, uintptr_t align)
{
    size_t head = (size_t)(-(uintptr_t)*d & (align - 1));
    if (head > *n)
        head = *n;
    memcpy(*d, *s, head);
    *d += head;
    *s += head;
    *n -= head;
}

__attribute__((target("avx512f"))) static void
stream_piece64(char *d, const char *s, size_t n)
{
    copy_head(&d, &s, &n, 64);
    for (; n >= 64; n -= 64, d += 64, s += 64)
        _mm512_stream_si512((__m512i *)d, _mm512_loadu_si512((const void *)s));
    memcpy(d, s, n);
}

static void
stream_piece16(char *d, const char *s, size_t n)
{
    copy_head(&d, &s, &n, 16);
    for (; n >= 16; n -= 16, d += 16, s += 16)
        _mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
    memcpy(d, s, n);
}

static void (*stream_piece)(char *, const char *, size_t) = stream_piece16; /* set at import */
#endif

PyDoc_STRVAR(copy_window_doc,
"copy_window(out, view, offsets, start, stop, chunk_samples, itemsize, stream=False) -> bool\n\n"
"out[c, :] = samples [start, stop) of channel c for every row c of out, where chunk i is\n"
"(out.shape[0], chunk_samples) samples of itemsize bytes, C order, at byte offsets[i] of view\n"
"(any buffer). out: a writable 2-D buffer whose rows are contiguous, stop - start samples wide.\n"
"offsets: int64, one per chunk. Returns False, nothing written, when an offset of the window's\n"
"chunks is negative (not checked yet in this process). Raises ValueError for a chunk outside view\n"
"or an out of the wrong shape: nothing is ever read or written out of bounds.\n"
"stream: write out with non-temporal stores (for out inside a batch larger than the CPU caches:\n"
"its lines are then not read from memory before being written); the same bytes.");

static PyObject *
copy_window(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 7 && nargs != 8) {
        PyErr_Format(PyExc_TypeError, "copy_window takes 7 or 8 arguments (%zd given)", nargs);
        return NULL;
    }
    int stream = 0;
    if (nargs == 8 && (stream = PyObject_IsTrue(args[7])) < 0)
        return NULL;
    Py_ssize_t start, stop, cs, itemsize;
    if (as_index(args[3], &start, "copy_window", "start") || as_index(args[4], &stop, "copy_window", "stop")
        || as_index(args[5], &cs, "copy_window", "chunk_samples")
        || as_index(args[6], &itemsize, "copy_window", "itemsize"))
        return NULL;
    if (start < 0 || stop <= start || cs <= 0 || itemsize <= 0) {
        PyErr_SetString(PyExc_ValueError, "copy_window: need 0 <= start < stop, chunk_samples > 0, itemsize > 0");
        return NULL;
    }
    Py_buffer out, view, offs;
    if (PyObject_GetBuffer(args[0], &out, PyBUF_WRITABLE | PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&out);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &offs, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&out);
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t width = stop - start;
    const Py_ssize_t first = start / cs, last = (stop - 1) / cs;
    if (out.ndim != 2 || out.itemsize != itemsize || out.shape[1] != width
        || (width > 1 && out.strides[1] != itemsize)) {
        PyErr_SetString(PyExc_ValueError,
                        "copy_window: out must be 2-D, (channels, stop - start) items of itemsize bytes, rows contiguous");
        goto done;
    }
    if (offs.itemsize != 8 || offs.format == NULL || strchr("qlQL", offs.format[0]) == NULL
        || offs.format[1] != '\0') {
        PyErr_SetString(PyExc_ValueError, "copy_window: offsets must be int64");
        goto done;
    }
    if (last >= offs.len / 8) {
        PyErr_SetString(PyExc_ValueError, "copy_window: the window ends past the last chunk's offset");
        goto done;
    }
    const int64_t *offsets = (const int64_t *)offs.buf;
    const Py_ssize_t rows = out.shape[0];
    const Py_ssize_t src_row = cs * itemsize;
    const Py_ssize_t chunk_bytes = rows * src_row;
    for (Py_ssize_t ci = first; ci <= last; ci++) {
        if (offsets[ci] < 0) {
            result = Py_False;
            goto done;
        }
        if (offsets[ci] > (int64_t)(view.len - chunk_bytes)) {
            PyErr_Format(PyExc_ValueError, "copy_window: chunk %zd (byte %lld) is outside the %zd-byte view",
                         ci, (long long)offsets[ci], view.len);
            goto done;
        }
    }
    {
        char *const d0 = (char *)out.buf;
        const char *const s0 = (const char *)view.buf;
        const Py_ssize_t drow = out.strides[0];
        PyThreadState *ts = NULL;
        if (rows * width * itemsize >= NOGIL_BYTES)
            ts = PyEval_SaveThread();
        /* chunk by chunk, each chunk's rows in turn: a middle chunk is then one sequential stream of
         * its bytes. Row by row (each output row written once, its pieces read from the chunks in
         * turn) was 1.1-1.3x slower on windows that come from DRAM (64 ch x 320 from 0.5-s chunks:
         * 7.3 against 5.7 us; 129 ch x 1000 from 0.5-s chunks: 41.5 against 32.7 us). */
#ifdef HAVE_STREAM
        if (stream) {
            /* chunk by chunk as below (row by row, with whole lines streamed across piece
             * boundaries, was slower: 42 against 31 us for the window above) */
            Py_ssize_t col = 0;
            for (Py_ssize_t ci = first; ci <= last; ci++) {
                const Py_ssize_t c0 = ci * cs;
                const Py_ssize_t a = (start > c0 ? start : c0) - c0;
                const Py_ssize_t b = (stop < c0 + cs ? stop : c0 + cs) - c0;
                const size_t n = (size_t)((b - a) * itemsize);
                for (Py_ssize_t r = 0; r < rows; r++)
                    stream_piece(d0 + r * drow + col, s0 + offsets[ci] + r * src_row + a * itemsize, n);
                col += (Py_ssize_t)n;
            }
            _mm_sfence(); /* streamed stores are weakly ordered: visible before we return */
            if (ts != NULL)
                PyEval_RestoreThread(ts);
            result = Py_True;
            goto done;
        }
#endif
        Py_ssize_t col = 0;
        for (Py_ssize_t ci = first; ci <= last; ci++) {
            const Py_ssize_t c0 = ci * cs;
            const Py_ssize_t a = (start > c0 ? start : c0) - c0;
            const Py_ssize_t b = (stop < c0 + cs ? stop : c0 + cs) - c0;
            const size_t n = (size_t)((b - a) * itemsize);
            const char *s = s0 + offsets[ci] + a * itemsize;
            char *d = d0 + col;
            for (Py_ssize_t r = 0; r < rows; r++) {
                memcpy(d, s, n);
                d += drow;
                s += src_row;
            }
            col += (Py_ssize_t)n;
        }
        if (ts != NULL)
            PyEval_RestoreThread(ts);
    }
    result = Py_True;
done:
    PyBuffer_Release(&offs);
    PyBuffer_Release(&view);
    PyBuffer_Release(&out);
    Py_XINCREF(result);
    return result;
}

/* ---- calibrate -------------------------------------------------------------------------------------
 * The body of eegbench.quantization.Quantization.calibrate_into (compressed warm reads).
 *
 * out[i, o0:o0+b-a] = float32(((float64(src[rows[i], a:b]) * scale[r]) + offset[r]) * gain[r])
 *
 * The same float64 operations in the same order as NumPy's reference (Quantization.reconstruct),
 * rounded once to float32: built with -ffp-contract=off (no FMA contraction) and without fast-math,
 * on SSE2/AVX doubles (no x87 excess precision), so every value is bit for bit NumPy's
 * (tests/test_kernels.py); where it was not built, the numba kernel, then NumPy, give the same
 * bits. A call costs ~0.3 us against ~2-3 us for numba's dispatcher: a window decodes 2-5
 * chunks, each calibrated by one call.
 */
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

ROW_FN(row3_int16, int16_t)
ROW_FN(row3_int32, int32_t)

/* One multiply where it gives the same bits: out = float32(float64(x) * k). With o = -0.0, or
 * o = +0.0 and s > 0 (x * s is then never -0.0), adding o changes nothing; then
 *   g == 1:                       (x * s) * 1 == x * s exactly: k = s;
 *   s a power of two (|s| in [2^-900, 2^900]) and s * g a normal double: x * s is exact (|x| < 2^31)
 *                                 and so is s * g, so (x * s) * g and x * (s * g) are the one real
 *                                 number x * s * g rounded once: k = s * g.
 * Typical stores (scale 0.5 or 1 uV per count, gain 1e-6 V per uV) take the second: 1.27x faster
 * than three operations per sample here (129 x 500 int16: 5.2 against 6.6 us). tests/test_kernels.py
 * compares every case with NumPy. */
#define ROW1_FN(NAME, T)                                                                           \
    CLONES static void NAME(const T *restrict srow, float *restrict orow, Py_ssize_t n, double k)    \
    {                                                                                               \
        for (Py_ssize_t j = 0; j < n; j++)                                                          \
            orow[j] = (float)((double)srow[j] * k);                                                 \
    }

ROW1_FN(row1_int16, int16_t)
ROW1_FN(row1_int32, int32_t)

static int
one_multiply(double s, double o, double g, double *k)
{
    if (!(o == 0.0 && (signbit(o) || s > 0)))
        return 0;
    if (g == 1.0) {
        *k = s;
        return 1;
    }
    int e;
    const double m = frexp(s, &e);
    const double a = fabs(s);
    if ((m != 0.5 && m != -0.5) || a < 0x1p-900 || a > 0x1p900)
        return 0;
    const double sg = s * g;
    if (fpclassify(sg) != FP_NORMAL)
        return 0;
    *k = sg;
    return 1;
}

static void
row_int16(const int16_t *srow, float *orow, Py_ssize_t n, double s, double o, double g)
{
    double k;
    if (one_multiply(s, o, g, &k))
        row1_int16(srow, orow, n, k);
    else
        row3_int16(srow, orow, n, s, o, g);
}

static void
row_int32(const int32_t *srow, float *orow, Py_ssize_t n, double s, double o, double g)
{
    double k;
    if (one_multiply(s, o, g, &k))
        row1_int32(srow, orow, n, k);
    else
        row3_int32(srow, orow, n, s, o, g);
}

#define ROWS_LOOP(T, FN)                                                                   \
    for (Py_ssize_t i = 0; i < nrows; i++) {                                               \
        const int64_t r = rowp[i];                                                         \
        FN((const T *)(sbase + r * sstride0 + a * (Py_ssize_t)sizeof(T)),                  \
           (float *)(obase + i * ostride0) + o0, n, scale[r], offset[r], gain[r]);         \
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
    if (as_index(args[1], &a, "calibrate", "a") || as_index(args[2], &b, "calibrate", "b")
        || as_index(args[8], &o0, "calibrate", "o0"))
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

/* ---- decode_blosc ----------------------------------------------------------------------------------
 * A compressed warm window whose chunks are each one Blosc frame (blosc-lz4 / blosc-zstd stores of
 * every format): every chunk decompressed into a reused scratch buffer and converted into its slice
 * of out (calibrated counts, or float32 rows copied), in one call. The Python path spends ~5 us per
 * chunk between the decoder and the calibration (plan lookups, checks, a fresh array per chunk);
 * this is the same work with the same decoder: c-blosc's own blosc_decompress_ctx, taken from the
 * numcodecs extension already loaded in this process (bind_blosc), single-threaded as numcodecs
 * calls it in a DataLoader worker. The conversion is calibrate's row loop (same bits). */
typedef int (*blosc_validate_fn)(const void *, size_t, size_t *);
typedef int (*blosc_decompress_fn)(const void *, void *, size_t, int);
static blosc_validate_fn blosc_validate = NULL;
static blosc_decompress_fn blosc_decompress = NULL;

PyDoc_STRVAR(bind_blosc_doc,
"bind_blosc(path) -> bool\n\n"
"Bind decode_blosc to c-blosc's blosc_cbuffer_validate and blosc_decompress_ctx in the extension\n"
"module at path (numcodecs.blosc.__file__, already imported: it is not loaded again). False when\n"
"they cannot be found (decode_blosc then always returns False).");

static PyObject *
bind_blosc(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *path = PyUnicode_AsUTF8(arg);
    if (path == NULL)
        return NULL;
    void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL)
        Py_RETURN_FALSE;
    blosc_validate_fn v = (blosc_validate_fn)dlsym(lib, "blosc_cbuffer_validate");
    blosc_decompress_fn d = (blosc_decompress_fn)dlsym(lib, "blosc_decompress_ctx");
    if (v == NULL || d == NULL)
        Py_RETURN_FALSE; /* the handle stays open: the module is loaded for good anyway */
    blosc_validate = v;
    blosc_decompress = d;
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(decode_blosc_doc,
"decode_blosc(out, view, spans, start, stop, chunk_samples, n_channels, kind, rows, scale, offset, gain,\n"
"             scratch) -> bool\n\n"
"out[i, :] = volts of samples [start, stop) of channel rows[i], where chunk c's stored bytes\n"
"view[spans[c, 0]:spans[c, 1]] are one Blosc frame of (n_channels, m) samples, m <= chunk_samples,\n"
"C order, of kind 1 (int16 counts), 2 (int32 counts) or 3 (float32; scale, offset, gain None).\n"
"Counts: float32(((float64(x) * scale[r]) + offset[r]) * gain[r]), as calibrate. spans: int64\n"
"(n_chunks, 2); scratch: a writable buffer of at least n_channels * chunk_samples * itemsize bytes\n"
"(one per thread). Returns False when a chunk's span is negative (not checked yet), a frame is not\n"
"what it should be (its size, the samples it holds) or blosc is not bound: out may then be partly\n"
"written, and the caller reads the window its ordinary way. Raises ValueError / TypeError for\n"
"arguments that do not fit: nothing is read or written out of bounds.");

static PyObject *
decode_blosc(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 13) {
        PyErr_Format(PyExc_TypeError, "decode_blosc takes 13 arguments (%zd given)", nargs);
        return NULL;
    }
    Py_ssize_t start, stop, cs, nch, kind;
    if (as_index(args[3], &start, "decode_blosc", "start") || as_index(args[4], &stop, "decode_blosc", "stop")
        || as_index(args[5], &cs, "decode_blosc", "chunk_samples")
        || as_index(args[6], &nch, "decode_blosc", "n_channels") || as_index(args[7], &kind, "decode_blosc", "kind"))
        return NULL;
    if (start < 0 || stop <= start || cs <= 0 || nch <= 0 || kind < 1 || kind > 3) {
        PyErr_SetString(PyExc_ValueError, "decode_blosc: need 0 <= start < stop, chunk_samples > 0, n_channels > 0, "
                                          "kind 1, 2 or 3");
        return NULL;
    }
    if (blosc_decompress == NULL)
        Py_RETURN_FALSE;
    const int calibrated = kind != 3;
    if (calibrated != (args[9] != Py_None) || calibrated != (args[10] != Py_None) || calibrated != (args[11] != Py_None)) {
        PyErr_SetString(PyExc_TypeError, "decode_blosc: scale, offset, gain are given for counts (kind 1, 2) only");
        return NULL;
    }
    const Py_ssize_t itemsize = kind == 1 ? 2 : 4;
    Py_buffer bufs[8];
    const int which[8] = {0, 1, 2, 8, 12, 9, 10, 11};
    const int flags[8] = {PyBUF_WRITABLE | PyBUF_STRIDES | PyBUF_FORMAT, PyBUF_SIMPLE, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT,
                          PyBUF_C_CONTIGUOUS | PyBUF_FORMAT, PyBUF_WRITABLE | PyBUF_SIMPLE,
                          PyBUF_C_CONTIGUOUS | PyBUF_FORMAT, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT,
                          PyBUF_C_CONTIGUOUS | PyBUF_FORMAT};
    const int nbufs = calibrated ? 8 : 5;
    int got = 0;
    PyObject *result = NULL;
    for (; got < nbufs; got++) {
        if (PyObject_GetBuffer(args[which[got]], &bufs[got], flags[got]) < 0)
            goto done;
    }
    Py_buffer *out = &bufs[0], *view = &bufs[1], *spans = &bufs[2], *rows = &bufs[3], *scratch = &bufs[4];
    const Py_ssize_t width = stop - start, nrows = rows->len / 8;
    if (out->ndim != 2 || !is_format(out, "f", 4) || out->shape[1] != width || (width > 1 && out->strides[1] != 4)
        || out->shape[0] != nrows || !is_format(rows, "qlQL", 8) || !is_format(spans, "qlQL", 8)) {
        PyErr_SetString(PyExc_TypeError, "decode_blosc: out must be float32 (len(rows), stop - start) with contiguous "
                                         "rows; rows and spans int64");
        goto done;
    }
    if (calibrated && (!is_format(&bufs[5], "d", 8) || !is_format(&bufs[6], "d", 8) || !is_format(&bufs[7], "d", 8)
                       || bufs[5].len / 8 != nch || bufs[6].len / 8 != nch || bufs[7].len / 8 != nch)) {
        PyErr_SetString(PyExc_TypeError, "decode_blosc: scale, offset, gain must be float64, one per channel");
        goto done;
    }
    const Py_ssize_t last = (stop - 1) / cs, first = start / cs;
    if (spans->len / 16 <= last || scratch->len < nch * cs * itemsize) {
        PyErr_SetString(PyExc_ValueError, "decode_blosc: the window ends past the last span, or scratch is too small");
        goto done;
    }
    const int64_t *rowp = (const int64_t *)rows->buf, *sp = (const int64_t *)spans->buf;
    for (Py_ssize_t i = 0; i < nrows; i++) {
        if (rowp[i] < 0 || rowp[i] >= nch) {
            PyErr_Format(PyExc_ValueError, "decode_blosc: row %lld is not a channel of these %zd", (long long)rowp[i], nch);
            goto done;
        }
    }
    for (Py_ssize_t ci = first; ci <= last; ci++) {
        if (sp[2 * ci] < 0 || sp[2 * ci + 1] <= sp[2 * ci] || sp[2 * ci + 1] > (int64_t)view->len) {
            result = Py_False; /* not checked yet (or not a frame this lane reads): the ordinary path */
            goto done;
        }
    }
    {
        const double *scale = calibrated ? (const double *)bufs[5].buf : NULL;
        const double *offset = calibrated ? (const double *)bufs[6].buf : NULL;
        const double *gain = calibrated ? (const double *)bufs[7].buf : NULL;
        const char *vbase = (const char *)view->buf;
        char *tmp = (char *)scratch->buf, *obase = (char *)out->buf;
        const Py_ssize_t ostride0 = out->strides[0];
        int ok = 1;
        PyThreadState *ts = PyEval_SaveThread();
        Py_ssize_t col = 0;
        for (Py_ssize_t ci = first; ci <= last && ok; ci++) {
            const char *frame = vbase + sp[2 * ci];
            const size_t fbytes = (size_t)(sp[2 * ci + 1] - sp[2 * ci]);
            size_t nbytes = 0;
            /* the frame's header: its compressed size fits the span, its decoded size is whole rows */
            if (fbytes < 16 || blosc_validate(frame, fbytes, &nbytes) != 0 || nbytes == 0
                || nbytes % (size_t)(nch * itemsize) != 0 || nbytes > (size_t)scratch->len) {
                ok = 0;
                break;
            }
            const Py_ssize_t m = (Py_ssize_t)(nbytes / (size_t)(nch * itemsize)); /* samples per row */
            const Py_ssize_t c0 = ci * cs;
            const Py_ssize_t a = (start > c0 ? start : c0) - c0;
            const Py_ssize_t b = (stop < c0 + cs ? stop : c0 + cs) - c0;
            if (m > cs || b > m || blosc_decompress(frame, tmp, (size_t)scratch->len, 1) != (int)nbytes) {
                ok = 0;
                break;
            }
            const Py_ssize_t n = b - a, srow = m * itemsize;
            for (Py_ssize_t i = 0; i < nrows; i++) {
                const int64_t r = rowp[i];
                const char *src = tmp + r * srow + a * itemsize;
                float *dst = (float *)(obase + i * ostride0) + col;
                if (kind == 1)
                    row_int16((const int16_t *)src, dst, n, scale[r], offset[r], gain[r]);
                else if (kind == 2)
                    row_int32((const int32_t *)src, dst, n, scale[r], offset[r], gain[r]);
                else
                    memcpy(dst, src, (size_t)n * 4);
            }
            col += n;
        }
        PyEval_RestoreThread(ts);
        result = ok ? Py_True : Py_False;
    }
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&bufs[k]);
    Py_XINCREF(result);
    return result;
}

static PyMethodDef methods[] = {
    {"copy_window", (PyCFunction)(void (*)(void))copy_window, METH_FASTCALL, copy_window_doc},
    {"calibrate", (PyCFunction)(void (*)(void))calibrate, METH_FASTCALL, calibrate_doc},
    {"bind_blosc", (PyCFunction)bind_blosc, METH_O, bind_blosc_doc},
    {"decode_blosc", (PyCFunction)(void (*)(void))decode_blosc, METH_FASTCALL, decode_blosc_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ckernels", "eegbench's C kernels: copy_window, calibrate, decode_blosc.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__ckernels(void)
{
#ifdef HAVE_STREAM
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        stream_piece = stream_piece64;
#endif
    return PyModule_Create(&module);
}
