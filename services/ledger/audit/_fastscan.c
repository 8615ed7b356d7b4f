/* The common line of `relief-audit verify`, compiled: an entry exactly as the ledger writes it.
 *
 * Two steps, so that the hashing runs on one CPU while the interpreter works on the other:
 *
 * - prepare(buffer, end) judges every whole line of buffer[:end] on its own, without the GIL:
 *   is it an entry as the ledger writes it, does SHA-256(0x00 || entry bytes) equal its stored
 *   leaf hash, is it a delivery with the fields the rules need? It keeps the leaf hash and the
 *   digest a reversal must match.
 * - apply(prepared, index, ...) then takes, in order, each prepared delivery that the Python fast
 *   path (Verifier._line) would accept, with the same effect: the leaf folded into the compact
 *   range, the delivery recorded as the entitlement's open delivery, the relief rules run by a
 *   Python hook. It stops at the first line it does not take, however harmless, and Python
 *   judges that line (checkpoints, reversals, refusals, double deliveries, unusual spellings).
 *   So it may only ever accept what Python accepts: when in doubt, it gives the line back.
 *
 * Entries are parsed with a deliberately narrow JSON grammar (strict UTF-8, no escapes, no
 * whitespace, integers only, keys strictly increasing so never repeated). Within it, the
 * bytes of a value are exactly what orjson.dumps writes for the parsed value, which is why
 * the open delivery's digest can be taken over raw bytes and still equal
 * verify.delivery_key() of the parsed values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final: no algorithm fetch, no lock */
#include <openssl/sha.h>

#define MAX_DEPTH 32
#define MAX_INT_DIGITS 18 /* orjson refuses integers beyond 64 bits; stay well inside */

static const char ENTRY_PREFIX[] = "{\"kind\":\"entry\",\"seq\":";
static const char ENTRY_MARK[] = ",\"entry\":";
static const char LEAF_SUFFIX[] = ",\"leaf_hash\":\"";
#define PREFIX_LEN (sizeof(ENTRY_PREFIX) - 1)
#define MARK_LEN (sizeof(ENTRY_MARK) - 1)
#define SUFFIX_LEN (sizeof(LEAF_SUFFIX) - 1)
#define TAIL_LEN (SUFFIX_LEN + 64 + 2) /* ,"leaf_hash":"<64 hex>"} */

typedef struct {
    const char *p;
    Py_ssize_t n;
} Span;

typedef struct {
    Span seq, kind, entitlement_id, household_id, items, cash_vnd;
} Fields;

enum { BLANK = -1, LEFT_TO_PYTHON = 0 }; /* Line.seq, when it is not an entry's seq */

typedef struct {
    Py_ssize_t start, next; /* the line is buffer[start:next], newline included */
    Py_ssize_t seq;         /* a delivery the fast path may take, or BLANK, or LEFT_TO_PYTHON */
    Py_ssize_t body, body_n;               /* the entry's bytes */
    Py_ssize_t entitlement, entitlement_n; /* the id's bytes, without quotes */
    unsigned char leaf[32], key[32];
} Line;

/* ---- the narrow JSON grammar --------------------------------------------------------- */

static const char *value_end(const char *p, const char *end, int depth);

/* Bytes after a UTF-8 lead byte, or -1. Strict (Unicode table 3-7), as orjson reads: no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_tail(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    int n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else
        return -1;
    if (end - p <= n || p[1] < lo || p[1] > hi)
        return -1;
    for (int i = 2; i <= n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return -1;
    return n;
}

/* 1 for the bytes a plain string character may not be: controls, quote, backslash, non-ASCII. */
static unsigned char special[256];

