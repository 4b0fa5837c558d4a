/* Compiled copy of a warm window out of a map of uncompressed chunks (issue #9: small windows).
 *
 * A window of C channels spanning k chunks is C * k short row pieces (64 x 3 pieces of 40-640 bytes
 * for a 2-s window of 1-s chunks at 160 Hz). NumPy copies them at ~40 ns a row plus ~1 us of Python
 * per chunk, which on small windows costs as much as the bytes; one call here copies every piece
 * with memcpy. Bytes move unchanged, so the copy is exact for every dtype. Built with the package
 * (optional: without a C compiler eegbench.formats._chunks falls back to NumPy); importing it costs
 * nothing measurable, unlike a JIT (numba's import and code generation took 0.3-0.6 s a process).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Windows at least this large are copied without the GIL (another thread may decode meanwhile);
 * below it, releasing and taking the GIL back costs more than it frees. */
#define NOGIL_BYTES (64 * 1024)

static int
as_index(PyObject *o, Py_ssize_t *v, const char *name)
{
    *v = PyLong_AsSsize_t(o);
    if (*v == -1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "copy_window: %s must be an int", name);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(copy_window_doc,
"copy_window(out, view, offsets, start, stop, chunk_samples, itemsize) -> bool\n\n"
"out[c, :] = samples [start, stop) of channel c for every row c of out, where chunk i is\n"
"(out.shape[0], chunk_samples) samples of itemsize bytes, C order, at byte offsets[i] of view\n"
"(any buffer). out: a writable 2-D buffer whose rows are contiguous, stop - start samples wide.\n"
"offsets: int64, one per chunk. Returns False, nothing written, when an offset of the window's\n"
"chunks is negative (not checked yet in this process). Raises ValueError for a chunk outside view\n"
"or an out of the wrong shape: nothing is ever read or written out of bounds.");

static PyObject *
copy_window(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "copy_window takes 7 arguments (%zd given)", nargs);
        return NULL;
    }
    Py_ssize_t start, stop, cs, itemsize;
    if (as_index(args[3], &start, "start") || as_index(args[4], &stop, "stop")
        || as_index(args[5], &cs, "chunk_samples") || as_index(args[6], &itemsize, "itemsize"))
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

static PyMethodDef methods[] = {
    {"copy_window", (PyCFunction)(void (*)(void))copy_window, METH_FASTCALL, copy_window_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_warmcopy",
    "Compiled copy of a warm window out of a map of uncompressed chunks (see copy_window).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__warmcopy(void)
{
    return PyModule_Create(&module);
}