static void init_special(void)
{
    for (int c = 0; c < 256; c++)
        special[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

/* A string without escapes (orjson writes raw UTF-8 and escapes only controls, quote and
 * backslash, so such a string's bytes are what orjson writes for it). */
static const char *string_end(const char *p, const char *end)
{
    const unsigned char *q = (const unsigned char *)p + 1, *e = (const unsigned char *)end;
    for (;;) {
        while (q < e && !special[*q])
            q++;
        if (q >= e || *q < 0x20 || *q == '\\')
            return NULL;
        if (*q == '"')
            return (const char *)q + 1;
        int n = utf8_tail(q, e);
        if (n < 0)
            return NULL;
        q += n + 1;
    }
}

static const char *int_end(const char *p, const char *end)
{
    const char *digits = (p < end && *p == '-') ? p + 1 : p;
    const char *q = digits;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    Py_ssize_t n = q - digits;
    if (n == 0 || n > MAX_INT_DIGITS || (*digits == '0' && (n > 1 || digits != p)))
        return NULL; /* empty, too long, a leading zero, or -0 (orjson writes 0) */
    return q;
}

static const char *literal_end(const char *p, const char *end, const char *word, Py_ssize_t n)
{
    return (end - p >= n && memcmp(p, word, n) == 0) ? p + n : NULL;
}

static const char *array_end(const char *p, const char *end, int depth)
{
    if (++p < end && *p == ']')
        return p + 1;
    for (;;) {
        p = value_end(p, end, depth);
        if (p == NULL || p >= end)
            return NULL;
        if (*p == ']')
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

#define KEY_IS(key, n, name) ((n) == sizeof(name) - 1 && memcmp((key), (name), (n)) == 0)

static void note_field(Fields *top, const char *key, Py_ssize_t n, Span value)
{
    if (KEY_IS(key, n, "seq"))
        top->seq = value;
    else if (KEY_IS(key, n, "kind"))
        top->kind = value;
    else if (KEY_IS(key, n, "items"))
        top->items = value;
    else if (KEY_IS(key, n, "cash_vnd"))
        top->cash_vnd = value;
    else if (KEY_IS(key, n, "household_id"))
        top->household_id = value;
    else if (KEY_IS(key, n, "entitlement_id"))
        top->entitlement_id = value;
}

static int keys_increase(const char *prev, Py_ssize_t prev_n, const char *key, Py_ssize_t n)
{
    int order = memcmp(prev, key, prev_n < n ? prev_n : n);
    return order < 0 || (order == 0 && prev_n < n);
}

/* An object; with `top`, the spans of the fields the rules need are noted. */
static const char *object_end(const char *p, const char *end, int depth, Fields *top)
{
    const char *prev = NULL;
    Py_ssize_t prev_n = 0;
    if (++p < end && *p == '}')
        return p + 1;
    for (;;) {
        if (p >= end || *p != '"')
            return NULL;
        const char *key = p + 1, *colon = string_end(p, end);
        if (colon == NULL || colon >= end || *colon != ':')
            return NULL;
        Py_ssize_t key_n = colon - 1 - key;
        if (prev != NULL && !keys_increase(prev, prev_n, key, key_n))
            return NULL;
        prev = key, prev_n = key_n;
        p = value_end(colon + 1, end, depth);
        if (p == NULL || p >= end)
            return NULL;
        if (top != NULL)
            note_field(top, key, key_n, (Span){colon + 1, p - colon - 1});
        if (*p == '}')
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *value_end(const char *p, const char *end, int depth)
{
    if (p >= end || depth > MAX_DEPTH)
        return NULL;
    switch (*p) {
    case '"': return string_end(p, end);
    case '{': return object_end(p, end, depth + 1, NULL);
    case '[': return array_end(p, end, depth + 1);
    case 't': return literal_end(p, end, "true", 4);
    case 'f': return literal_end(p, end, "false", 5);
    case 'n': return literal_end(p, end, "null", 4);
    default: return int_end(p, end);
    }
}

/* ---- prepare: each line on its own, no interpreter ----------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int hex_matches(const unsigned char *digest, const char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++)
        if (hex[2 * i] != digits[digest[i] >> 4] || hex[2 * i + 1] != digits[digest[i] & 15])
            return 0;
    return 1;
}

/* A line's seq as Python's `line[22:mark] == b"%d" % expected` reads it: canonical digits. */
static Py_ssize_t line_seq(const char *p, const char *end, Span *digits)
{
    const char *q = p;
    Py_ssize_t seq = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - p < MAX_INT_DIGITS)
        seq = seq * 10 + (*q++ - '0');
    *digits = (Span){p, q - p};
    return (q == p || *p == '0') ? 0 : seq;
}

/* The entry's body, if the line is `{"kind":"entry","seq":<seq>,"entry":<body>,"leaf_hash":"<hex>"}`. */
static Span entry_body(const char *p, const char *e, Py_ssize_t *seq, Span *digits)
{
    Span none = {NULL, 0};
    if (e - p < (Py_ssize_t)(PREFIX_LEN + 1 + MARK_LEN + 2 + TAIL_LEN) || memcmp(p, ENTRY_PREFIX, PREFIX_LEN))
        return none;
    const char *tail = e - TAIL_LEN;
    *seq = line_seq(p + PREFIX_LEN, tail, digits);
    const char *mark = digits->p + digits->n;
    if (*seq == 0 || tail - mark < (Py_ssize_t)MARK_LEN + 2 || memcmp(mark, ENTRY_MARK, MARK_LEN))
        return none;
    if (memcmp(tail, LEAF_SUFFIX, SUFFIX_LEN) || tail[TAIL_LEN - 2] != '"' || tail[TAIL_LEN - 1] != '}')
        return none;
    return (Span){mark + MARK_LEN, tail - mark - MARK_LEN};
}

/* What a reversal must repeat: sha256(orjson.dumps((household, items, cash))). */
static void delivery_key(const Fields *f, unsigned char *out)
{
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, "[", 1);
    SHA256_Update(&ctx, f->household_id.p, f->household_id.n);
    SHA256_Update(&ctx, ",", 1);
    SHA256_Update(&ctx, f->items.p, f->items.n);
    SHA256_Update(&ctx, ",", 1);
    SHA256_Update(&ctx, f->cash_vnd.p, f->cash_vnd.n);
    SHA256_Update(&ctx, "]", 1);
    SHA256_Final(out, &ctx);
}

/* LEFT_TO_PYTHON unless the line is a well-formed delivery whose bytes hash to its leaf. */
static Py_ssize_t judge(const char *base, const char *p, const char *e, Line *line)
{
    Py_ssize_t seq;
    Span digits, body = entry_body(p, e, &seq, &digits);
    Fields f;
    SHA256_CTX ctx;
    if (body.p == NULL)
        return LEFT_TO_PYTHON;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, "\x00", 1);
    SHA256_Update(&ctx, body.p, body.n);
    SHA256_Final(line->leaf, &ctx);
    if (!hex_matches(line->leaf, e - TAIL_LEN + SUFFIX_LEN))
        return LEFT_TO_PYTHON;
    memset(&f, 0, sizeof(f));
    if (*body.p != '{' || object_end(body.p, body.p + body.n, 1, &f) != body.p + body.n)
        return LEFT_TO_PYTHON;
    if (f.seq.n != digits.n || memcmp(f.seq.p, digits.p, digits.n) || f.kind.n != 10 ||
        memcmp(f.kind.p, "\"delivery\"", 10) || f.entitlement_id.p == NULL || *f.entitlement_id.p != '"' ||
        f.household_id.p == NULL || f.items.p == NULL || f.cash_vnd.p == NULL)
        return LEFT_TO_PYTHON;
    line->body = body.p - base, line->body_n = body.n;
    line->entitlement = f.entitlement_id.p + 1 - base;
    line->entitlement_n = f.entitlement_id.n - 2;
    delivery_key(&f, line->key);
    return seq;
}

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    Line *lines;
    Py_ssize_t n;
} Prepared;

static void prepared_dealloc(Prepared *self)
{
    PyMem_RawFree(self->lines);
    if (self->view.obj != NULL)
        PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t prepared_len(Prepared *self)
{
    return self->n;
}

static PyObject *prepared_span(Prepared *self, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0 || i >= self->n)
        return PyErr_Format(PyExc_IndexError, "line %zd of %zd", i, self->n);
    return Py_BuildValue("(nn)", self->lines[i].start, self->lines[i].next);
}

static PyMethodDef prepared_methods[] = {
    {"span", (PyCFunction)prepared_span, METH_O, "span(i) -> (start, next): line i is buffer[start:next]"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods prepared_sequence = {.sq_length = (lenfunc)prepared_len};

static PyTypeObject PreparedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_fastscan.Prepared",
    .tp_basicsize = sizeof(Prepared),
    .tp_dealloc = (destructor)prepared_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The whole lines of a buffer, each judged on its own (see prepare()).",
    .tp_methods = prepared_methods,
    .tp_as_sequence = &prepared_sequence,
};

/* Returns 0, or -1 when memory ran out. Runs without the GIL. */
static int judge_lines(Prepared *self, Py_ssize_t end)
{
    const char *base = self->view.buf;
    Py_ssize_t pos = 0, capacity = 0;
    while (pos < end) {
        const char *p = base + pos, *nl = memchr(p, '\n', end - pos);
        const char *stop = nl == NULL ? base + end : nl + 1, *e = stop;
        while (e > p && is_space(e[-1]))
            e--;
        if (self->n == capacity) {
            capacity = capacity ? 2 * capacity : 4096;
            Line *grown = PyMem_RawRealloc(self->lines, capacity * sizeof(Line));
            if (grown == NULL)
                return -1;
            self->lines = grown;
        }
        Line *line = &self->lines[self->n++];
        line->start = pos, line->next = stop - base;
        line->seq = e == p ? BLANK : judge(base, p, e, line);
        pos = line->next;
    }
    return 0;
}

static PyObject *prepare(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *buffer;
    Py_ssize_t end;
    if (!PyArg_ParseTuple(args, "On:prepare", &buffer, &end))
        return NULL;
    Prepared *self = PyObject_New(Prepared, &PreparedType);
    if (self == NULL)
        return NULL;
    self->lines = NULL, self->n = 0, self->view.obj = NULL;
    if (PyObject_GetBuffer(buffer, &self->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    if (end < 0 || end > self->view.len) {
        PyErr_Format(PyExc_ValueError, "prepare: end %zd outside %zd bytes", end, self->view.len);
        Py_DECREF(self);
        return NULL;
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = judge_lines(self, end);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

/* ---- apply: in order, with the verifier's state -------------------------------------- */

/* CompactRange.append: merge with the peaks of equal height, right to left. */
static int fold_leaf(PyObject *peaks, Py_ssize_t size, const unsigned char *leaf)
{
    unsigned char h[32];
    memcpy(h, leaf, 32);
    for (Py_ssize_t n = size; n & 1; n >>= 1) {
        Py_ssize_t last = PyList_GET_SIZE(peaks) - 1;
        PyObject *peak = last >= 0 ? PyList_GET_ITEM(peaks, last) : NULL;
        if (peak == NULL || !PyBytes_Check(peak) || PyBytes_GET_SIZE(peak) != 32) {
            PyErr_SetString(PyExc_ValueError, "compact range peaks do not match its size");
            return -1;
        }
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, "\x01", 1);
        SHA256_Update(&ctx, PyBytes_AS_STRING(peak), 32);
        SHA256_Update(&ctx, h, 32);
        SHA256_Final(h, &ctx);
        if (PyList_SetSlice(peaks, last, last + 1, NULL) < 0)
            return -1;
    }
    PyObject *top = PyBytes_FromStringAndSize((const char *)h, 32);
    if (top == NULL)
        return -1;
    int failed = PyList_Append(peaks, top);
    Py_DECREF(top);
    return failed;
}

enum { TAKEN = 1, NOT_TAKEN = 0, HOOK_FAILED = 2, ERROR = -1 };

static int take(const Prepared *prepared, const Line *line, PyObject *peaks, PyObject *active,
                PyObject *hook)
{
    const char *base = prepared->view.buf;
    PyObject *entitlement = PyUnicode_DecodeUTF8(base + line->entitlement, line->entitlement_n, NULL);
    if (entitlement == NULL)
        return ERROR;
    int known = PyDict_Contains(active, entitlement);
    if (known != 0) { /* a double delivery: Python names it */
        Py_DECREF(entitlement);
        return known < 0 ? ERROR : NOT_TAKEN;
    }
    if (fold_leaf(peaks, line->seq - 1, line->leaf) < 0) {
        Py_DECREF(entitlement);
        return ERROR;
    }
    if (hook != Py_None) {
        PyObject *failure = PyObject_CallFunction(hook, "ny#", line->seq, base + line->body, line->body_n);
        if (failure != Py_None) {
            Py_DECREF(entitlement);
            Py_XDECREF(failure);
            return failure == NULL ? ERROR : HOOK_FAILED;
        }
        Py_DECREF(failure);
    }
    PyObject *record = Py_BuildValue("(ny#)", line->seq, (const char *)line->key, (Py_ssize_t)32);
    int failed = record == NULL || PyDict_SetItem(active, entitlement, record) < 0;
    Py_DECREF(entitlement);
    Py_XDECREF(record);
    return failed ? ERROR : TAKEN;
}

static PyObject *apply(PyObject *Py_UNUSED(module), PyObject *args)
{
    Prepared *prepared;
    Py_ssize_t i, size, limit;
    PyObject *peaks, *active, *hook;
    if (!PyArg_ParseTuple(args, "O!nO!nO!On:apply", &PreparedType, &prepared, &i, &PyList_Type, &peaks, &size,
                          &PyDict_Type, &active, &hook, &limit))
        return NULL;
    int outcome = TAKEN;
    for (; i < prepared->n && size < limit; i++) {
        const Line *line = &prepared->lines[i];
        if (line->seq == BLANK)
            continue;
        if (line->seq != size + 1)
            break;
        outcome = take(prepared, line, peaks, active, hook);
        if (outcome == ERROR)
            return NULL;
        if (outcome == NOT_TAKEN)
            break;
        size++;
        if (outcome == HOOK_FAILED) {
            i++;
            break;
        }
    }
    return Py_BuildValue("(nnO)", i, size, outcome == HOOK_FAILED ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"prepare", prepare, METH_VARARGS,
     "prepare(buffer, end) -> Prepared\n\n"
     "Judge each line of buffer[:end] on its own, without the GIL: an entry as the ledger writes\n"
     "it, its leaf hash, a delivery with the fields the rules need."},
    {"apply", apply, METH_VARARGS,
     "apply(prepared, i, peaks, size, active, hook, limit) -> (i, size, hook_failed)\n\n"
     "Take prepared lines from i on while each is the next delivery the fast path accepts, up to\n"
     "tree size `limit`; stop at the first line left to Python (line i of the result). hook(seq,\n"
     "entry_bytes) runs for each delivery after its leaf is folded; anything but None stops."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_fastscan", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__fastscan(void)
{
    init_special();
    if (PyType_Ready(&PreparedType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
